"""Users of the clinic, who am I, and the account lifecycle an owner runs: deactivate,
reactivate, reset a password or a second factor, issue an enrolment code, lift sign-in
delays, see and revoke a user's API tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel

from needlepoint.actions import clinics, staff
from needlepoint.adapters.db.tables import users
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.entities import User
from needlepoint.domain.enums import Role
from needlepoint.domain.permissions import Permission
from needlepoint.queries import accounts as account_queries
from needlepoint.web.api.account import TokenInfo
from needlepoint.web.context import ApiContext, requires

router = APIRouter(tags=["users"])


class UserOut(BaseModel):
    """A user as others may see them (never the credential)."""

    id: UUID
    clinic_id: UUID
    email: str
    full_name: str
    role: Role
    licence_number: str | None
    licence_date: date | None
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user, from_attributes=True)


@router.get("/me", response_model=UserOut, openapi_extra=requires(Permission.USE_ACCOUNT))
def me(ctx: ApiContext) -> UserOut:
    """The user this request is attributed to."""
    with ctx.reader() as r:
        return UserOut.of(r.one(User, ctx.actor.user_id))


@router.get("/users", response_model=list[UserOut], openapi_extra=requires(Permission.READ_STAFF))
def list_users(ctx: ApiContext) -> list[UserOut]:
    """The clinic's users."""
    with ctx.reader() as r:
        r.require(Permission.READ_STAFF)
        return [UserOut.of(u) for u in r.select(User, order_by=users.c.full_name)]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    openapi_extra=requires(Permission.REGISTER_USER),
)
def register_user(ctx: ApiContext, cmd: RegisterUser) -> UserOut:
    """Add a user (owner only), with their dry needling training records."""
    return UserOut.of(clinics.register_user(ctx.uow(), ctx.actor, cmd))


@router.get(
    "/users/{user_id}/tokens",
    response_model=list[TokenInfo],
    openapi_extra=requires(Permission.REVOKE_API_TOKENS),
)
def user_tokens(ctx: ApiContext, user_id: UUID) -> list[TokenInfo]:
    """A user's API tokens (never their values), for an owner who may revoke them. Only
    the user themself creates their tokens (`POST /account/tokens`)."""
    with ctx.reader() as r:
        r.require(Permission.REVOKE_API_TOKENS)
        r.one(User, user_id, field="user_id")
        return [TokenInfo.of(t) for t in account_queries.tokens_of(r, user_id)]


@router.delete(
    "/users/{user_id}/tokens/{token_id}",
    status_code=204,
    openapi_extra=requires(Permission.REVOKE_API_TOKENS),
)
def revoke_token(ctx: ApiContext, user_id: UUID, token_id: UUID) -> Response:
    """Revoke a user's API token (owner); it stops working at once."""
    clinics.revoke_api_token(ctx.uow(), ctx.actor, user_id, token_id)
    return Response(status_code=204)


class OneTimeCode(BaseModel):
    """A one-time code for the user, shown only in this response: hand it to them in
    person or by phone. It works once and expires at `expires_at`."""

    user: UserOut
    code: str
    expires_at: datetime


def _code_for(user: User, plain: str) -> OneTimeCode:
    return OneTimeCode(
        user=UserOut.of(user), code=plain, expires_at=datetime.now(UTC) + staff.CODE_LIFETIME
    )


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserOut,
    openapi_extra=requires(Permission.MANAGE_ACCOUNTS),
)
def deactivate(ctx: ApiContext, user_id: UUID) -> UserOut:
    """Deactivate an account (owner): it cannot sign in; its sessions and API tokens are
    revoked at once. Not one's own account, nor the clinic's last owner."""
    return UserOut.of(staff.deactivate_user(ctx.uow(), ctx.actor, user_id))


@router.post(
    "/users/{user_id}/reactivate",
    response_model=UserOut,
    openapi_extra=requires(Permission.MANAGE_ACCOUNTS),
)
def reactivate(ctx: ApiContext, user_id: UUID) -> UserOut:
    """Let a deactivated account sign in again (owner); it signs in afresh."""
    return UserOut.of(staff.reactivate_user(ctx.uow(), ctx.actor, user_id))


@router.post(
    "/users/{user_id}/password-reset",
    response_model=OneTimeCode,
    openapi_extra=requires(Permission.MANAGE_ACCOUNTS),
)
def reset_password(ctx: ApiContext, user_id: UUID) -> OneTimeCode:
    """Owner-initiated password reset: the password stops working, sessions and tokens
    are revoked, and the returned one-time code lets the user choose a new password on
    the `/password-reset` page."""
    user, plain = staff.reset_password(ctx.uow(), ctx.actor, user_id)
    return _code_for(user, plain)


@router.post(
    "/users/{user_id}/mfa-reset",
    response_model=OneTimeCode,
    openapi_extra=requires(Permission.MANAGE_ACCOUNTS),
)
def reset_mfa(ctx: ApiContext, user_id: UUID) -> OneTimeCode:
    """Remove the user's second factor (a lost phone): sessions and tokens are revoked;
    the returned enrolment code lets them set up a new authenticator."""
    user, plain = staff.reset_mfa(ctx.uow(), ctx.actor, user_id)
    return _code_for(user, plain)


@router.post(
    "/users/{user_id}/mfa-enrolment-code",
    response_model=OneTimeCode,
    openapi_extra=requires(Permission.MANAGE_ACCOUNTS),
)
def enrolment_code(ctx: ApiContext, user_id: UUID) -> OneTimeCode:
    """A one-time code with which the user sets up two-factor sign-in once the clinic
    requires it (409 when they already have it)."""
    _code, plain = staff.issue_enrolment_code(ctx.uow(), ctx.actor, user_id)
    with ctx.reader() as r:
        user = r.one(User, user_id)
    return _code_for(user, plain)


@router.post(
    "/users/{user_id}/sign-in-unlock",
    response_model=UserOut,
    openapi_extra=requires(Permission.MANAGE_ACCOUNTS),
)
def unlock(ctx: ApiContext, user_id: UUID) -> UserOut:
    """Lift the account's sign-in delays and its second-factor lock (owner)."""
    return UserOut.of(staff.unlock_sign_in(ctx.uow(), ctx.actor, user_id))
