"""Registering a clinic (the tenant) and its users; the operator's API tokens and an
owner's revocation of any token (users create their own: `actions.staff`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.adapters.passwords import (
    hash_api_token,
    hash_password,
    new_api_token,
    password_problem,
)
from needlepoint.adapters.server_zone import server_zone_name
from needlepoint.domain.commands import RegisterClinic, RegisterUser
from needlepoint.domain.entities import (
    ApiToken,
    Clinic,
    Entity,
    SecuritySettings,
    TrainingRecord,
    User,
)
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.domain.errors import InvalidInput, NotFound
from needlepoint.domain.permissions import Permission
from needlepoint.ports import UnitOfWork


@action(None, AuditAction.CLINIC_REGISTERED, unauthenticated="the operator creates the clinic")
def register_clinic(uow: UnitOfWork, cmd: RegisterClinic, *, source: str = "cli") -> User:
    """Create a clinic and its owner account. Run by an operator (CLI, demo), not a user."""
    check_password(cmd.owner_password, field="owner_password", email=cmd.owner_email)
    with uow:
        now = uow.now()
        clinic = Clinic(
            id=uow.new_id(),
            name=cmd.name,
            created_at=now,
            time_zone=cmd.time_zone or server_zone_name(),
        )
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
    check_password(cmd.password, field="password", email=cmd.email)
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


@action(Permission.REVOKE_API_TOKENS, AuditAction.API_TOKEN_REVOKED)
def revoke_api_token(uow: UnitOfWork, actor: Actor, user_id: UUID, token_id: UUID) -> ApiToken:
    """Revoke one of a user's API tokens (owner); it stops working at once."""
    with uow:
        authorize(uow, actor, Permission.REVOKE_API_TOKENS)
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
    """A token for `user`, issued by an operator at the console (no acting user yet);
    it expires like every token (the clinic's `api_token_days`)."""
    with uow:
        plain = new_api_token()
        now = uow.now()
        token = ApiToken(
            id=uow.new_id(),
            clinic_id=user.clinic_id,
            user_id=user.id,
            token_hash=hash_api_token(plain),
            label=label,
            created_at=now,
            expires_at=now + token_lifetime(uow, user.clinic_id),
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


def token_lifetime(uow: UnitOfWork, clinic_id: UUID) -> timedelta:
    """How long a new API token of the clinic lasts (its security settings)."""
    found = uow.get(SecuritySettings, clinic_id, clinic_id)
    settings = found or SecuritySettings(id=clinic_id, clinic_id=clinic_id)
    return timedelta(days=settings.api_token_days)


def check_password(password: str | None, *, field: str, email: str | None = None) -> None:
    """InvalidInput naming `field` when a new password breaks the policy."""
    problem = password_problem(password, email) if password is not None else None
    if problem is not None:
        raise InvalidInput(problem, field=field)


def _public(user: User) -> User:
    """The user without the password hash, for digests that outlive the credential."""
    return replace(user, password_hash=None)
