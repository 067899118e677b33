"""Questionnaires from home with their context (issue 16), on SQLite and PostgreSQL:
analgesic use (the analgesic log), return to work or sport, and PSFS, answered through
the patient's link. Each stores exactly what the clinician's path stores, marked
patient-reported; an answer out of range (or a day in the future) is refused naming the
field, with nothing written; a home answer of 0 days is a drug stopped, as the
analgesic log reads drug-free status."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions import episodes, home_reports, outcomes, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.benefits import analgesic_course
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    CloseEpisode,
    RecordMeasurement,
    RecordMedicationUse,
    ReportAnalgesicUse,
    ReportPsfs,
    ReportReturnToActivity,
    SetQuestionnairePlan,
)
from needlepoint.domain.enums import AuditAction, DrugClass, LinkEnd, Role, TimePoint
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.questionnaires import default_schedule
from needlepoint.queries.benefits import episode_benefits
from needlepoint.queries.outcomes import patient_medication
from needlepoint.queries.questionnaires import patient_reported_ids
from needlepoint.queries.reader import open_reader
from needlepoint.queries.timeline import patient_timeline
from needlepoint.web.app import create_app
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd

BASE = "http://clinic.test"
OPENED = date(2026, 2, 1)  # the factory's episode opening day


def _sent(c: ClinicFixture, *instrument_ids: str, log: dict[str, int] | None = None) -> Any:
    """A patient with an open episode (analgesics on record: `log`, drug → days a week)
    sent these questionnaires: (patient, episode, assignments by instrument, token)."""
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email="home@p.test"))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    for drug, days in (log or {}).items():
        outcomes.record_medication_use(
            c.uow(),
            c.as_clinician,
            RecordMedicationUse(
                patient_id=p.id,
                episode_id=ep.id,
                drug=drug,
                drug_class=DrugClass.NSAID if drug == "Ibuprofen" else DrugClass.PARACETAMOL,
                dose_mg=400,
                days_per_week=days,
                recorded_on=OPENED,
            ),
        )
    done = questionnaires.assign_questionnaires(
        c.uow(),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=ep.id, instrument_ids=list(instrument_ids), send=True, base_url=BASE
        ),
    )
    with c.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == done.message.id)
        ).scalar_one()
    by_id = {a.instrument_id: a for a in done.assignments}
    return p, ep, by_id, str(url).rsplit("/", 1)[-1]


def _reader(c: ClinicFixture) -> Any:
    return open_reader(c.engine, c.clinician.clinic_id, Role.CLINICIAN, c.clinician.id)


def _uow(c: ClinicFixture) -> SqlUnitOfWork:
    return SqlUnitOfWork(c.engine)


def _counts(c: ClinicFixture, patient_id: UUID) -> tuple[int, ...]:
    """What a refused answer must leave unchanged: the patient's log entries and
    measurements, their completed questionnaires, and the patient's submission events."""
    with c.engine.connect() as conn:
        n = [
            conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.patient_id == patient_id)
            ).scalar_one()
            for table in (t.medication_uses, t.measurements)
        ]
        done = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.questionnaire_assignments)
            .where(
                t.questionnaire_assignments.c.patient_id == patient_id,
                t.questionnaire_assignments.c.completed_at.is_not(None),
            )
        ).scalar_one()
        events = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(
                t.audit_events.c.patient_id == patient_id,
                t.audit_events.c.action.in_(
                    [AuditAction.MEDICATION_REPORTED, AuditAction.QUESTIONNAIRE_SUBMITTED]
                ),
            )
        ).scalar_one()
    return (*n, done, events)


def _refused(c: ClinicFixture, patient_id: UUID, call: Any, field: str) -> None:
    before = _counts(c, patient_id)
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field, err.value
    assert _counts(c, patient_id) == before


# -- analgesic use -------------------------------------------------------------------------


