"""Screening a patient for dry needling appropriateness."""

from __future__ import annotations

from needlepoint.actions.care_team import check_care_team
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain import screening as rules
from needlepoint.domain.commands import RecordScreening, ScreeningAnswers
from needlepoint.domain.entities import Patient, Screening
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.permissions import Permission
from needlepoint.ports import UnitOfWork


def patient_facts(patient: Patient) -> rules.PatientFacts:
    """What the record already knows, so the screening does not ask it."""
    return rules.PatientFacts(sex=patient.sex, birth_date=patient.birth_date)


@action(Permission.SCREEN_PATIENT, AuditAction.SCREENING_RECORDED)
def record_screening(uow: UnitOfWork, actor: Actor, cmd: RecordScreening) -> Screening:
    """Record a completed questionnaire with its decision and reasons, for this patient
    (age from the date of birth; pregnancy not asked of male patients). Precautions must
    be acknowledged in the command; a contraindicated screening is recorded as such (and
    stops needling until a new screening says otherwise). A screening that clears an
    absolute or site-level finding of the previous one must say what changed and why
    (`clearance`): it is stored with the screening and audited with it."""
    answers = ScreeningAnswers.model_validate(
        cmd.model_dump(include=set(ScreeningAnswers.model_fields))
    )
    with uow:
        user = authorize(uow, actor, Permission.SCREEN_PATIENT)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id)
        now = uow.now()
        if cmd.screened_at is not None and cmd.screened_at > now:
            raise InvalidInput("screened_at is in the future", field="screened_at")
        screened_at = cmd.screened_at or now
        result = rules.evaluate(answers, patient_facts(patient), screened_at.date())
        rules.check_acknowledged(result, cmd.acknowledged_precautions)
        earlier = uow.list_by(Screening, actor.clinic_id, patient_id=patient.id)
        cleared = rules.cleared_findings(rules.latest_before(earlier, screened_at), result)
        clearances = rules.check_clearance(cleared, cmd.clearance)
        screening = Screening(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=patient.id,
            answers=result.answers.model_dump(mode="json"),
            decision=result.decision,
            reasons=[r.as_dict() for r in result.reasons],
            rules_version=rules.questionnaire().version,
            screened_by=user.id,
            screened_at=screened_at,
            created_at=now,
            acknowledged=sorted(cmd.acknowledged_precautions),
            clearances=clearances or None,
        )
        uow.add(screening)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SCREENING_RECORDED,
            screening,
            after=[screening],
            patient_id=patient.id,
        )
        uow.commit()
    return screening
