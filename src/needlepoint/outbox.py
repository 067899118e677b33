"""The outbox worker: sends the e-mails the actions queued (`outbox_messages`) over SMTP,
and queues the reminders that are due.

It runs as a background thread of `needlepoint serve` / `demo` (when an SMTP server is
set) or on its own (`needlepoint outbox`). Several workers may run at once (several
servers on one PostgreSQL): each message is claimed before it is sent, so one worker
sends it (`actions.outbox` explains why a crash neither loses nor duplicates one).
Nothing is sent from a request handler."""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from needlepoint.actions import outbox, questionnaires
from needlepoint.adapters import mail
from needlepoint.adapters.db.questionnaire_links import (
    clinic_ids,
    due_messages,
    episodes_on_a_plan,
    open_links_issued_before,
)
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.entities import OutboxMessage
from needlepoint.domain.errors import DomainError, StaleVersion
from needlepoint.domain.questionnaires import MAX_FOLLOW_UP_DAYS, SEND_WINDOW_DAYS, defaults

log = logging.getLogger("needlepoint.outbox")

DEFAULT_SENDER = "Needlepoint <no-reply@needlepoint.invalid>"
LINK_PLACEHOLDER = "{link}"
SCHEDULE_EVERY = timedelta(minutes=1)
"""How often a running worker looks for scheduled questionnaires and due reminders (it
sends queued messages on every pass)."""

Fault = Callable[[str, OutboxMessage], None]
"""A test's hook, called at each step of a message ("claimed", "accepted" — the SMTP
server took it —, "marked"): raising or killing the process there shows what a crash at
that point does."""


@dataclass
class Pass:
    """What one pass of the worker did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    reminders: int = 0
    scheduled: int = 0
    errors: list[str] = field(default_factory=list)


class OutboxWorker:
    """Sends due outbox messages through `smtp`; queues due reminders with links at
    `base_url` (no reminders without one)."""

    def __init__(
        self,
        engine: sa.Engine,
        smtp: mail.SmtpServer,
        *,
        sender: str = DEFAULT_SENDER,
        base_url: str | None = None,
        lease: timedelta = outbox.LEASE,
        batch: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fault: Fault | None = None,
        only_clinics: list[UUID] | None = None,
    ) -> None:
        """`only_clinics`: send only these clinics' messages (default: every clinic's)."""
        self.engine = engine
        self.smtp = smtp
        self.sender = sender
        self.base_url = base_url
        self.lease = lease
        self.batch = batch
        self.clock = clock
        self.fault = fault
        self.only_clinics = only_clinics
        self.schedule_every = SCHEDULE_EVERY
        self._last_schedule: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.clock)

    # -- one pass -------------------------------------------------------------------------
    def run_once(self) -> Pass:
        """Queue the due reminders, then send every due message of every clinic."""
        done = Pass()
        now = self.clock()
        if self.base_url and (
            self._last_schedule is None or now - self._last_schedule >= self.schedule_every
        ):
            # Each episode on a plan is looked at in a write transaction of its own: not
            # every pass (SQLite has one write lock), once a minute is soon enough.
            self._last_schedule = now
            done.scheduled = self.send_scheduled()
            done.reminders = self.queue_reminders()
        for clinic in self._clinics():
            now = self.clock()
            with self.engine.connect() as conn, conn.begin():
                due = due_messages(conn, clinic, now, now - self.lease, self.batch)
            for clinic_id, message_id in due:
                self._deliver(clinic_id, message_id, done)
        return done

    def _clinics(self) -> list[UUID]:
        if self.only_clinics is not None:
            return self.only_clinics
        with self.engine.connect() as conn:
            return clinic_ids(conn)

    def send_scheduled(self) -> int:
        """Queue what the clinics' plans say is due now, episode by episode (an episode
        closed long ago has nothing left: its last follow-up is within two years)."""
        assert self.base_url is not None
        since = (self.clock() - timedelta(days=MAX_FOLLOW_UP_DAYS + SEND_WINDOW_DAYS)).date()
        sent = 0
        for clinic in self._clinics():
            with self.engine.connect() as conn, conn.begin():
                episode_ids = episodes_on_a_plan(conn, clinic, since)
            for episode_id in episode_ids:
                try:
                    if questionnaires.send_due_questionnaires(
                        self.uow(), clinic, episode_id, self.base_url
                    ):
                        sent += 1
                except StaleVersion:
                    continue  # another worker sent it
                except DomainError as exc:  # one episode's problem must not stop the rest
                    log.warning("outbox: episode %s not scheduled: %s", episode_id, exc)
        return sent

    def queue_reminders(self) -> int:
        """Queue a reminder for each open link whose reminder is due."""
        first = min(defaults().reminder_after_days, default=None)
        if first is None or self.base_url is None:
            return 0
        with self.engine.connect() as conn:
            candidates = open_links_issued_before(conn, self.clock() - timedelta(days=first))
        queued = 0
        for clinic_id, link_id in candidates:
            if self.only_clinics is not None and clinic_id not in self.only_clinics:
                continue
            try:
                if questionnaires.queue_reminder(self.uow(), clinic_id, link_id, self.base_url):
                    queued += 1
            except StaleVersion:
                continue  # another worker queued it
        return queued

    def _deliver(self, clinic_id: UUID, message_id: UUID, done: Pass) -> None:
        try:
            claimed = outbox.claim_message(self.uow(), clinic_id, message_id, lease=self.lease)
        except StaleVersion:
            claimed = None  # another worker claimed it first
        if claimed is None:
            done.skipped += 1
            return
        self._at("claimed", claimed)
        body = claimed.body.replace(LINK_PLACEHOLDER, claimed.link_url or "(withdrawn)")
        msg = mail.compose(self.sender, claimed.recipient, claimed.subject, body, claimed.id)
        try:
            mail.send(self.smtp, msg)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("outbox: message %s not sent: %s", claimed.id, error)
            outbox.mark_failed(self.uow(), claimed.clinic_id, claimed, error)
            done.failed += 1
            done.errors.append(error)
            return
        self._at("accepted", claimed)
        outbox.mark_sent(self.uow(), claimed.clinic_id, claimed)
        self._at("marked", claimed)
        done.sent += 1

    def _at(self, step: str, message: OutboxMessage) -> None:
        if self.fault is not None:
            self.fault(step, message)

    # -- in the background ----------------------------------------------------------------
    def run_forever(self, poll_seconds: float = 2.0) -> None:
        """Pass after pass until `stop()`; an error in one pass is logged and the next
        pass tries again (the rows keep every message's state)."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end the worker
                log.exception("outbox: pass failed; retrying")
            self._stop.wait(poll_seconds)

    def start(self, poll_seconds: float = 2.0) -> threading.Thread:
        """Run in a daemon thread."""
        self._thread = threading.Thread(
            target=self.run_forever, args=(poll_seconds,), name="outbox-worker", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