def test_the_patient_reports_analgesic_use_from_home_into_the_analgesic_log(
    clinic: ClinicFixture,
) -> None:
    p, ep, asked, token = _sent(
        clinic, "analgesic_use", "nprs", log={"Ibuprofen": 5, "Paracetamol": 3}
    )
    a = asked["analgesic_use"]
    forms = home_reports.home_forms(_uow(clinic), token)
    assert set(forms) == {a.id}  # NPRS is a plain questionnaire
    assert [d.drug for d in forms[a.id].drugs] == ["Ibuprofen", "Paracetamol"]

    def report(**kw: Any) -> Any:
        cmd = ReportAnalgesicUse(assignment_id=a.id, **kw)
        return lambda: home_reports.report_analgesic_use(_uow(clinic), token, cmd)

    both = {"Ibuprofen": 0, "Paracetamol": 2}
    _refused(clinic, p.id, report(days={"Ibuprofen": 9, "Paracetamol": 2}), "days.Ibuprofen")
    _refused(clinic, p.id, report(days={"Ibuprofen": 0}), "days.Paracetamol")
    _refused(clinic, p.id, report(days={**both, "Aspirin": 1}), "days.aspirin")
    _refused(clinic, p.id, report(days=both, other_drug="Naproxen", other_days=1), "other_class")
    _refused(
        clinic,
        p.id,
        report(days=both, other_drug="Naproxen", other_class="nsaid", other_days=8),
        "other_days",
    )
    # The plain questionnaire path cannot answer it (its context would be missing).
    _refused(
        clinic,
        p.id,
        lambda: questionnaires.submit_questionnaire(_uow(clinic), token, a.id),
        "assignment_id",
    )

    uses = report(
        days=both, other_drug="Naproxen", other_class="nsaid", other_days=1, other_dose_mg="250"
    )()
    assert [(u.drug, u.drug_class, u.days_per_week, u.dose_mg) for u in uses] == [
        ("Ibuprofen", DrugClass.NSAID, 0, 400),
        ("Paracetamol", DrugClass.PARACETAMOL, 2, 400),
        ("Naproxen", DrugClass.NSAID, 1, 250),
    ]
    assert all(u.episode_id == ep.id and u.response_id is not None for u in uses)
    with clinic.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.questionnaire_assignments).where(t.questionnaire_assignments.c.id == a.id)
        ).one()
        assert row.completed_at is not None
        assert row.measurement_id is None
        response = conn.execute(
            sa.select(t.questionnaire_responses).where(
                t.questionnaire_responses.c.assignment_id == a.id
            )
        ).one()
        assert response.submitted_at is not None
        assert {u.response_id for u in uses} == {response.id}
        events = conn.execute(
            sa.select(t.audit_events.c.source).where(
                t.audit_events.c.patient_id == p.id,
                t.audit_events.c.action == AuditAction.MEDICATION_REPORTED,
            )
        ).all()
    assert [e.source for e in events] == ["patient-link"]
    # Submitted once: a second report is refused.
    with pytest.raises(InvalidInput):
        report(days=both)()

    with _reader(clinic) as r:
        log = patient_medication(r, p.id)
        chart = patient_timeline(r, p.id)
        benefits = episode_benefits(r, ep.id)
    assert sum(1 for u in log if u.response_id is not None) == 3  # provenance kept
    home = [e for e in chart if e.kind == "medication" and "patient-reported" in e.detail]
    assert len(home) == 3
    # Drug-free status as the log reads it: ibuprofen's latest entry is 0 days (stopped).
    drug_free = next(b for b in benefits.benefits if b.id == "drug_free_management")
    facts = {f.label: f.value for f in drug_free.facts}
    assert facts["Ibuprofen 400 mg"] == "5 → 0"
    assert facts["Paracetamol 400 mg"] == "3 → 2"
    points, _ = analgesic_course(log)
    assert [pt.score for pt in points] == [8.0, 3.0]


def test_a_home_answer_of_zero_days_makes_the_patient_drug_free(clinic: ClinicFixture) -> None:
    p, ep, asked, token = _sent(clinic, "analgesic_use", log={"Ibuprofen": 4})
    home_reports.report_analgesic_use(
        _uow(clinic),
        token,
        ReportAnalgesicUse(assignment_id=asked["analgesic_use"].id, days={"ibuprofen": "0"}),
    )
    with _reader(clinic) as r:
        points, per_drug = analgesic_course(patient_medication(r, p.id))
        benefits = episode_benefits(r, ep.id)
    assert points[-1].score == 0.0  # no drug-days left: drug-free
    assert [u.days_per_week for u in per_drug["ibuprofen"]] == [4, 0]
    drug_free = next(b for b in benefits.benefits if b.id == "drug_free_management")
    assert drug_free.measured
    assert drug_free.measures[0].latest == 0.0
    # The link ends by use: nothing else was asked.
    with clinic.engine.connect() as conn:
        ended = conn.execute(
            sa.select(t.questionnaire_links.c.ended_because).where(
                t.questionnaire_links.c.patient_id == p.id
            )
        ).scalar_one()
    assert ended == LinkEnd.USED.value


