"""The caller's own account (sessions, sign out everywhere, password, two-factor sign-in
and recovery codes, API tokens, notifications), the clinic's security policy, and
emergency (break-glass) access."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel

from needlepoint.actions import accounts, staff
from needlepoint.domain.commands import (
    BeginMfaEnrolment,
    ChangePassword,
    ConfirmMfaEnrolment,
    CreateApiToken,
    ReissueRecoveryCodes,
    RequestEmergencyAccess,
    UpdateSecuritySettings,
)
from needlepoint.domain.entities import ApiToken, EmergencyAccess, Notification, SecuritySettings
from needlepoint.domain.permissions import Permission
from needlepoint.queries import accounts as queries
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["account"])
_NO_CODE = BeginMfaEnrolment()


class WebSessionOut(BaseModel):
    """A signed-in browser (never its cookie value or CSRF token)."""

    id: UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None
    mfa_pending: bool


class SignedOut(BaseModel):
    revoked_sessions: int
    revoked_tokens: int


class PasswordChanged(BaseModel):
    """The password changed; the caller's web sessions were signed out."""

    signed_out_sessions: int


class TokenInfo(BaseModel):
    """An API token as its holder and the clinic's owners see it (never the token)."""

    id: UUID
    user_id: UUID
    label: str
    scopes: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenInfo:
        return cls.model_validate(token, from_attributes=True)


class NewToken(TokenInfo):
    """A new API token; `token` is shown only in this response."""

    token: str


class MfaEnrolment(BaseModel):
    """A new TOTP key: add it to an authenticator app, then confirm with a code."""

    secret: str
    otpauth_uri: str


class RecoveryCodes(BaseModel):
    """One-time recovery codes, shown only in this response."""

    recovery_codes: list[str]


