"""Users of the clinic, and who am I."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from needlepoint.actions import clinics
from needlepoint.adapters.db.tables import users
from needlepoint.domain.commands import IssueApiToken, RegisterUser
from needlepoint.domain.entities import User
from needlepoint.domain.enums import Role
from needlepoint.domain.permissions import Permission
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


class TokenOut(BaseModel):
    id: UUID
    user_id: UUID
    label: str
    token: str
    scopes: str
    created_at: datetime


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


@router.post(
    "/users/{user_id}/tokens",
    response_model=TokenOut,
    status_code=201,
    openapi_extra=requires(Permission.ISSUE_API_TOKEN),
)
def issue_token(
    ctx: ApiContext,
    user_id: UUID,
    label: Annotated[str, Query(min_length=1, max_length=200)] = "api",
    read_only: bool = False,
) -> TokenOut:
    """A new API token for a user; the token is shown only in this response. A
    `read_only` token may only read (403 on every write)."""
    token, plain = clinics.issue_api_token(
        ctx.uow(),
        ctx.actor,
        IssueApiToken(user_id=user_id, label=label),
        scopes="read" if read_only else "read write",
    )
    return TokenOut(
        id=token.id,
        user_id=token.user_id,
        label=token.label,
        token=plain,
        scopes=token.scopes,
        created_at=token.created_at,
    )


@router.delete(
    "/users/{user_id}/tokens/{token_id}",
    status_code=204,
    openapi_extra=requires(Permission.ISSUE_API_TOKEN),
)
def revoke_token(ctx: ApiContext, user_id: UUID, token_id: UUID) -> Response:
    """Revoke a user's API token (owner); it stops working at once."""
    clinics.revoke_api_token(ctx.uow(), ctx.actor, user_id, token_id)
    return Response(status_code=204)
