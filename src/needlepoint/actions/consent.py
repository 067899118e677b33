"""Recording and withdrawing a patient's informed consent to dry needling."""

from __future__ import annotations

from dataclasses import replace

from needlepoint.actions.care_team import check_care_team
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.commands import RecordConsent, WithdrawConsent
from needlepoint.domain.consent import check_signer, get_template
from needlepoint.domain.entities import Consent, Patient
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.errors import InvalidInput, RecordLocked
from needlepoint.domain.permissions import Permission
from needlepoint.domain.versions import check_version
from needlepoint.ports import UnitOfWork


@action(Permission.RECORD_CONSENT, AuditAction.CONSENT_RECORDED)
def record_consent(uow: UnitOfWork, actor: Actor, cmd: RecordConsent) -> Consent:
    """Record a signed consent against a template version (signer, time, method, witness,
    copy given, the captured signature)."""
    get_template(cmd.template_id, cmd.template_version)
    with uow:
        user = authorize(uow, actor, Permission.RECORD_CONSENT)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id)
        now = uow.now()
        if cmd.signed_at > now:
            raise InvalidInput("signed_at is in the future", field="signed_at")
        check_signer(patient, cmd)
        consent = Consent(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=patient.id,
            recorded_by=user.id,
            created_at=now,
            **cmd.model_dump(exclude={"patient_id"}),
        )
        uow.add(consent)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.CONSENT_RECORDED,
            consent,
            after=[consent],
            patient_id=patient.id,
        )
        uow.commit()
    return consent


@action(Permission.RECORD_CONSENT, AuditAction.CONSENT_WITHDRAWN)
def withdraw_consent(uow: UnitOfWork, actor: Actor, cmd: WithdrawConsent) -> Consent:
    """Mark a consent withdrawn: no needling is recorded after that moment."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_CONSENT)
        consent = load(uow, Consent, cmd.consent_id, actor, field="consent_id")
        check_care_team(uow, actor, user, consent.patient_id)
        check_version(consent, cmd.expected_version)
        if consent.withdrawn_at is not None:
            raise RecordLocked(f"consent {consent.id} is already withdrawn", field="consent_id")
        if cmd.withdrawn_at < consent.signed_at:
            raise InvalidInput(
                "withdrawn_at is before the consent was signed", field="withdrawn_at"
            )
        withdrawn = replace(consent, withdrawn_at=cmd.withdrawn_at, version=consent.version + 1)
        uow.replace(consent, withdrawn)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.CONSENT_WITHDRAWN,
            withdrawn,
            before=[consent],
            after=[withdrawn],
            patient_id=consent.patient_id,
        )
        uow.commit()
    return withdrawn
