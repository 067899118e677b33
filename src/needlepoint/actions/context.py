"""Who is acting, and the steps actions share: authorise, audit, notify a colleague."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from needlepoint.domain.audit import digest
from needlepoint.domain.entities import AuditEvent, Entity, Notification, User
from needlepoint.domain.enums import AuditAction, AuditOutcome
from needlepoint.domain.errors import NotFound, PermissionDenied
from needlepoint.domain.permissions import Permission, require
from needlepoint.ports import UnitOfWork

E = TypeVar("E", bound=Entity)


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated user on whose behalf an action runs.

    `source` says which entrypoint made the request (api, web, cli, generator);
    `request_id` groups the audit events of one request; `source_address` is the
    client's network address when there is one."""

    user_id: UUID
    clinic_id: UUID
    source: str = "api"
    request_id: str | None = None
    source_address: str | None = None


def authorize(uow: UnitOfWork, actor: Actor, permission: Permission) -> User:
    """The acting user, after checking they are active in the clinic and hold `permission`."""
    user = uow.get(User, actor.user_id, actor.clinic_id)
    if user is None or not user.is_active:
        raise PermissionDenied("the acting user is not an active member of this clinic")
    try:
        require(user.role, permission)
    except PermissionDenied:
        # The refusal is part of the trail too (written although the action rolls back).
        uow.record_denial(denial(uow, actor, permission))
        raise
    return user


def denial(uow: UnitOfWork, actor: Actor, permission: Permission) -> AuditEvent:
    """The audit event of `actor` being refused `permission`."""
    return AuditEvent(
        id=uow.new_id(),
        clinic_id=actor.clinic_id,
        action=AuditAction.ACCESS_DENIED,
        entity_type=permission.value[:32],  # what was refused, to whom
        entity_id=actor.user_id,
        occurred_at=uow.now(),
        source=actor.source,
        actor_user_id=actor.user_id,
        request_id=actor.request_id,
        outcome=AuditOutcome.DENIED,
        source_address=actor.source_address,
    )


def load(uow: UnitOfWork, kind: type[E], id: UUID, actor: Actor, *, field: str) -> E:
    """The record of `kind` in the actor's clinic, or NotFound naming `field`."""
    found = uow.get(kind, id, actor.clinic_id)
    if found is None:
        raise NotFound(f"no {kind.__name__.lower()} {id} in this clinic", field=field)
    return found


def audit(
    uow: UnitOfWork,
    actor: Actor | None,
    clinic_id: UUID,
    action: AuditAction,
    subject: Entity,
    *,
    before: list[Entity] | None = None,
    after: list[Entity] | None = None,
    patient_id: UUID | None = None,
    source: str | None = None,
) -> AuditEvent:
    """Stage the action's audit event: who, what, when, which record, before/after digests."""
    event = AuditEvent(
        id=uow.new_id(),
        clinic_id=clinic_id,
        action=action,
        entity_type=type(subject).__name__.lower(),
        entity_id=subject.id,
        occurred_at=uow.now(),
        source=source or (actor.source if actor else "system"),
        actor_user_id=actor.user_id if actor else None,
        patient_id=patient_id,
        before_digest=digest(before or []),
        after_digest=digest(after or []),
        request_id=actor.request_id if actor else None,
        source_address=actor.source_address if actor else None,
    )
    uow.add(event)
    return event


def notify(
    uow: UnitOfWork,
    clinic_id: UUID,
    recipient_id: UUID,
    kind: str,
    subject_id: UUID,
    message: str,
) -> Notification:
    """Stage a notification to a colleague (shown on their pages), in the action's
    transaction."""
    note = Notification(
        id=uow.new_id(),
        clinic_id=clinic_id,
        recipient_id=recipient_id,
        kind=kind,
        subject_id=subject_id,
        message=message,
        created_at=uow.now(),
    )
    uow.add(note)
    return note