def test_with_no_analgesic_on_record_the_patient_names_one_or_none(clinic: ClinicFixture) -> None:
    p, _ep, asked, token = _sent(clinic, "analgesic_use")
    a = asked["analgesic_use"]
    assert home_reports.home_forms(_uow(clinic), token)[a.id].drugs == []
    _refused(
        clinic,
        p.id,
        lambda: home_reports.report_analgesic_use(
            _uow(clinic),
            token,
            ReportAnalgesicUse(assignment_id=a.id, days={}, other_class="opioid", other_days=2),
        ),
        "other_drug",
    )
    uses = home_reports.report_analgesic_use(
        _uow(clinic), token, ReportAnalgesicUse(assignment_id=a.id, days={})
    )
    assert uses == []  # "none" is an answer: the questionnaire is done, nothing logged
    assert _counts(clinic, p.id)[2] == 1


# -- return to work or sport -------------------------------------------------------------


def test_the_patient_reports_return_to_work_stored_as_the_clinician_stores_it(
    clinic: ClinicFixture,
) -> None:
    p, ep, asked, token = _sent(clinic, "return_to_activity")
    a = asked["return_to_activity"]
    form = home_reports.home_forms(_uow(clinic), token)[a.id]
    assert form.opened_on == OPENED

    def report(**kw: Any) -> Any:
        cmd = ReportReturnToActivity(assignment_id=a.id, **kw)
        return lambda: home_reports.report_return_to_activity(_uow(clinic), token, cmd)

    tomorrow = form.today + timedelta(days=1)
    _refused(clinic, p.id, report(activity="work", returned=1, returned_on=tomorrow), "returned_on")
    before = (OPENED - timedelta(days=1)).isoformat()
    _refused(clinic, p.id, report(activity="work", returned=1, returned_on=before), "returned_on")
    _refused(clinic, p.id, report(activity="work", returned=1), "returned_on")
    _refused(clinic, p.id, report(activity="school", returned=0), "activity")
    _refused(clinic, p.id, report(activity="work", returned=2), "returned")

    m = report(activity="work", returned="1", returned_on="2026-02-11")()
    with _reader(clinic) as r:
        benefits = episode_benefits(r, ep.id)  # read from the home answer alone
    recovery = next(b for b in benefits.benefits if b.id == "faster_recovery")
    facts = {f.label: f.value for f in recovery.facts}
    assert facts["returned to work on"] == "2026-02-11"
    assert facts["days to return to work"] == 10
    # The clinician's path stores the same answer the same way.
    clinician = outcomes.record_measurement(
        clinic.uow(),
        clinic.as_clinician,
        RecordMeasurement(
            patient_id=p.id,
            episode_id=ep.id,
            instrument_id="return_to_activity",
            answers={"item1": 1},
            context={"activity": "work", "returned_on": "2026-02-11"},
        ),
    )
    assert (m.instrument_id, m.answers, m.score, m.context, m.episode_id) == (
        clinician.instrument_id,
        clinician.answers,
        clinician.score,
        clinician.context,
        clinician.episode_id,
    )
    with _reader(clinic) as r:
        reported = patient_reported_ids(r, p.id)
    assert m.id in reported
    assert clinician.id not in reported


def test_not_yet_returned_to_sport_needs_no_day(clinic: ClinicFixture) -> None:
    _p, _ep, asked, token = _sent(clinic, "return_to_activity")
    m = home_reports.report_return_to_activity(
        _uow(clinic),
        token,
        ReportReturnToActivity(
            assignment_id=asked["return_to_activity"].id, activity="sport", returned=0
        ),
    )
    assert m.context == {"activity": "sport"}
    assert m.score == 0


# -- PSFS ----------------------------------------------------------------------------------


