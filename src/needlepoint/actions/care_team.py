"""A patient's care team on the write side: the check every action that writes to a
patient's clinical record makes (`check_care_team`, the rule in `domain.care_team`), and
adding a colleague to the team by name."""

from __future__ import annotations

from uuid import UUID

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.care_team import Standing, binds, check_access, check_adding
from needlepoint.domain.commands import AddCareTeamMember
from needlepoint.domain.entities import (
    AuditEvent,
    CareTeamMember,
    EmergencyAccess,
    Episode,
    Patient,
    SecuritySettings,
    User,
)
from needlepoint.domain.enums import AuditAction, AuditOutcome
from needlepoint.domain.errors import InvalidInput, PermissionDenied
from needlepoint.domain.permissions import CARE_TEAM_RESTRICTED, Permission
from needlepoint.ports import UnitOfWork


def standing(uow: UnitOfWork, clinic_id: UUID, user_id: UUID, patient_id: UUID) -> Standing:
    """Where `user_id` stands with the patient's record, read in the action's transaction."""
    episodes = uow.list_by(Episode, clinic_id, patient_id=patient_id)
    members = uow.list_by(CareTeamMember, clinic_id, patient_id=patient_id)
    member = any(e.clinician_id == user_id for e in episodes) or any(
        m.user_id == user_id for m in members
    )
    now = uow.now()
    emergency = not member and any(
        g.expires_at > now
        for g in uow.list_by(EmergencyAccess, clinic_id, patient_id=patient_id, user_id=user_id)
    )
    return Standing(member=member, emergency=emergency, team_exists=bool(episodes or members))


def _restricted(uow: UnitOfWork, clinic_id: UUID) -> bool:
    settings = uow.get(SecuritySettings, clinic_id, clinic_id)
    return settings is not None and settings.care_team_restriction


def check_care_team(
    uow: UnitOfWork, actor: Actor, user: User, patient_id: UUID, *, taking_on: bool = False
) -> None:
    """PermissionDenied unless `user` may write to this patient's clinical record under the
    clinic's care-team rule (one small read when the clinic does not restrict; see
    `domain.care_team`). A refusal is recorded (`access.denied`, naming the patient)."""
    if not binds(user.role, _restricted(uow, actor.clinic_id)):
        return
    try:
        check_access(standing(uow, actor.clinic_id, user.id, patient_id), taking_on=taking_on)
    except PermissionDenied:
        uow.record_denial(refusal(uow, actor, patient_id, "care_team"))
        raise


def refusal(uow: UnitOfWork, actor: Actor, patient_id: UUID | None, what: str) -> AuditEvent:
    """The `access.denied` event of a refused write to a patient's record (`what`: the
    rule that refused it)."""
    return AuditEvent(
        id=uow.new_id(),
        clinic_id=actor.clinic_id,
        action=AuditAction.ACCESS_DENIED,
        entity_type=what[:32],
        entity_id=patient_id or actor.user_id,
        occurred_at=uow.now(),
        source=actor.source,
        actor_user_id=actor.user_id,
        patient_id=patient_id,
        request_id=actor.request_id,
        outcome=AuditOutcome.DENIED,
        source_address=actor.source_address,
    )


@action(Permission.MANAGE_CARE_TEAM, AuditAction.CARE_TEAM_MEMBER_ADDED)
def add_care_team_member(
    uow: UnitOfWork, actor: Actor, patient_id: UUID, cmd: AddCareTeamMember
) -> CareTeamMember:
    """Add a colleague (a clinician or a student) to a patient's care team, with a reason.
    Under the clinic's care-team restriction only the owner or a member of the team (not
    an emergency access) adds; without it any licensed clinician may, as any may open an
    episode. Audited; the record of who may open the chart under the restriction."""
    with uow:
        user = authorize(uow, actor, Permission.MANAGE_CARE_TEAM)
        patient = load(uow, Patient, patient_id, actor, field="patient_id")
        if binds(user.role, _restricted(uow, actor.clinic_id)):
            try:
                check_adding(standing(uow, actor.clinic_id, user.id, patient.id))
            except PermissionDenied:
                uow.record_denial(refusal(uow, actor, patient.id, "care_team"))
                raise
        colleague = load(uow, User, cmd.user_id, actor, field="user_id")
        if not colleague.is_active or colleague.role not in CARE_TEAM_RESTRICTED:
            raise InvalidInput(
                "only an active clinician or student joins a care team (the owner reads "
                "every record already)",
                field="user_id",
            )
        if standing(uow, actor.clinic_id, colleague.id, patient.id).member:
            raise InvalidInput(
                f"{colleague.full_name} is already on this patient's care team", field="user_id"
            )
        member = CareTeamMember(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=patient.id,
            user_id=colleague.id,
            added_by=user.id,
            reason=cmd.reason,
            added_at=uow.now(),
        )
        uow.add(member)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.CARE_TEAM_MEMBER_ADDED,
            member,
            after=[member],
            patient_id=patient.id,
        )
        uow.commit()
    return member
