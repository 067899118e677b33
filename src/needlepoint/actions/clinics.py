"""Registering a clinic (the tenant), its users and their API tokens."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.adapters.passwords import (
    hash_api_token,
    hash_password,
    new_api_token,
    password_problem,
)
from needlepoint.domain.commands import IssueApiToken, RegisterClinic, RegisterUser
from needlepoint.domain.entities import ApiToken, Clinic, Entity, TrainingRecord, User
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.domain.errors import InvalidInput, NotFound
from needlepoint.domain.permissions import Permission
from needlepoint.ports import UnitOfWork


@action(None, AuditAction.CLINIC_REGISTERED, unauthenticated="the operator creates the clinic")
def register_clinic(uow: UnitOfWork, cmd: RegisterClinic, *, source: str = "cli") -> User:
    """Create a clinic and its owner account. Run by an operator (CLI, demo), not a user."""
    check_password(cmd.owner_password, field="owner_password")
    with uow:
        now = uow.now()
        clinic = Clinic(id=uow.new_id(), name=cmd.name, created_at=now)
        owner = User(
            id=uow.new_id(),
            clinic_id=clinic.id,
            email=cmd.owner_email.lower(),
            full_name=cmd.owner_name,
            role=Role.OWNER,
            created_at=now,
            password_hash=hash_password(cmd.owner_password) if cmd.owner_password else None,
        )
        uow.add(clinic)
        uow.add(owner)
        audit(
            uow,
            None,
            clinic.id,
            AuditAction.CLINIC_REGISTERED,
            clinic,
            after=[clinic, _public(owner)],
            source=source,
        )
        uow.commit()
    return owner


@action(Permission.REGISTER_USER, AuditAction.USER_REGISTERED)
def register_user(uow: UnitOfWork, actor: Actor, cmd: RegisterUser) -> User:
    """Add a practitioner or staff member, with their dry needling training records."""
    check_password(cmd.password, field="password")
    with uow:
        authorize(uow, actor, Permission.REGISTER_USER)
        now = uow.now()
        user = User(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            email=cmd.email.lower(),
            full_name=cmd.full_name,
            role=cmd.role,
            created_at=now,
            password_hash=hash_password(cmd.password) if cmd.password else None,
            licence_number=cmd.licence_number,
            licence_date=cmd.licence_date,
        )
        uow.add(user)
        records: list[Entity] = [_public(user)]
        for course in cmd.training:
            record = TrainingRecord(
                id=uow.new_id(),
                clinic_id=actor.clinic_id,
                user_id=user.id,
                created_at=now,
                **course.model_dump(),
            )
            uow.add(record)
            records.append(record)
        audit(uow, actor, actor.clinic_id, AuditAction.USER_REGISTERED, user, after=records)
        uow.commit()
    return user


@action(Permission.ISSUE_API_TOKEN, AuditAction.API_TOKEN_ISSUED)
def issue_api_token(
    uow: UnitOfWork, actor: Actor, cmd: IssueApiToken, *, scopes: str = "read write"
) -> tuple[ApiToken, str]:
    """A new bearer token for a user of the clinic, with its scopes (`read`, `write`;
    space-separated). The plain token is returned once."""
    with uow:
        authorize(uow, actor, Permission.ISSUE_API_TOKEN)
        user = load(uow, User, cmd.user_id, actor, field="user_id")
        plain = new_api_token()
        token = ApiToken(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            user_id=user.id,
            token_hash=hash_api_token(plain),
            label=cmd.label,
            created_at=uow.now(),
            scopes=scopes,
        )
        uow.add(token)
        audit(uow, actor, actor.clinic_id, AuditAction.API_TOKEN_ISSUED, token, after=[token])
        uow.commit()
    return token, plain


@action(Permission.ISSUE_API_TOKEN, AuditAction.API_TOKEN_REVOKED)
def revoke_api_token(uow: UnitOfWork, actor: Actor, user_id: UUID, token_id: UUID) -> ApiToken:
    """Revoke one of a user's API tokens (owner); it stops working at once."""
    with uow:
        authorize(uow, actor, Permission.ISSUE_API_TOKEN)
        token = load(uow, ApiToken, token_id, actor, field="token_id")
        if token.user_id != user_id:
            raise NotFound(f"no token {token_id} of user {user_id}", field="token_id")
        if token.revoked_at is None:
            revoked = replace(token, revoked_at=uow.now())
            uow.replace(token, revoked)
            audit(
                uow,
                actor,
                actor.clinic_id,
                AuditAction.API_TOKEN_REVOKED,
                revoked,
                before=[token],
                after=[revoked],
            )
            token = revoked
        uow.commit()
    return token


@action(None, AuditAction.API_TOKEN_ISSUED, unauthenticated="the operator's token (CLI)")
def issue_operator_token(uow: UnitOfWork, user: User, label: str, *, source: str = "cli") -> str:
    """A token for `user`, issued by an operator at the console (no acting user yet)."""
    with uow:
        plain = new_api_token()
        token = ApiToken(
            id=uow.new_id(),
            clinic_id=user.clinic_id,
            user_id=user.id,
            token_hash=hash_api_token(plain),
            label=label,
            created_at=uow.now(),
        )
        uow.add(token)
        audit(
            uow,
            None,
            user.clinic_id,
            AuditAction.API_TOKEN_ISSUED,
            token,
            after=[token],
            source=source,
        )
        uow.commit()
    return plain


def check_password(password: str | None, *, field: str) -> None:
    """InvalidInput naming `field` when a new password breaks the policy."""
    problem = password_problem(password) if password is not None else None
    if problem is not None:
        raise InvalidInput(problem, field=field)


def _public(user: User) -> User:
    """The user without the password hash, for digests that outlive the credential."""
    return replace(user, password_hash=None)