def test_the_patient_rates_the_activities_named_at_intake_and_versions_stay_apart(
    clinic: ClinicFixture,
) -> None:
    p = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd(email="ps@p.test"))
    ep = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(p.id))
    intake = outcomes.record_measurement(
        clinic.uow(),
        clinic.as_clinician,
        RecordMeasurement(
            patient_id=p.id,
            episode_id=ep.id,
            instrument_id="psfs",
            answers={"item1": 3, "item2": 4},
            context={"activity1": "Driving", "activity2": "Lifting my child"},
        ),
    )
    done = questionnaires.assign_questionnaires(
        clinic.uow(),
        clinic.as_clinician,
        AssignQuestionnaires(
            episode_id=ep.id, instrument_ids=["psfs", "psfs_2"], send=True, base_url=BASE
        ),
    )
    with clinic.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == done.message.id)
        ).scalar_one()
    token = str(url).rsplit("/", 1)[-1]
    asked = {a.instrument_id: a for a in done.assignments}
    forms = home_reports.home_forms(_uow(clinic), token)
    assert forms[asked["psfs"].id].activities == intake.context
    assert forms[asked["psfs_2"].id].activities is None  # PSFS 2.0 is never compared

    def report(iid: str, ratings: dict[str, Any], named: dict[str, Any] | None = None) -> Any:
        cmd = ReportPsfs(assignment_id=asked[iid].id, ratings=ratings, activities=named or {})
        return lambda: home_reports.report_psfs(_uow(clinic), token, cmd)

    _refused(clinic, p.id, report("psfs", {"item1": 11, "item2": 5}), "answers.item1")
    _refused(clinic, p.id, report("psfs", {"item1": 7}), "answers.item2")
    m = report("psfs", {"item1": 7, "item2": "8", "item3": None}, {"activity1": "Typing"})()
    assert m.context == intake.context  # the same activities: the scores compare
    assert m.answers == {"item1": 7, "item2": 8, "item3": None, "item4": None, "item5": None}
    assert m.score == 7.5

    _refused(clinic, p.id, report("psfs_2", {"item1": 2}), "activity1")
    _refused(
        clinic,
        p.id,
        report("psfs_2", {"item1": 3, "item2": 2}, {"activity1": "Running"}),
        "activity2",
    )
    baseline = report(
        "psfs_2", {"item1": 6, "item2": 4}, {"activity1": " Running ", "activity2": "Sleeping"}
    )()
    assert baseline.context == {"activity1": "Running", "activity2": "Sleeping"}
    assert baseline.score == 5
    with _reader(clinic) as r:
        reported = patient_reported_ids(r, p.id)
        benefits = episode_benefits(r, ep.id)
    assert {m.id, baseline.id} <= reported
    assert intake.id not in reported
    function = next(b for b in benefits.benefits if b.id == "function_disability")
    psfs = next(s for s in function.measures if s.instrument_id == "psfs")
    assert (psfs.baseline, psfs.latest, psfs.administrations) == (3.5, 7.5, 2)


# -- the patient's page ------------------------------------------------------------------


