"""The generator's simulated patient responses (issue 16), on both databases: through
the actions (each submission audited as the patient's, with the source `patient-link`),
only submitted answers count, and reminders raise the completion rate."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.analytics.completion import completion
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.queries.reader import open_reader
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.synthetic.responses import simulate_responses


def _rate(engine: sa.Engine, reminders: bool) -> tuple[float, int, int]:
    today = datetime.now(UTC).date()
    # A seed of its own for each clinic: seeded ids, and the databases live for the session.
    seed = random.SystemRandom().randrange(10**6, 10**9)
    made = generate_clinic(engine, patients_count=30, seed=seed, anchor=today)
    done = simulate_responses(
        engine, made.clinic_id, seed=seed, until=today, answer_rate=0.55, reminders=reminders
    )
    with open_reader(engine, made.clinic_id, Role.OWNER, made.owner_id) as r:
        found = completion(r, today)
    assert (found.overall.completed, found.overall.asked) == (done.submitted, done.asked)
    with engine.connect() as conn:
        submitted_events = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(
                t.audit_events.c.clinic_id == made.clinic_id,
                t.audit_events.c.action == AuditAction.QUESTIONNAIRE_SUBMITTED,
                t.audit_events.c.source == "patient-link",
            )
        ).scalar_one()
    assert submitted_events == done.submitted
    assert (done.reminders > 0) is reminders
    share = found.overall.share
    assert share is not None
    return share, done.submitted, done.asked


def test_reminders_raise_the_completion_rate(engine: sa.Engine) -> None:
    without, _k, asked = _rate(engine, reminders=False)
    with_reminders, _k2, _n2 = _rate(engine, reminders=True)
    assert asked > 20
    assert with_reminders > without


def test_the_shares_are_checked() -> None:
    with pytest.raises(ValueError, match="shares"):
        simulate_responses(
            sa.create_engine("sqlite://"),
            __import__("uuid").uuid4(),
            seed=1,
            until=datetime.now(UTC).date(),
            answer_rate=0.9,
            reminder_lift=0.2,
        )
