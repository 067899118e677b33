"""Which answers are the discharge outcome and which are after care (issue 16): a
discharge questionnaire answered within its grace (`discharge_grace_days`, as long as its
first link opens) is the discharge value, on the chart and in the analytics, for scores
and for the analgesic log alike; answered later (a follow-up link opens it first) it is
after care, never the discharge outcome. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.actions import episodes, home_reports, outcomes, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics import dataset as analytics_dataset
from needlepoint.domain.benefits import EpisodeBenefits
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    CloseEpisode,
    RecordMeasurement,
    RecordMedicationUse,
    ReportAnalgesicUse,
    ReportReturnToActivity,
    SaveQuestionnaireAnswers,
)
from needlepoint.domain.entities import Measurement
from needlepoint.domain.enums import DrugClass, Role, TimePoint
from needlepoint.domain.questionnaires import discharge_grace_days
from needlepoint.queries.benefits import episode_benefits
from needlepoint.queries.reader import open_reader
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd

BASE = "http://clinic.test"
CLOSED = date(2026, 3, 15)
DISCHARGE_SENT = datetime(2026, 3, 15, 15, tzinfo=UTC)


def _at(c: ClinicFixture, when: datetime) -> SqlUnitOfWork:
    return SqlUnitOfWork(c.engine, lambda: when)


def _discharged(c: ClinicFixture) -> UUID:
    """NPRS 7 → 3 and Ibuprofen 5 days a week during care; discharged on CLOSED."""
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email="g@p.test"))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    outcomes.record_medication_use(
        c.uow(),
        c.as_clinician,
        RecordMedicationUse(
            patient_id=p.id,
            episode_id=ep.id,
            drug="Ibuprofen",
            drug_class=DrugClass.NSAID,
            dose_mg=400,
            days_per_week=5,
            recorded_on=date(2026, 2, 1),
        ),
    )
    for when, nprs in ((date(2026, 2, 1), 7), (date(2026, 3, 10), 3)):
        outcomes.record_measurement(
            c.uow(),
            c.as_clinician,
            RecordMeasurement(
                patient_id=p.id,
                episode_id=ep.id,
                instrument_id="nprs",
                answers={"item1": nprs},
                taken_at=datetime.combine(when, datetime.min.time(), UTC) + timedelta(hours=9),
            ),
        )
    with c.engine.connect() as conn:
        version = conn.execute(
            sa.select(t.episodes.c.version).where(t.episodes.c.id == ep.id)
        ).scalar_one()
    episodes.close_episode(
        c.uow(),
        c.as_clinician,
        CloseEpisode(
            episode_id=ep.id,
            expected_version=version,
            closed_on=CLOSED,
            discharge_reason="goals met",
        ),
    )
    return ep.id


def _asked(
    c: ClinicFixture, episode_id: UUID, ids: list[str], time_point: TimePoint, when: datetime
) -> tuple[dict[str, Any], str]:
    done = questionnaires.assign_questionnaires(
        _at(c, when),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=episode_id,
            instrument_ids=ids,
            time_point=time_point,
            due_on=when.date(),
            send=True,
            base_url=BASE,
        ),
    )
    assert done.message is not None
    assert done.message.link_url is not None
    return {a.instrument_id: a for a in done.assignments}, done.message.link_url.rsplit("/", 1)[-1]


def _nprs(c: ClinicFixture, token: str, assignment_id: UUID, score: int, when: datetime) -> Any:
    questionnaires.save_questionnaire_answers(
        _at(c, when),
        token,
        SaveQuestionnaireAnswers(assignment_id=assignment_id, answers={"item1": score}),
    )
    return questionnaires.submit_questionnaire(_at(c, when), token, assignment_id)


def _benefits(c: ClinicFixture, episode_id: UUID) -> EpisodeBenefits:
    with open_reader(c.engine, c.clinician.clinic_id, Role.CLINICIAN, c.clinician.id) as r:
        return episode_benefits(r, episode_id)


def _dataset(c: ClinicFixture) -> analytics_dataset.Dataset:
    with open_reader(c.engine, c.owner.clinic_id, Role.OWNER, c.owner.id) as r:
        return analytics_dataset.load(r)


def _latest_pain(c: ClinicFixture, episode_id: UUID) -> object:
    pain = next(b for b in _benefits(c, episode_id).benefits if b.id == "pain_relief")
    return pain.measures[0].latest


def test_a_discharge_answer_within_its_grace_is_the_discharge_value(clinic: ClinicFixture) -> None:
    ep = _discharged(clinic)
    asked, token = _asked(clinic, ep, ["nprs"], TimePoint.DISCHARGE, DISCHARGE_SENT)
    late = DISCHARGE_SENT + timedelta(days=discharge_grace_days() - 1)
    m = _nprs(clinic, token, asked["nprs"].id, 1, late)
    assert m.context is None
    assert _latest_pain(clinic, ep) == 1


def test_a_discharge_answer_given_at_the_follow_up_is_after_care_not_the_outcome(
    clinic: ClinicFixture,
) -> None:
    """Left unanswered, the discharge questionnaire is opened first by the 6-week link;
    answered then, it must not become the discharge outcome (8 instead of 3)."""
    ep = _discharged(clinic)
    _asked(clinic, ep, ["nprs"], TimePoint.DISCHARGE, DISCHARGE_SENT)  # never answered
    follow_up = datetime(2026, 4, 26, 10, tzinfo=UTC)
    _asked_f, token = _asked(clinic, ep, ["nprs"], TimePoint.FOLLOW_UP, follow_up)
    opened = questionnaires.open_questionnaires(_at(clinic, follow_up), token)
    answered: list[Measurement] = [
        _nprs(clinic, token, a.id, 8, follow_up + timedelta(hours=1)) for a, _r in opened.due
    ]
    assert len(answered) == 2
    assert all(m.context and m.context["after_discharge_days"] == 42 for m in answered)
    assert _latest_pain(clinic, ep) == 3
    in_care = _dataset(clinic).measurements.to_pylist()
    assert sorted(r["score"] for r in in_care) == [3, 7]


def test_a_discharge_analgesic_answer_two_days_after_discharge_is_the_discharge_value(
    clinic: ClinicFixture,
) -> None:
    ep = _discharged(clinic)
    asked, token = _asked(clinic, ep, ["analgesic_use"], TimePoint.DISCHARGE, DISCHARGE_SENT)
    home_reports.report_analgesic_use(
        _at(clinic, DISCHARGE_SENT + timedelta(days=2)),
        token,
        ReportAnalgesicUse(assignment_id=asked["analgesic_use"].id, days={"Ibuprofen": 0}),
    )
    drug = next(b for b in _benefits(clinic, ep).benefits if b.id == "drug_free_management")
    assert {f.label: f.value for f in drug.facts} == {"Ibuprofen 400 mg": "5 → 0"}
    data = _dataset(clinic)
    assert sorted(r["days_per_week"] for r in data.medication.to_pylist()) == [0, 5]
    assert data.after_care_medication.num_rows == 0


def test_the_research_export_marks_answers_after_care(clinic: ClinicFixture) -> None:
    """A researcher taking baseline → last value per episode must be able to leave the
    follow-up answers out: they are exported with `after_care` true, the rest false."""
    import random

    from needlepoint.domain.entities import Episode, MedicationUse, Patient
    from needlepoint.domain.research import ClinicRecords, deidentify

    ep = _discharged(clinic)
    follow_up = datetime(2026, 4, 26, 10, tzinfo=UTC)
    asked, token = _asked(clinic, ep, ["nprs", "analgesic_use"], TimePoint.FOLLOW_UP, follow_up)
    _nprs(clinic, token, asked["nprs"].id, 8, follow_up)
    home_reports.report_analgesic_use(
        _at(clinic, follow_up),
        token,
        ReportAnalgesicUse(assignment_id=asked["analgesic_use"].id, days={"Ibuprofen": 2}),
    )
    cid = clinic.owner.clinic_id
    uow = clinic.uow()
    with uow:
        records = ClinicRecords(
            time_zone="UTC",
            patients=uow.list_by(Patient, cid),
            episodes=uow.list_by(Episode, cid),
            sessions=[],
            sites=[],
            measurements=uow.list_by(Measurement, cid),
            adverse_events=[],
            medication=uow.list_by(MedicationUse, cid),
        )
    release = deidentify(records, k=1, dates="year", rng=random.Random(1))
    scores = sorted((r["score"], r["after_care"]) for r in release.table("measurements").rows)
    assert scores == [(3, False), (7, False), (8, True)]
    drugs = sorted((r["days_per_week"], r["after_care"]) for r in release.table("medication").rows)
    assert drugs == [(2, True), (5, False)]


def test_a_return_to_work_reported_at_the_follow_up_is_the_episodes_return(
    clinic: ClinicFixture,
) -> None:
    """ "Not yet" at discharge, then at 6 weeks "returned on 1 March" (in care): the
    episode's recovery says the patient returned, reported after discharge."""
    ep = _discharged(clinic)
    asked, token = _asked(clinic, ep, ["return_to_activity"], TimePoint.DISCHARGE, DISCHARGE_SENT)
    home_reports.report_return_to_activity(
        _at(clinic, DISCHARGE_SENT),
        token,
        ReportReturnToActivity(
            assignment_id=asked["return_to_activity"].id, activity="work", returned=0
        ),
    )
    recovery = next(b for b in _benefits(clinic, ep).benefits if b.id == "faster_recovery")
    assert {f.label: f.value for f in recovery.facts}["returned to work"] == "not yet"
    follow_up = datetime(2026, 4, 26, 10, tzinfo=UTC)
    asked, token = _asked(clinic, ep, ["return_to_activity"], TimePoint.FOLLOW_UP, follow_up)
    home_reports.report_return_to_activity(
        _at(clinic, follow_up + timedelta(days=1)),
        token,
        ReportReturnToActivity(
            assignment_id=asked["return_to_activity"].id,
            activity="work",
            returned=1,
            returned_on=date(2026, 3, 1),
        ),
    )
    recovery = next(b for b in _benefits(clinic, ep).benefits if b.id == "faster_recovery")
    facts = {f.label: f.value for f in recovery.facts}
    assert facts["returned to work on"] == "2026-03-01 (reported after discharge)"
    assert "returned to work" not in facts
