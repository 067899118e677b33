"""Practitioner credentials: training records and the clinic's rules."""

from __future__ import annotations

from dataclasses import replace

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.commands import AddTrainingRecord, UpdateClinicSettings
from needlepoint.domain.credentials import jurisdiction
from needlepoint.domain.entities import Clinic, TrainingRecord, User
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission
from needlepoint.domain.versions import check_version
from needlepoint.ports import UnitOfWork


@action(Permission.RECORD_TRAINING, AuditAction.TRAINING_RECORDED)
def add_training_record(uow: UnitOfWork, actor: Actor, cmd: AddTrainingRecord) -> TrainingRecord:
    """Record a dry needling course a practitioner completed."""
    with uow:
        authorize(uow, actor, Permission.RECORD_TRAINING)
        user = load(uow, User, cmd.user_id, actor, field="user_id")
        record = TrainingRecord(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            created_at=uow.now(),
            **cmd.model_dump(),
        )
        uow.add(record)
        audit(uow, actor, actor.clinic_id, AuditAction.TRAINING_RECORDED, user, after=[record])
        uow.commit()
    return record


@action(Permission.MANAGE_CLINIC, AuditAction.CLINIC_SETTINGS_CHANGED)
def update_clinic_settings(uow: UnitOfWork, actor: Actor, cmd: UpdateClinicSettings) -> Clinic:
    """Change the clinic's safety, credential and billing settings and its time zone
    (owner only)."""
    changes = cmd.model_dump(exclude={"expected_version"}, exclude_unset=True)
    if changes.get("jurisdiction") is not None:
        jurisdiction(changes["jurisdiction"])
    for required in (
        "jurisdiction",
        "credential_policy",
        "screening_valid_days",
        "bill_sides_separately",
        "time_zone",
    ):
        if required in changes and changes[required] is None:
            del changes[required]  # these settings always have a value
    with uow:
        authorize(uow, actor, Permission.MANAGE_CLINIC)
        clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
        check_version(clinic, cmd.expected_version)
        updated = replace(clinic, **changes, version=clinic.version + 1)
        uow.replace(clinic, updated)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.CLINIC_SETTINGS_CHANGED,
            updated,
            before=[clinic],
            after=[updated],
        )
        uow.commit()
    return updated
