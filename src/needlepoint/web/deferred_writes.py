"""Writes that a page view causes but need not wait for: the audit trail of reads and
web sessions' last activity.

Every record of health information a page or API read opens is audited
(`queries.reader`). Writing those events inside the request would make every chart view
a write: on SQLite it would take the database's single write lock, so a page view would
wait behind every note being saved. Instead a request hands its read events to this
queue and returns; one background thread per process writes whatever has queued, in one
transaction per clinic per batch (one chain-head lock each). A web session's "last
seen" time (for the idle timeout, at most once a minute) is written the same way.

Anything that reads the audit trail back (the audit report, `needlepoint audit`) calls
`flush()` first, so a report never misses a read this process served. On a clean stop
the queue is drained. What a crash can lose is the reads of the last `interval` seconds
(the operator's guide says so); clinical writes never go through here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from uuid import UUID

import sqlalchemy as sa

from needlepoint.actions import accounts
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.audit import content_digest
from needlepoint.domain.entities import AuditEvent, WebSession
from needlepoint.domain.errors import StaleVersion

log = logging.getLogger(__name__)


class DeferredWrites:
    """Read events and session touches waiting to be written, and the thread that
    writes them."""

    def __init__(self, engine: sa.Engine, *, interval: float = 0.25) -> None:
        self.engine = engine
        self.interval = interval
        self._pending: list[AuditEvent] = []
        self._touches: dict[UUID, WebSession] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time: keeps the order
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background writer (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="needlepoint-deferred-writes", daemon=True
            )
            self._thread.start()

    def put(self, events: Sequence[AuditEvent]) -> None:
        """Queue events; written within about `interval` seconds (or now, when the
        background writer is not running)."""
        if not events:
            return
        with self._lock:
            self._pending.extend(events)
        if self._thread is None:
            self.flush()
        else:
            self._wake.set()

    def touch(self, session: WebSession) -> None:
        """Note activity on a web session (written as `actions.accounts.touch_session`
        would, once due)."""
        with self._lock:
            self._touches[session.id] = session
        if self._thread is None:
            self.flush()
        else:
            self._wake.set()

    def flush(self) -> int:
        """Write everything queued so far, now; returns how many events were written."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                touches, self._touches = list(self._touches.values()), {}
            if batch:
                # The content digests (the chain's costly half) before the write lock:
                # an event's `hash` holds its digest until the chain links it.
                ready = [e if e.hash else replace(e, hash=content_digest(e)) for e in batch]
                # One transaction per clinic: a transaction is scoped to one clinic
                # (PostgreSQL row-level security and the audit append function).
                by_clinic: dict[UUID, list[AuditEvent]] = {}
                for event in ready:
                    by_clinic.setdefault(event.clinic_id, []).append(event)
                written: set[UUID] = set()
                try:
                    for clinic_id, events in by_clinic.items():
                        with SqlUnitOfWork(self.engine) as uow:
                            for event in events:
                                uow.add(event)
                            uow.commit()
                        written.add(clinic_id)
                except Exception:
                    with self._lock:  # keep the rest for the next try, in their order
                        self._pending[:0] = [e for e in batch if e.clinic_id not in written]
                    raise
            for session in touches:  # best effort: the next page view touches again
                try:
                    accounts.touch_session(SqlUnitOfWork(self.engine), session)
                except StaleVersion:  # touched meanwhile by another process: enough
                    pass
                except Exception:
                    log.warning("could not note activity on a web session", exc_info=True)
            return len(batch)

    def stop(self) -> None:
        """Write what is queued and stop the background writer."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            # Let a burst of page views gather into one transaction.
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # e.g. the database busy for longer than the lock wait
                log.exception("deferred writes (read audit, session activity) failed; retrying")
                self._wake.set()
