"""The caller's own account (sessions, sign out everywhere, two-factor sign-in,
notifications), the clinic's security policy, and emergency (break-glass) access."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel

from needlepoint.actions import accounts
from needlepoint.domain.commands import MfaCode, RequestEmergencyAccess, UpdateSecuritySettings
from needlepoint.domain.entities import EmergencyAccess, Notification, SecuritySettings
from needlepoint.domain.permissions import Permission
from needlepoint.queries import accounts as queries
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["account"])


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
    """End every web session of the caller, on every device."""
    return SignedOut(revoked_sessions=accounts.sign_out_everywhere(ctx.uow(), ctx.actor))


@router.post(
    "/account/mfa",
    response_model=MfaEnrolment,
    status_code=201,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def begin_mfa(ctx: ApiContext) -> MfaEnrolment:
    """Start setting up two-factor sign-in (TOTP); 409 when it is already on."""
    secret, uri = accounts.begin_mfa_enrolment(ctx.uow(), ctx.actor)
    return MfaEnrolment(secret=secret, otpauth_uri=uri)


@router.post(
    "/account/mfa/confirm",
    response_model=RecoveryCodes,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def confirm_mfa(ctx: ApiContext, body: MfaCode) -> RecoveryCodes:
    """Turn two-factor sign-in on with a first code; returns the recovery codes."""
    return RecoveryCodes(recovery_codes=accounts.confirm_mfa_enrolment(ctx.uow(), ctx.actor, body))


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
