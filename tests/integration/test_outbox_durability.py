"""Outbox durability (issue 16): a worker killed mid-batch — SIGKILL of a worker process,
or an exception between claim and mark — and then restarted sends every invitation,
none lost; counted at a real SMTP server (aiosmtpd) by Message-ID.

The kill points (`needlepoint.outbox.Fault`):

* after the N-th message was marked sent (between two messages);
* after the N-th message was claimed, before SMTP (its claim goes stale; the restarted
  worker takes it over once the lease ran out);
* an exception between claim and mark, in the worker's own process;
* after the SMTP server accepted the N-th message and before it was marked: the one
  window no protocol closes (`actions.outbox`). The restarted worker sends that one
  message again, with the same Message-ID; the test counts it and shows it is the only
  repeat, recognisable as the same message.

The figures (messages, deliveries, distinct Message-IDs, duplicates, lost) are printed
with `-s` for the report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from needlepoint.actions import episodes, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.mail import MailCatcher, SmtpServer
from needlepoint.domain.commands import AssignQuestionnaires
from needlepoint.outbox import OutboxWorker
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd

MESSAGES = 20
KILL_AFTER = 7
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher() as c:
        yield c


def _invite_many(c: ClinicFixture, n: int) -> list[str]:
    """`n` patients, each sent an NDI invitation; their e-mail addresses."""
    emails = []
    for i in range(n):
        email = f"p{i}-{c.owner.clinic_id.hex[:6]}@patient.test"
        p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email=email))
        ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
        questionnaires.assign_questionnaires(
            c.uow(),
            c.as_clinician,
            AssignQuestionnaires(
                episode_id=ep.id, instrument_ids=["ndi"], send=True, base_url="http://c.test"
            ),
        )
        emails.append(email)
    return emails


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, uuid
    from needlepoint.adapters import sealing
    from needlepoint.adapters.db.engine import make_engine
    from needlepoint.adapters.mail import SmtpServer
    from needlepoint.outbox import OutboxWorker
    from tests.conftest import TEST_SEALING_KEY

    sealing.configure([TEST_SEALING_KEY], replace=True)
    url, smtp, clinic, step, after = sys.argv[1:6]
    seen = []

    def fault(at, message):
        if at == step:
            seen.append(message.id)
            if len(seen) == int(after):
                os.kill(os.getpid(), signal.SIGKILL)

    worker = OutboxWorker(
        make_engine(url), SmtpServer.from_url(smtp), fault=fault,
        only_clinics=[uuid.UUID(clinic)],
    )
    worker.run_once()
    """
)


def _run_killed_worker(
    engine: sa.Engine, catcher: MailCatcher, clinic: ClinicFixture, step: str
) -> int:
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            url,
            catcher.url,
            str(clinic.owner.clinic_id),
            step,
            str(KILL_AFTER),
        ],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return done.returncode


def _restart(c: ClinicFixture, catcher: MailCatcher) -> None:
    """A new worker, after the dead one's lease ran out (its clock 6 minutes ahead)."""
    later = datetime.now(UTC) + timedelta(minutes=6)
    worker = OutboxWorker(
        c.engine,
        SmtpServer.from_url(catcher.url),
        clock=lambda: later,
        only_clinics=[c.owner.clinic_id],
    )
    worker.run_once()


def _figures(c: ClinicFixture, catcher: MailCatcher, emails: list[str]) -> dict[str, int]:
    mine = [m for m in catcher.messages if set(m.recipients) & set(emails)]
    by_id = Counter(m.message_id for m in mine)
    with c.engine.connect() as conn:
        states = Counter(
            conn.execute(
                sa.select(t.outbox_messages.c.state).where(
                    t.outbox_messages.c.clinic_id == c.owner.clinic_id
                )
            ).scalars()
        )
    reached = {r for m in mine for r in m.recipients}
    return {
        "messages": len(emails),
        "deliveries": len(mine),
        "distinct": len(by_id),
        "duplicates": sum(n - 1 for n in by_id.values()),
        "lost": len(set(emails) - reached),
        "marked_sent": states.get("sent", 0),
    }


@pytest.mark.parametrize("step", ["marked", "claimed"])
def test_a_worker_killed_mid_batch_sends_every_invitation_exactly_once_after_restart(
    engine: sa.Engine, clinic: ClinicFixture, catcher: MailCatcher, step: str
) -> None:
    emails = _invite_many(clinic, MESSAGES)
    code = _run_killed_worker(engine, catcher, clinic, step)
    assert code == -signal.SIGKILL
    before = _figures(clinic, catcher, emails)
    assert 0 < before["deliveries"] < MESSAGES  # it died mid-batch
    _restart(clinic, catcher)
    figures = _figures(clinic, catcher, emails)
    print(
        f"\noutbox durability, SIGKILL after {KILL_AFTER} {step} [{engine.dialect.name}]:", figures
    )
    assert figures == {
        "messages": MESSAGES,
        "deliveries": MESSAGES,
        "distinct": MESSAGES,
        "duplicates": 0,
        "lost": 0,
        "marked_sent": MESSAGES,
    }


def test_an_exception_between_claim_and_mark_loses_nothing(
    clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    emails = _invite_many(clinic, MESSAGES)
    claimed: list[object] = []

    def fault(step: str, message: object) -> None:
        if step == "claimed":
            claimed.append(message)
            if len(claimed) == KILL_AFTER:
                raise RuntimeError("injected between claim and send")

    worker = OutboxWorker(
        clinic.engine,
        SmtpServer.from_url(catcher.url),
        fault=fault,
        only_clinics=[clinic.owner.clinic_id],
    )
    with pytest.raises(RuntimeError):
        worker.run_once()
    assert _figures(clinic, catcher, emails)["deliveries"] == KILL_AFTER - 1
    _restart(clinic, catcher)
    figures = _figures(clinic, catcher, emails)
    print("\noutbox durability, exception between claim and mark:", figures)
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["marked_sent"] == MESSAGES


def test_a_kill_after_the_server_accepted_and_before_the_mark_repeats_that_one_message(
    engine: sa.Engine, clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    """The window SMTP cannot close: at most the one message in flight is sent again,
    with the same Message-ID; nothing is lost."""
    emails = _invite_many(clinic, MESSAGES)
    assert _run_killed_worker(engine, catcher, clinic, "accepted") == -signal.SIGKILL
    _restart(clinic, catcher)
    figures = _figures(clinic, catcher, emails)
    print(f"\noutbox durability, SIGKILL in the SMTP window [{engine.dialect.name}]:", figures)
    assert figures["lost"] == 0
    assert figures["distinct"] == MESSAGES
    assert figures["duplicates"] == 1  # the one in flight, recognisably the same message
    assert figures["marked_sent"] == MESSAGES
