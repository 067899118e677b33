"""Opening and closing an episode of care, with its plan of co-interventions."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from needlepoint.actions.care_team import check_care_team, refusal
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.commands import CloseEpisode, OpenEpisode
from needlepoint.domain.entities import Entity, Episode, Patient, PlanItem, User
from needlepoint.domain.enums import AuditAction, EpisodeStatus, Role
from needlepoint.domain.episodes import check_closing_date, diagnose, ensure_open
from needlepoint.domain.errors import InvalidInput, PermissionDenied
from needlepoint.domain.permissions import Permission, allows
from needlepoint.domain.versions import check_version
from needlepoint.ports import UnitOfWork


@action(Permission.OPEN_EPISODE, AuditAction.EPISODE_OPENED)
def open_episode(uow: UnitOfWork, actor: Actor, cmd: OpenEpisode) -> Episode:
    """Start an episode of care for a condition, with its plan items. Its clinician (the
    responsible clinician, on the patient's care team) is the one who opens it; only the
    owner names another, an active licensed colleague."""
    with uow:
        user = authorize(uow, actor, Permission.OPEN_EPISODE)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id, taking_on=True)
        clinician_id = _responsible_clinician(uow, actor, user, cmd)
        dx = diagnose(cmd.condition, cmd.icd10_code, cmd.body_region)
        now = uow.now()
        episode = Episode(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=patient.id,
            clinician_id=clinician_id,
            condition=dx.condition,
            icd10_code=dx.icd10_code,
            body_region=dx.body_region,
            onset_date=cmd.onset_date,
            opened_on=cmd.opened_on,
            goals=cmd.goals,
            status=EpisodeStatus.OPEN,
            created_at=now,
            updated_at=now,
        )
        uow.add(episode)
        records: list[Entity] = [episode]
        for item in cmd.plan:
            plan_item = PlanItem(
                id=uow.new_id(),
                clinic_id=actor.clinic_id,
                episode_id=episode.id,
                modality=item.modality,
                description=item.description,
                sessions_per_week=item.sessions_per_week,
                created_at=now,
            )
            uow.add(plan_item)
            records.append(plan_item)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.EPISODE_OPENED,
            episode,
            after=records,
            patient_id=patient.id,
        )
        uow.commit()
    return episode


@action(Permission.CLOSE_EPISODE, AuditAction.EPISODE_CLOSED)
def close_episode(uow: UnitOfWork, actor: Actor, cmd: CloseEpisode) -> Episode:
    """Discharge: the episode takes no further sessions."""
    with uow:
        user = authorize(uow, actor, Permission.CLOSE_EPISODE)
        episode = load(uow, Episode, cmd.episode_id, actor, field="episode_id")
        check_care_team(uow, actor, user, episode.patient_id)
        check_version(episode, cmd.expected_version)
        ensure_open(episode)
        check_closing_date(episode, cmd.closed_on)
        closed = replace(
            episode,
            status=EpisodeStatus.CLOSED,
            closed_on=cmd.closed_on,
            discharge_reason=cmd.discharge_reason,
            updated_at=uow.now(),
            version=episode.version + 1,
        )
        uow.replace(episode, closed)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.EPISODE_CLOSED,
            closed,
            before=[episode],
            after=[closed],
            patient_id=episode.patient_id,
        )
        uow.commit()
    return closed


def _responsible_clinician(uow: UnitOfWork, actor: Actor, user: User, cmd: OpenEpisode) -> UUID:
    """The episode's clinician: the opener, unless the owner names an active colleague
    who may open episodes themselves (a licensed clinician). Anyone else naming a
    colleague is refused, and the attempt is on the audit trail."""
    if cmd.clinician_id is None or cmd.clinician_id == user.id:
        return user.id
    if user.role is not Role.OWNER:
        uow.record_denial(refusal(uow, actor, cmd.patient_id, "clinician_of_record"))
        raise PermissionDenied(
            "the episode's clinician is the one who opens it; only the owner assigns an "
            "episode to a colleague",
            field="clinician_id",
        )
    named = load(uow, User, cmd.clinician_id, actor, field="clinician_id")
    if not named.is_active or not allows(named.role, Permission.OPEN_EPISODE):
        raise InvalidInput(
            f"{named.full_name} cannot be responsible for an episode: only an active licensed "
            "clinician can",
            field="clinician_id",
        )
    return named.id
