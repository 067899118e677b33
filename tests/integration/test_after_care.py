"""Answers after discharge (issue 16): a follow-up answer belongs to the episode it was
asked for, marked after care; the outcome up to discharge (responder rates, change from
baseline, recovery, the benefit summary) does not change with it; the after-care
analysis counts it (n/N, benefit kept with the threshold's source, drug-free share), and
says "not measured" before any answer. On SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa

from needlepoint.actions import episodes, outcomes, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.analytics_marks import read_mark
from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.db.migrate import head_revision, upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics import dataset as analytics_dataset
from needlepoint.analytics.dashboard import Dashboard, compute
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    CloseEpisode,
    RecordMeasurement,
    SaveQuestionnaireAnswers,
)
from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.enums import DrugClass, Role, TimePoint
from needlepoint.domain.errors import InvalidInput
from needlepoint.queries.benefits import episode_benefits
from needlepoint.queries.reader import open_reader
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd

BASE = "http://clinic.test"
CLOSED = date(2026, 3, 15)
FOLLOW_UP_6W = datetime(2026, 4, 26, 10, tzinfo=UTC)  # discharge + 42 days


def _ndi(level: int) -> dict[str, int]:
    return {f"item{i}": level for i in range(1, 11)}  # NDI % = level × 20


def _discharged(c: ClinicFixture) -> tuple[UUID, UUID]:
    """A neck-pain episode with NDI 60 % → 20 % and NPRS 7 → 3 in care, discharged."""
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email="f@patient.test"))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    for when, ndi, nprs in ((date(2026, 2, 1), 3, 7), (date(2026, 3, 10), 1, 3)):
        taken = datetime.combine(when, datetime.min.time(), UTC) + timedelta(hours=9)
        for instrument, answers in (("ndi", _ndi(ndi)), ("nprs", {"item1": nprs})):
            outcomes.record_measurement(
                c.uow(),
                c.as_clinician,
                RecordMeasurement(
                    patient_id=p.id,
                    episode_id=ep.id,
                    instrument_id=instrument,
                    answers=answers,
                    taken_at=taken,
                ),
            )
    episodes.close_episode(
        c.uow(),
        c.as_clinician,
        CloseEpisode(
            episode_id=ep.id,
            expected_version=ep.version,
            closed_on=CLOSED,
            discharge_reason="goals met",
        ),
    )
    return p.id, ep.id


def _answer_follow_up(
    c: ClinicFixture, episode_id: UUID, ndi: int, nprs: int, at: datetime = FOLLOW_UP_6W
) -> list[Measurement]:
    """The clinic asks for the follow-up on its due day; the patient answers a day later."""
    done = questionnaires.assign_questionnaires(
        SqlUnitOfWork(c.engine, lambda: at),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=episode_id,
            instrument_ids=["ndi", "nprs"],
            time_point=TimePoint.FOLLOW_UP,
            due_on=at.date(),
            send=True,
            base_url=BASE,
        ),
    )
    assert done.message is not None
    assert done.message.link_url is not None
    token = done.message.link_url.rsplit("/", 1)[-1]
    out = []
    for a in done.assignments:
        answers = _ndi(ndi) if a.instrument_id == "ndi" else {"item1": nprs}
        questionnaires.save_questionnaire_answers(
            SqlUnitOfWork(c.engine, lambda: at + timedelta(days=1)),
            token,
            SaveQuestionnaireAnswers(assignment_id=a.id, answers=answers),
        )
        out.append(
            questionnaires.submit_questionnaire(
                SqlUnitOfWork(c.engine, lambda: at + timedelta(days=1)), token, a.id
            )
        )
    return out


def _board(c: ClinicFixture) -> Dashboard:
    with open_reader(c.engine, c.owner.clinic_id, Role.OWNER, c.owner.id) as r:
        board, _fitted = compute(analytics_dataset.load(r))
    return board


def _up_to_discharge(board: Dashboard) -> dict[str, object]:
    """Every figure of the dashboard that reads an outcome up to discharge."""
    return {
        "responders": [asdict(r) for r in board.responders],
        "tiles": [(t.id, t.status, asdict(t.overall)) for t in board.tiles],
        "recovery": repr(board.recovery),
        "medication": [asdict(m) for m in board.medication],
        "measurements": board.measurements,
    }


def test_a_follow_up_answer_belongs_to_its_episode_marked_after_care(
    clinic: ClinicFixture,
) -> None:
    _p, ep = _discharged(clinic)
    answered = _answer_follow_up(clinic, ep, ndi=4, nprs=8)
    for m in answered:
        assert m.episode_id == ep  # no longer lost to the analytics (was None)
        assert m.context == {"after_discharge_days": 43, "follow_up_day": 42}


def test_answers_after_discharge_leave_every_outcome_up_to_discharge_as_it_was(
    clinic: ClinicFixture,
) -> None:
    """The patient is worse at 6 weeks (NDI 80 %, NPRS 8): were the answer the episode's
    latest value, pain relief and function would stop being responders."""
    _p, ep = _discharged(clinic)
    before = _board(clinic)
    pain = next(t for t in before.tiles if t.id == "pain_relief")
    assert (pain.overall.complete, pain.overall.responders) == (1, 1)
    _answer_follow_up(clinic, ep, ndi=4, nprs=8)
    after = _board(clinic)
    assert _up_to_discharge(after) == _up_to_discharge(before)
    assert after.after_care is not None
    assert after.after_care.answers == 2

    with open_reader(clinic.engine, clinic.owner.clinic_id, Role.OWNER, clinic.owner.id) as r:
        summary = episode_benefits(r, ep)
    ndi = next(m for b in summary.benefits for m in b.measures if m.instrument_id == "ndi")
    assert (ndi.baseline, ndi.latest, ndi.administrations) == (60.0, 20.0, 2)
    assert [p.score for p in ndi.after_discharge] == [80.0]
    assert ndi.responder is not None
    assert ndi.responder.status == "responder"


def test_the_after_care_analysis_counts_due_answered_and_kept_with_its_source(
    clinic: ClinicFixture,
) -> None:
    _p, ep = _discharged(clinic)
    empty = _board(clinic).after_care
    assert empty is not None
    assert not empty.measured
    rows = {(r.instrument_id, r.follow_up): r for r in empty.rows}
    # Both follow-ups are due (the records are read long after discharge + 91 days).
    assert (rows["ndi", "6 weeks"].due, rows["ndi", "6 weeks"].answered) == (1, 0)
    assert rows["ndi", "6 weeks"].status == "not measured"
    assert rows["ndi", "6 weeks"].rate is None  # never a bare 0 %
    assert all(d.status == "not measured" for d in empty.drugs)

    # NDI kept (60 → 30 %: 30 points better, over the 10-point threshold); NPRS lost
    # (7 → 6: 1 point, under 2 points and 30 %).
    _answer_follow_up(clinic, ep, ndi=1, nprs=6)
    board = _board(clinic).after_care
    assert board is not None
    assert board.measured
    rows = {(r.instrument_id, r.follow_up): r for r in board.rows}
    ndi, nprs = rows["ndi", "6 weeks"], rows["nprs", "6 weeks"]
    assert (ndi.due, ndi.answered, ndi.kept, ndi.rate) == (1, 1, 1, 1.0)
    assert (nprs.due, nprs.answered, nprs.kept, nprs.rate) == (1, 1, 0, 0.0)
    assert ndi.ci_low is not None
    assert 0 < ndi.ci_low < 1
    assert ndi.source
    assert nprs.source
    assert "2" in nprs.threshold
    assert "30 %" in nprs.threshold
    assert rows["ndi", "3 months"].status == "not measured"  # due, not answered


def test_the_drug_free_share_after_care_reads_the_analgesic_log_after_discharge(
    clinic: ClinicFixture,
) -> None:
    p, ep = _discharged(clinic)
    uow = SqlUnitOfWork(clinic.engine)
    with uow:
        for drug, days, on in (("ibuprofen", 3, 40), ("ibuprofen", 0, 44), ("codeine", 0, 44)):
            uow.add(
                MedicationUse(
                    id=uow.new_id(),
                    clinic_id=clinic.owner.clinic_id,
                    patient_id=p,
                    drug=drug,
                    drug_class=DrugClass.NSAID if drug == "ibuprofen" else DrugClass.OPIOID,
                    days_per_week=days,
                    recorded_on=CLOSED + timedelta(days=on),
                    recorded_by=clinic.clinician.id,
                    created_at=datetime.now(UTC),
                    episode_id=ep,
                )
            )
        uow.commit()
    board = _board(clinic)
    assert board.after_care is not None
    six = next(d for d in board.after_care.drugs if d.follow_up == "6 weeks")
    assert (six.logged, six.drug_free, six.share, six.status) == (1, 1, 1.0, "measured")
    # The in-care analgesic analysis does not read entries after discharge.
    assert all(m.episodes_with_use == 0 for m in board.medication)


def test_a_follow_up_answer_moves_the_clinics_analytics_version(clinic: ClinicFixture) -> None:
    _p, ep = _discharged(clinic)
    with clinic.engine.connect() as conn:
        before = read_mark(conn, clinic.owner.clinic_id)
    _answer_follow_up(clinic, ep, ndi=2, nprs=4)
    with clinic.engine.connect() as conn:
        after = read_mark(conn, clinic.owner.clinic_id)
    assert before is not None
    assert after is not None
    assert after[0] > before[0]


def test_a_clinician_cannot_mark_a_value_as_after_care(clinic: ClinicFixture) -> None:
    p = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    ep = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(p.id))
    with pytest.raises(InvalidInput) as refused:
        outcomes.record_measurement(
            clinic.uow(),
            clinic.as_clinician,
            RecordMeasurement(
                patient_id=p.id,
                episode_id=ep.id,
                instrument_id="nprs",
                answers={"item1": 5},
                context={"after_discharge_days": 3},
            ),
        )
    assert refused.value.field == "context.after_discharge_days"


def test_the_api_and_the_analytics_page_show_after_care_with_not_measured_first(
    clinic: ClinicFixture,
) -> None:
    from fastapi.testclient import TestClient

    from needlepoint.actions.clinics import issue_operator_token
    from needlepoint.analytics.dashboard import dashboards_of
    from needlepoint.web.app import create_app

    _p, ep = _discharged(clinic)
    client = TestClient(create_app(clinic.engine, secret_key="after-care-" + "k" * 40))
    token = issue_operator_token(clinic.uow(), clinic.clinician, "test", source="test")
    auth = {"Authorization": f"Bearer {token}"}

    def ready() -> dict[str, object]:
        client.get("/api/v1/analytics/after-care", headers=auth)  # starts the refresh
        assert dashboards_of(client.app.state).wait(120)  # type: ignore[attr-defined]
        got = client.get("/api/v1/analytics/after-care", headers=auth)
        assert got.status_code == 200, got.text
        body: dict[str, object] = got.json()
        return body

    first = ready()
    assert first["measured"] is False
    rows = first["rows"]
    assert isinstance(rows, list)
    assert {r["status"] for r in rows} == {"not measured"}
    assert {r["rate"] for r in rows} == {None}

    _answer_follow_up(clinic, ep, ndi=1, nprs=6)
    later = ready()  # the follow-up answer moved the version: a new snapshot
    assert later["measured"] is True
    six = {r["instrument_id"]: r for r in later["rows"] if r["follow_up"] == "6 weeks"}  # type: ignore[union-attr, index]
    assert (six["ndi"]["answered"], six["ndi"]["due"], six["ndi"]["kept"]) == (1, 1, 1)


def test_answers_stored_without_their_episode_by_the_older_version_are_filed_by_the_upgrade(
    clinic: ClinicFixture,
) -> None:
    """Before answers after discharge were filed under their episode, they were stored
    with none (and lost to the analytics): migration 0021 files them, with the after-care
    context, and moves the clinic's analytics version."""
    _p, ep = _discharged(clinic)
    answered = _answer_follow_up(clinic, ep, ndi=4, nprs=8)
    ids = [m.id for m in answered]
    with clinic.engine.begin() as conn:  # as the older version stored them
        conn.execute(
            sa.update(t.measurements)
            .where(t.measurements.c.id.in_(ids))
            .values(episode_id=None, context=None)
        )
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0020'"))
        scope_to_clinic(conn, clinic.owner.clinic_id)
        before = read_mark(conn, clinic.owner.clinic_id)
    upgrade(clinic.engine, "0021")  # that migration only: the later ones are in place
    with clinic.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
        )
        rows = conn.execute(
            sa.select(t.measurements.c.episode_id, t.measurements.c.context).where(
                t.measurements.c.id.in_(ids)
            )
        ).all()
        scope_to_clinic(conn, clinic.owner.clinic_id)
        after = read_mark(conn, clinic.owner.clinic_id)
    assert [(r.episode_id, r.context) for r in rows] == [
        (ep, {"after_discharge_days": 43, "follow_up_day": 42})
    ] * 2
    assert before is not None
    assert after is not None
    assert after[0] == before[0] + 1