@router.get(
    "/account/sessions",
    response_model=list[WebSessionOut],
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def my_sessions(ctx: ApiContext) -> list[WebSessionOut]:
    """The caller's open web sessions."""
    with ctx.reader() as r:
        found = queries.my_sessions(r)
    return [WebSessionOut.model_validate(s, from_attributes=True) for s in found]


@router.post(
    "/account/sign-out-everywhere",
    response_model=SignedOut,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def sign_out_everywhere(ctx: ApiContext) -> SignedOut:
    """End every web session of the caller, on every device, and revoke every API token
    of theirs (this request's token included)."""
    sessions, tokens = accounts.sign_out_everywhere(ctx.uow(), ctx.actor)
    return SignedOut(revoked_sessions=sessions, revoked_tokens=tokens)


@router.post(
    "/account/password",
    response_model=PasswordChanged,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def change_password(ctx: ApiContext, body: ChangePassword) -> PasswordChanged:
    """Change the caller's password, proven by the current one (422 naming
    `current_password` when it is wrong; repeated failures wait longer). Every web
    session of the caller is signed out; API tokens stay."""
    return PasswordChanged(signed_out_sessions=staff.change_password(ctx.uow(), ctx.actor, body))


@router.get(
    "/account/tokens",
    response_model=list[TokenInfo],
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def my_tokens(ctx: ApiContext) -> list[TokenInfo]:
    """The caller's API tokens (never their values), newest first."""
    with ctx.reader() as r:
        return [TokenInfo.of(t) for t in queries.my_tokens(r)]


@router.post(
    "/account/tokens",
    response_model=NewToken,
    status_code=201,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def create_token(ctx: ApiContext, body: CreateApiToken) -> NewToken:
    """A new API token for the caller themself, proven by their password (and an
    authenticator `code` when they have two-factor sign-in or the clinic requires it).
    It expires after the clinic's `api_token_days` (default 90). A `read_only` token may
    only read. The token is shown only in this response."""
    token, plain = staff.create_api_token(ctx.uow(), ctx.actor, body)
    return NewToken(**TokenInfo.of(token).model_dump(), token=plain)


@router.delete(
    "/account/tokens/{own_token_id}",
    status_code=204,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def revoke_my_token(ctx: ApiContext, own_token_id: UUID) -> Response:
    """Revoke one of the caller's own API tokens; it stops working at once."""
    staff.revoke_own_api_token(ctx.uow(), ctx.actor, own_token_id)
    return Response(status_code=204)


@router.post(
    "/account/mfa",
    response_model=MfaEnrolment,
    status_code=201,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def begin_mfa(
    ctx: ApiContext, body: Annotated[BeginMfaEnrolment, Body()] = _NO_CODE
) -> MfaEnrolment:
    """Start setting up two-factor sign-in (TOTP); 409 when it is already on. Once the
    clinic requires it, send the `enrolment_code` an owner issued (422 without it)."""
    secret, uri = accounts.begin_mfa_enrolment(ctx.uow(), ctx.actor, body)
    return MfaEnrolment(secret=secret, otpauth_uri=uri)


@router.post(
    "/account/mfa/confirm",
    response_model=RecoveryCodes,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def confirm_mfa(ctx: ApiContext, body: ConfirmMfaEnrolment) -> RecoveryCodes:
    """Turn two-factor sign-in on with a first code (and the owner's `enrolment_code`
    when the clinic requires two-factor sign-in); returns the recovery codes."""
    return RecoveryCodes(recovery_codes=accounts.confirm_mfa_enrolment(ctx.uow(), ctx.actor, body))


@router.post(
    "/account/mfa/recovery-codes",
    response_model=RecoveryCodes,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def reissue_recovery_codes(ctx: ApiContext, body: ReissueRecoveryCodes) -> RecoveryCodes:
    """New recovery codes, proven by a current authenticator code; the unused old ones
    stop working. Shown only in this response."""
    return RecoveryCodes(recovery_codes=staff.reissue_recovery_codes(ctx.uow(), ctx.actor, body))


@router.get(
    "/account/notifications",
    response_model=list[Notification],
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def my_notifications(ctx: ApiContext) -> Response:
    """Notifications for the caller (e.g. emergency accesses to review), newest first."""
    with ctx.reader() as r:
        return respond(queries.my_notifications(r))


@router.get(
    "/clinic/security",
    response_model=SecuritySettings,
    openapi_extra=requires(Permission.MANAGE_SECURITY),
)
def get_security(ctx: ApiContext) -> Response:
    """The clinic's security policy: MFA requirement, session time-outs, emergency access."""
    with ctx.reader() as r:
        found = queries.clinic_security(r)
    return respond(found, version=found.version)


@router.put(
    "/clinic/security",
    response_model=SecuritySettings,
    openapi_extra=requires(Permission.MANAGE_SECURITY),
)
def put_security(ctx: ApiContext, body: UpdateSecuritySettings, version: IfMatch) -> Response:
    """Change the clinic's security policy (owner only; If-Match required)."""
    found = accounts.update_security_settings(ctx.uow(), ctx.actor, body, expected_version=version)
    return respond(found, version=found.version)


@router.post(
    "/patients/{patient_id}/emergency-access",
    response_model=EmergencyAccess,
    status_code=201,
    openapi_extra=requires(Permission.EMERGENCY_ACCESS),
)
def emergency_access(ctx: ApiContext, patient_id: UUID, body: RequestEmergencyAccess) -> Response:
    """Break the glass: open this patient's record for a limited time, with a reason.
    Flagged in the audit trail; every owner is notified."""
    grant = accounts.grant_emergency_access(ctx.uow(), ctx.actor, patient_id, body)
    return respond(grant, status=201)


@router.get(
    "/emergency-access",
    response_model=list[EmergencyAccess],
    openapi_extra=requires(Permission.REVIEW_EMERGENCY_ACCESS),
)
def emergency_access_log(ctx: ApiContext) -> Response:
    """Every emergency access in the clinic, newest first, for review."""
    with ctx.reader() as r:
        return respond(queries.emergency_access_log(r))