def test_the_phone_page_asks_each_drug_refuses_out_of_range_and_sends(
    clinic: ClinicFixture,
) -> None:
    p, _ep, asked, token = _sent(
        clinic, "analgesic_use", "return_to_activity", log={"Ibuprofen": 5}
    )
    client = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    page = client.get(f"/q/{token}")
    assert page.status_code == 200
    assert "Ibuprofen 400 mg: days in the past 7 days" in page.text
    assert "Have you returned to it?" in page.text
    assert "Not yet returned" in page.text
    a = asked["analgesic_use"]
    bad = client.post(
        f"/q/{token}",
        data={"assignment": str(a.id), "send": "1", "drug-1": "Ibuprofen", "days-1": "12"},
    )
    assert bad.status_code == 422
    assert re.search(r"The days you took Ibuprofen must be a whole number from 0 to 7", bad.text)
    assert 'id="home.days-1-q"' in bad.text
    assert _counts(clinic, p.id)[0] == 1
    sent = client.post(
        f"/q/{token}",
        data={"assignment": str(a.id), "send": "1", "drug-1": "Ibuprofen", "days-1": "0"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("/thanks")
    after = client.get(f"/q/{token}")
    assert "Pain medicine" not in after.text
    assert "Have you returned to it?" in after.text
    progress = client.get(f"/q/{token}/progress")
    assert "Ibuprofen 0 days a week" in progress.text
    assert "(sent by you)" in progress.text


# -- the clinic's plan -----------------------------------------------------------------


def test_the_default_plan_asks_analgesics_and_return_at_discharge_and_the_answers_count(
    clinic: ClinicFixture,
) -> None:
    """Saved as the clinic's plan, the default sends analgesic use and return to work or
    sport at discharge by itself; answered from home, the discharged episode's summary
    reads them (the drug stopped, the return)."""
    default = default_schedule("neck_pain")
    questionnaires.set_questionnaire_plan(
        clinic.uow(),
        clinic.as_owner,
        SetQuestionnairePlan(
            condition="neck_pain",
            instruments={i: sorted(p) for i, p in default.instruments.items()},
            follow_up_days=list(default.follow_up_days),
        ),
    )
    p, ep, _asked, _token = _sent(clinic, "nprs", log={"Ibuprofen": 3})
    with clinic.engine.connect() as conn:
        version = conn.execute(
            sa.select(t.episodes.c.version).where(t.episodes.c.id == ep.id)
        ).scalar_one()
    closed = episodes.close_episode(
        clinic.uow(),
        clinic.as_clinician,
        CloseEpisode(
            episode_id=ep.id,
            expected_version=version,
            closed_on=_clinic_today(clinic),
            discharge_reason="goals met",
        ),
    )
    sent = questionnaires.send_due_questionnaires(clinic.uow(), clinic.owner.clinic_id, ep.id, BASE)
    assert sent is not None
    by_id = {a.instrument_id: a for a in sent.assignments}
    assert {"analgesic_use", "return_to_activity"} <= set(by_id)
    assert by_id["analgesic_use"].time_point is TimePoint.DISCHARGE
    with clinic.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == sent.message.id)
        ).scalar_one()
    token = str(url).rsplit("/", 1)[-1]
    uses = home_reports.report_analgesic_use(
        _uow(clinic),
        token,
        ReportAnalgesicUse(assignment_id=by_id["analgesic_use"].id, days={"Ibuprofen": 0}),
    )
    assert uses[0].episode_id == ep.id  # the episode it was asked for, though closed
    assert uses[0].recorded_on == closed.closed_on
    home_reports.report_return_to_activity(
        _uow(clinic),
        token,
        ReportReturnToActivity(
            assignment_id=by_id["return_to_activity"].id,
            activity="work",
            returned=1,
            returned_on=closed.closed_on,
        ),
    )
    with _reader(clinic) as r:
        benefits = episode_benefits(r, ep.id)
    drug_free = next(b for b in benefits.benefits if b.id == "drug_free_management")
    assert {f.label: f.value for f in drug_free.facts} == {"Ibuprofen 400 mg": "3 → 0"}
    recovery = next(b for b in benefits.benefits if b.id == "faster_recovery")
    facts = {f.label: f.value for f in recovery.facts}
    assert facts["returned to work on"] == closed.closed_on.isoformat()
    assert p.id == uses[0].patient_id


def _clinic_today(c: ClinicFixture) -> date:
    from needlepoint.domain.clinic_time import local_date, zone

    with c.engine.connect() as conn:
        tz = conn.execute(
            sa.select(t.clinics.c.time_zone).where(t.clinics.c.id == c.owner.clinic_id)
        ).scalar_one()
    return local_date(datetime.now(UTC), zone(tz))


def test_the_clinic_sees_the_four_in_its_plan_and_an_answered_analgesic_report(
    clinic: ClinicFixture,
) -> None:
    from tests.integration.test_questionnaire_pages import _signed_in

    _p, ep, asked, token = _sent(clinic, "analgesic_use", log={"Ibuprofen": 2})
    home_reports.report_analgesic_use(
        _uow(clinic),
        token,
        ReportAnalgesicUse(assignment_id=asked["analgesic_use"].id, days={"Ibuprofen": 1}),
    )
    client = _signed_in(clinic)
    plan = client.get("/settings/questionnaires?condition=neck_pain").text
    for name in ("Analgesic use", "Return to work or sport", "Patient-Specific Functional"):
        assert name in plan
    assert 'value="analgesic_use:discharge" checked' in plan  # the product's default
    assert 'value="analgesic_use:intake" checked' not in plan
    page = client.get(f"/episodes/{ep.id}/questionnaires").text
    assert "answered in the" in page
    assert "waiting for the patient" not in page
    care = client.get(f"/episodes/{ep.id}/care").text
    assert "patient-reported" in care
    # drug classes in the record's words, never the stored id (clinician review)
    assert "NSAID (non-steroidal anti-inflammatory)" in care
    assert ">nsaid<" not in care
