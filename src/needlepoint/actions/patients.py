"""Registering patients, changing their demographics, recording who referred them."""

from __future__ import annotations

from dataclasses import replace

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.commands import RecordReferral, RegisterPatient, UpdatePatient
from needlepoint.domain.entities import Patient, Referral
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission
from needlepoint.domain.versions import check_version
from needlepoint.ports import UnitOfWork


@action(Permission.REGISTER_PATIENT, AuditAction.PATIENT_REGISTERED)
def register_patient(uow: UnitOfWork, actor: Actor, cmd: RegisterPatient) -> Patient:
    """Add a patient to the clinic. The chart number (MRN) is unique within the clinic."""
    with uow:
        authorize(uow, actor, Permission.REGISTER_PATIENT)
        now = uow.now()
        patient = Patient(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            created_at=now,
            updated_at=now,
            **cmd.model_dump(),
        )
        uow.add(patient)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.PATIENT_REGISTERED,
            patient,
            after=[patient],
            patient_id=patient.id,
        )
        uow.commit()
    return patient


@action(Permission.UPDATE_PATIENT, AuditAction.PATIENT_UPDATED)
def update_patient(uow: UnitOfWork, actor: Actor, cmd: UpdatePatient) -> Patient:
    """Change demographics; refused when the caller's version is stale."""
    with uow:
        authorize(uow, actor, Permission.UPDATE_PATIENT)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_version(patient, cmd.expected_version)
        changes = cmd.model_dump(exclude={"patient_id", "expected_version"}, exclude_unset=True)
        updated = replace(patient, **changes, updated_at=uow.now(), version=patient.version + 1)
        uow.replace(patient, updated)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.PATIENT_UPDATED,
            updated,
            before=[patient],
            after=[updated],
            patient_id=patient.id,
        )
        uow.commit()
    return updated


@action(Permission.UPDATE_PATIENT, AuditAction.REFERRAL_RECORDED)
def record_referral(uow: UnitOfWork, actor: Actor, cmd: RecordReferral) -> Referral:
    """Record the clinician who referred the patient. Referrals are appended, never
    edited: the latest one received is the current referring clinician."""
    with uow:
        authorize(uow, actor, Permission.UPDATE_PATIENT)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        referral = Referral(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            created_at=uow.now(),
            **cmd.model_dump(),
        )
        uow.add(referral)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.REFERRAL_RECORDED,
            referral,
            after=[referral],
            patient_id=patient.id,
        )
        uow.commit()
    return referral
