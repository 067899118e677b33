"""Questionnaires from home whose context the patient gives (issue 16): analgesic use,
return to work or sport, and PSFS, answered through the patient's link.

Each is submitted once, in one transaction, audited with the source `patient-link`,
like `questionnaires.submit_questionnaire`; the checks are `domain.home_reports`
(refused naming the field, nothing written). What is stored is exactly what the
clinician's path stores:

* analgesic use: analgesic-log entries (`MedicationUse`), one per drug, recorded today
  (the clinic's day), each naming the response it came with (`response_id`): its
  patient-reported provenance;
* return to work or sport and PSFS: a measurement with its context, which its response
  names (`measurement_id`): the measurement's patient-reported provenance.

The assignment is then complete, and the link ends (used) when nothing is left."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from uuid import UUID

from needlepoint.actions.questionnaires import (
    _after_care,
    _open_link,
    _own_assignment,
    _patient_audit,
    _pending,
    _responses,
    end_links_when_done,
    store_response,
)
from needlepoint.actions.registry import action
from needlepoint.domain.clinic_time import local_date, zone
from needlepoint.domain.commands import ReportAnalgesicUse, ReportPsfs, ReportReturnToActivity
from needlepoint.domain.entities import (
    Clinic,
    Episode,
    Measurement,
    MedicationUse,
    Patient,
    QuestionnaireAssignment,
    QuestionnaireLink,
    QuestionnaireResponse,
    Session,
)
from needlepoint.domain.enums import AuditAction, SessionStatus
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.home_reports import (
    OtherDrug,
    baseline_activities,
    check_analgesic_report,
    check_psfs,
    check_return,
    latest_per_drug,
)
from needlepoint.domain.instruments import get as get_instrument
from needlepoint.domain.outcomes import score_submission
from needlepoint.domain.questionnaires import HomeForm, home_form
from needlepoint.ports import ConnectedUnitOfWork, UnitOfWork

PATIENT = "a patient, identified by the link's token"


@dataclass(frozen=True, slots=True)
class HomeFormContext:
    """What one of these forms asks besides its items: the drugs on record (latest entry
    each), the activities of the episode's earlier PSFS (None: the patient names them),
    and the days a return may fall on."""

    assignment: QuestionnaireAssignment
    form: HomeForm
    drugs: list[MedicationUse]
    activities: dict[str, str] | None
    opened_on: date
    today: date


def _episode_log(uow: UnitOfWork, a: QuestionnaireAssignment) -> list[MedicationUse]:
    """The episode's analgesic log: the patient's entries of this episode or of none (as
    the episode's analgesic page shows it)."""
    return [
        u
        for u in uow.list_by(MedicationUse, a.clinic_id, patient_id=a.patient_id)
        if u.episode_id in (None, a.episode_id)
    ]


def _episode_baseline(uow: UnitOfWork, a: QuestionnaireAssignment) -> dict[str, str] | None:
    """The activities of the episode's first PSFS of the assignment's version, counting
    no measurement of an unsigned draft note (drafts are not data)."""
    drafts = {
        s.id
        for s in uow.list_by(Session, a.clinic_id, episode_id=a.episode_id)
        if s.status is SessionStatus.DRAFT
    }
    earlier = [
        m
        for m in uow.list_by(Measurement, a.clinic_id, episode_id=a.episode_id)
        if m.session_id not in drafts
    ]
    return baseline_activities(a.instrument_id, earlier)


@action(
    None,
    unauthenticated=PATIENT,
    unaudited=(
        "reads what the patient's forms ask (the drugs on record, the earlier PSFS's "
        "activities); opening the link is audited by questionnaires.open_questionnaires"
    ),
)
def home_forms(uow: ConnectedUnitOfWork, token: str) -> dict[UUID, HomeFormContext]:
    """For each questionnaire the link opens that has a form of its own, what it asks."""
    with uow:
        link = _open_link(uow, token)
        patient = uow.get(Patient, link.patient_id, link.clinic_id)
        clinic = uow.get(Clinic, link.clinic_id, link.clinic_id)
        if patient is None or clinic is None:
            return {}
        today = local_date(uow.now(), zone(clinic.time_zone))
        out: dict[UUID, HomeFormContext] = {}
        for a in _pending(uow, patient):
            form = home_form(a.instrument_id)
            episode = uow.get(Episode, a.episode_id, link.clinic_id)
            if form is None or episode is None:
                continue
            out[a.id] = HomeFormContext(
                assignment=a,
                form=form,
                drugs=latest_per_drug(_episode_log(uow, a)) if form == "analgesic_log" else [],
                activities=_episode_baseline(uow, a) if form == "activities" else None,
                opened_on=episode.opened_on,
                today=today,
            )
        uow.commit()  # nothing written: ends the reading transaction as every action does
    return out


@dataclass(frozen=True, slots=True)
class _Opened:
    link: QuestionnaireLink
    assignment: QuestionnaireAssignment
    response: QuestionnaireResponse | None
    episode: Episode
    today: date


def _open_form(
    uow: ConnectedUnitOfWork, token: str, assignment_id: UUID, form: HomeForm
) -> _Opened:
    """The link and the assignment, checked: the link's own patient's, still to answer,
    and answered on this form."""
    link = _open_link(uow, token)
    a = _own_assignment(uow, link, assignment_id)
    if home_form(a.instrument_id) != form:
        raise InvalidInput("this questionnaire is answered on another form", field="assignment_id")
    episode = uow.get(Episode, a.episode_id, link.clinic_id)
    clinic = uow.get(Clinic, link.clinic_id, link.clinic_id)
    if episode is None or clinic is None:
        raise InvalidInput("no such questionnaire for you", field="assignment_id")
    today = local_date(uow.now(), zone(clinic.time_zone))
    return _Opened(link, a, _responses(uow, link).get(a.id), episode, today)


def _complete(
    uow: UnitOfWork,
    o: _Opened,
    answers: dict[str, Any],
    measurement: Measurement | None,
) -> QuestionnaireResponse:
    """Mark the assignment done and its response submitted (naming the measurement, if
    any); end the link when nothing is left to answer."""
    now = uow.now()
    mid = measurement.id if measurement is not None else None
    a = o.assignment
    uow.replace(a, replace(a, completed_at=now, measurement_id=mid, version=a.version + 1))
    submitted = store_response(
        uow, o.link, a, o.response, answers, now, sent=True, measurement_id=mid
    )
    end_links_when_done(uow, o.link, now)
    return submitted


def _measurement(
    uow: UnitOfWork, o: _Opened, answers: dict[str, Any], context: dict[str, Any]
) -> Measurement:
    """The measurement of a submitted form, scored by the instrument's code, filed under
    the episode it was asked for, open or closed, an answer after care marked so in its
    context (as `submit_questionnaire` files it)."""
    a = o.assignment
    scored = score_submission(a.instrument_id, answers, context)
    now = uow.now()
    return Measurement(
        id=uow.new_id(),
        clinic_id=a.clinic_id,
        patient_id=a.patient_id,
        episode_id=a.episode_id,
        instrument_id=a.instrument_id,
        instrument_version=scored.instrument_version,
        answers=scored.answers,
        score=scored.score,
        context={**context, **(_after_care(uow, a, o.episode, now) or {})},
        taken_at=now,
        recorded_by=o.link.issued_by,
        created_at=now,
    )


@action(None, AuditAction.MEDICATION_REPORTED, unauthenticated=PATIENT)
def report_analgesic_use(
    uow: ConnectedUnitOfWork, token: str, cmd: ReportAnalgesicUse, *, address: str | None = None
) -> list[MedicationUse]:
    """The patient's analgesic use in the past 7 days, written to the analgesic log: one
    entry per drug on record (0 days = stopped) and one for any other pain medicine
    named, each marked as reported by the patient. No medicine at all is an answer too
    (nothing is logged). Refused naming the field, with nothing written."""
    with uow:
        o = _open_form(uow, token, cmd.assignment_id, "analgesic_log")
        a = o.assignment
        reported = check_analgesic_report(
            _episode_log(uow, a),
            cmd.days,
            OtherDrug(
                str(cmd.other_drug or ""),
                str(cmd.other_class or ""),
                cmd.other_days,
                cmd.other_dose_mg,
            ),
        )
        answers: dict[str, Any] = {
            "days_in_past_7": {r.drug: r.days_per_week for r in reported},
            "other_class": next((str(r.drug_class) for r in reported[len(cmd.days) :]), None),
        }
        submitted = _complete(uow, o, answers, None)
        now = uow.now()
        uses = [
            MedicationUse(
                id=uow.new_id(),
                clinic_id=a.clinic_id,
                patient_id=a.patient_id,
                drug=r.drug,
                drug_class=r.drug_class,
                days_per_week=r.days_per_week,
                recorded_on=o.today,
                recorded_by=o.link.issued_by,
                created_at=now,
                # the episode's, open or closed: the analyses tell entries after
                # discharge by their date (`analytics.dataset`: after care)
                episode_id=a.episode_id,
                dose_mg=r.dose_mg,
                response_id=submitted.id,
            )
            for r in reported
        ]
        for u in uses:
            uow.add(u)
        _patient_audit(
            uow, o.link, AuditAction.MEDICATION_REPORTED, submitted, address, [submitted, *uses]
        )
        uow.commit()
    return uses


@action(None, AuditAction.QUESTIONNAIRE_SUBMITTED, unauthenticated=PATIENT)
def report_return_to_activity(
    uow: ConnectedUnitOfWork,
    token: str,
    cmd: ReportReturnToActivity,
    *,
    address: str | None = None,
) -> Measurement:
    """Whether the patient has returned to work or sport (and the day), stored as the
    `return_to_activity` measurement with its context, as the clinician's path stores
    it. The day is not in the future nor before the episode opened."""
    with uow:
        o = _open_form(uow, token, cmd.assignment_id, "return_to_activity")
        answers, context = check_return(
            get_instrument(o.assignment.instrument_id),
            cmd.activity,
            cmd.returned,
            cmd.returned_on,
            opened_on=o.episode.opened_on,
            today=o.today,
        )
        measurement = _measurement(uow, o, answers, context)
        uow.add(measurement)
        _complete(uow, o, dict(measurement.answers), measurement)
        _patient_audit(uow, o.link, AuditAction.QUESTIONNAIRE_SUBMITTED, measurement, address)
        uow.commit()
    return measurement


@action(None, AuditAction.QUESTIONNAIRE_SUBMITTED, unauthenticated=PATIENT)
def report_psfs(
    uow: ConnectedUnitOfWork, token: str, cmd: ReportPsfs, *, address: str | None = None
) -> Measurement:
    """The patient's PSFS: the activities of the episode's earlier PSFS of the same
    version rated again (same context, so the scores compare), or, without one, the
    activities the patient names, rated (the baseline)."""
    with uow:
        o = _open_form(uow, token, cmd.assignment_id, "activities")
        instrument = get_instrument(o.assignment.instrument_id)
        answers, activities = check_psfs(
            instrument, cmd.ratings, cmd.activities, _episode_baseline(uow, o.assignment)
        )
        measurement = _measurement(uow, o, answers, dict(activities))
        uow.add(measurement)
        _complete(uow, o, dict(measurement.answers), measurement)
        _patient_audit(uow, o.link, AuditAction.QUESTIONNAIRE_SUBMITTED, measurement, address)
        uow.commit()
    return measurement
