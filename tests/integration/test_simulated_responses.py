"""The generator's simulated patient responses (issue 16), on both databases: through
the actions (each submission audited as the patient's, with the source `patient-link`),
only submitted answers count, and reminders raise the completion rate."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.analytics import dataset as datasets
from needlepoint.analytics.completion import completion
from needlepoint.analytics.dashboard import compute
from needlepoint.cli import app
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


def test_every_time_point_is_asked_even_after_one_went_unanswered(engine: sa.Engine) -> None:
    """Both follow-ups after discharge are asked of every episode whose days have come,
    answered at the response rate, whatever happened at intake: the after-care analysis
    then has answers to show."""
    today = datetime.now(UTC).date()
    seed = random.SystemRandom().randrange(10**6, 10**9)
    made = generate_clinic(engine, patients_count=30, seed=seed, anchor=today)
    done = simulate_responses(
        engine, made.clinic_id, seed=seed, until=today, answer_rate=0.55, reminders=False
    )
    a = t.questionnaire_assignments
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.episode_id, a.c.time_point, a.c.completed_at).where(
                a.c.clinic_id == made.clinic_id
            )
        ).all()
    unanswered_intake = {
        r.episode_id for r in rows if r.time_point == "intake" and not r.completed_at
    }
    asked_later = {r.episode_id for r in rows if r.time_point in ("discharge", "follow_up")}
    assert unanswered_intake & asked_later  # asked again after an unanswered time point
    follow_ups = [r for r in rows if r.time_point == "follow_up"]
    assert done.follow_ups_asked == len(follow_ups) > 0
    assert 0 < done.follow_ups_submitted == sum(1 for r in follow_ups if r.completed_at)
    assert done.follow_ups_submitted < done.follow_ups_asked  # at the rate, not all
    with open_reader(engine, made.clinic_id, Role.OWNER, made.owner_id) as r:
        board, _fitted = compute(datasets.load(r))
    assert board.after_care is not None
    assert board.after_care.measured
    assert board.after_care.answers == done.follow_ups_submitted


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


def test_generate_and_demo_simulate_patient_responses(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "gen.db"
    result = runner.invoke(
        app,
        [
            "generate",
            "--patients",
            "12",
            "--seed",
            "4",
            "--patient-responses",
            "0.55",
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "patients answered" in result.output
    demo = runner.invoke(
        app, ["demo", "--path", str(tmp_path / "d"), "--patients", "12", "--no-serve"]
    )
    assert demo.exit_code == 0, demo.output
    for path in (db, tmp_path / "d" / "demo.db"):
        with make_engine(f"sqlite:///{path}").connect() as conn:
            submitted = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.questionnaire_responses)
                .where(t.questionnaire_responses.c.submitted_at.is_not(None))
            ).scalar_one()
        assert submitted > 0
