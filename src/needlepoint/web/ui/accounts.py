"""Accounts in the web app: "My account" (change the password, new recovery codes, one's
own API tokens, sign out everywhere) and, for owners, "Staff accounts" (invite a
colleague, change their role and licence, record their dry needling training, deactivate
and reactivate, reset a password or a second factor, issue an enrolment code, lift
sign-in delays, revoke API tokens). Every change goes through `actions/` (audited there); a
one-time code an action returns is shown once, on the page that follows the change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions import clinics, credentials, staff
from needlepoint.domain.catalogue import muscles
from needlepoint.domain.commands import (
    AddTrainingRecord,
    ChangePassword,
    CreateApiToken,
    RegisterUser,
    ReissueRecoveryCodes,
    UpdateStaffMember,
)
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import DomainError, PermissionDenied
from needlepoint.domain.permissions import Permission, allows
from needlepoint.queries import accounts as queries
from needlepoint.queries.credentials import user_credentials
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    clinic_zone,
    field_errors,
    many,
    optional,
    posted_form,
    refusal_page,
    render,
    see_other,
    signed_in,
    text,
    to_login,
    today,
)

router = APIRouter(include_in_schema=False)


# -- my account -------------------------------------------------------------------------


def _my_page(request: Request, ctx: RequestContext, status: int = 200, **shown: Any) -> Response:
    with ctx.reader() as r:
        tokens = queries.my_tokens(r)
        two_factor = queries.my_two_factor(r)
    shown.setdefault("errors", {})
    may_manage = allows(ctx.role, Permission.MANAGE_ACCOUNTS)
    return render(
        request,
        "account.html",
        status,
        tokens=tokens,
        two_factor=two_factor,
        may_manage=may_manage,
        **shown,
    )


@router.get("/account", response_model=None)
def my_account(request: Request) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    return _my_page(request, ctx)


def _session_id(request: Request) -> UUID | None:
    found = getattr(request.state, "web_session_id", None)
    return found if isinstance(found, UUID) else None


@router.post("/account/password", response_model=None)
async def change_password(request: Request) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = ChangePassword(
                current_password=_raw(form, "current_password"),
                new_password=_raw(form, "new_password"),
            )
            others = staff.change_password(
                ctx.uow(), ctx.actor, cmd, keep_session=_session_id(request)
            )
        except (DomainError, ValidationError) as err:
            return _my_page(request, ctx, 400, errors=field_errors(err))
        return _my_page(request, ctx, saved=f"Password changed; {others} other sign-ins ended.")

    return await posted_form(request, handle)


@router.post("/account/recovery-codes", response_model=None)
async def new_recovery_codes(request: Request) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = ReissueRecoveryCodes(code=text(form, "code") or "------")
            codes = staff.reissue_recovery_codes(ctx.uow(), ctx.actor, cmd)
        except (DomainError, ValidationError) as err:
            return _my_page(request, ctx, 400, errors=field_errors(err, "rc-"))
        return _my_page(request, ctx, recovery_codes=codes)

    return await posted_form(request, handle)


@router.post("/account/tokens", response_model=None)
async def create_token(request: Request) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = CreateApiToken(
                label=text(form, "label") or "api",
                read_only=text(form, "read_only") == "on",
                password=_raw(form, "password"),
                code=text(form, "code") or None,
            )
            token, plain = staff.create_api_token(ctx.uow(), ctx.actor, cmd)
        except (DomainError, ValidationError) as err:
            return _my_page(request, ctx, 400, errors=field_errors(err, "token-"))
        return _my_page(request, ctx, new_token=plain, new_token_label=token.label)

    return await posted_form(request, handle)


@router.post("/account/tokens/{token_id}/revoke", response_model=None)
async def revoke_my_token(request: Request, token_id: UUID) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            staff.revoke_own_api_token(ctx.uow(), ctx.actor, token_id)
        except DomainError as err:
            return refusal_page(request, err)
        return _my_page(request, ctx, saved="API token revoked.")

    return await posted_form(request, handle)


def _raw(form: dict[str, Any], key: str) -> str:
    """A password field exactly as typed (no stripping: every character counts)."""
    value = form.get(key, "")
    return value[-1] if isinstance(value, list) else str(value)


# -- staff accounts (owners) ------------------------------------------------------------


STAFF_ROLES = [r for r in Role if r is not Role.PATIENT]  # patients get their own links


def _staff_page(request: Request, ctx: RequestContext, status: int = 200, **shown: Any) -> Response:
    try:
        with ctx.reader() as r:
            accounts = queries.staff_accounts(r)
    except PermissionDenied as err:
        return refusal_page(request, err)
    errors: Errors = shown.pop("errors", {})
    shown.setdefault("form", {})
    return render(
        request,
        "staff.html",
        status,
        accounts=accounts,
        errors=errors,
        roles=STAFF_ROLES,
        me=ctx.actor.user_id,
        **shown,
    )


@router.post("/staff/invite", response_model=None)
async def invite(request: Request) -> Response:
    """Invite a colleague: their account (no password yet) and a one-time code with which
    they choose their password on the "Set a new password" page."""

    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = RegisterUser.model_validate(
                {
                    "email": text(form, "email"),
                    "full_name": text(form, "full_name"),
                    "role": text(form, "role"),
                    "licence_number": optional(text(form, "licence_number")),
                    "licence_date": optional(text(form, "licence_date")),
                }
            )
            user = clinics.register_user(ctx.uow(), ctx.actor, cmd)
            user, code = staff.reset_password(ctx.uow(), ctx.actor, user.id)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except (DomainError, ValidationError) as err:
            return _staff_page(request, ctx, 400, errors=field_errors(err, "invite-"), form=form)
        return _staff_page(
            request,
            ctx,
            saved=(
                f"{user.full_name} is invited. Give them this code (in person or by phone); "
                f"they choose their password at /password-reset with their email"
            ),
            code=code,
        )

    return await posted_form(request, handle)


def _member_page(
    request: Request, ctx: RequestContext, user_id: UUID, status: int = 200, **shown: Any
) -> Response:
    try:
        with ctx.reader() as r:
            r.require(Permission.MANAGE_ACCOUNTS)
            found = user_credentials(r, user_id, today(clinic_zone(ctx)))
            account = next(a for a in queries.staff_accounts(r) if a.user.id == user_id)
    except DomainError as err:
        return refusal_page(request, err)
    shown.setdefault("errors", {})
    shown.setdefault("form", {})
    shown.setdefault("course", {})
    return render(
        request,
        "staff_member.html",
        status,
        member=account.user,
        account=account,
        creds=found,
        roles=STAFF_ROLES,
        regions=sorted({m.region for m in muscles().muscles}),
        is_self=user_id == ctx.actor.user_id,
        **shown,
    )


@router.get("/staff/{user_id}", response_model=None)
def staff_member(request: Request, user_id: UUID, saved: str = "") -> Response:
    """One colleague: name, role and licence, dry needling training, account actions."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    message = {"profile": "Details saved.", "training": "Training record added."}.get(saved)
    return _member_page(request, ctx, user_id, saved=message)


@router.post("/staff/{user_id}/profile", response_model=None)
async def staff_member_profile(request: Request, user_id: UUID) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = UpdateStaffMember.model_validate(
                {
                    "user_id": user_id,
                    "expected_version": text(form, "version"),
                    "full_name": text(form, "full_name"),
                    "role": text(form, "role"),
                    "licence_number": optional(text(form, "licence_number")),
                    "licence_date": optional(text(form, "licence_date")),
                }
            )
            staff.update_staff_member(ctx.uow(), ctx.actor, cmd)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except (DomainError, ValidationError) as err:
            return _member_page(request, ctx, user_id, 400, errors=field_errors(err), form=form)
        return see_other(f"/staff/{user_id}?saved=profile")

    return await posted_form(request, handle)


@router.post("/staff/{user_id}/training", response_model=None)
async def staff_member_training(request: Request, user_id: UUID) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = AddTrainingRecord.model_validate(
                {
                    "user_id": user_id,
                    "provider": text(form, "provider"),
                    "course": text(form, "course"),
                    "hours_in_person": text(form, "hours_in_person"),
                    "hours_online": text(form, "hours_online") or "0",
                    "completed_on": text(form, "completed_on"),
                    "exam_passed": text(form, "exam_passed") == "on",
                    "regions": [r.strip() for r in many(form, "regions") if r.strip()],
                    "supervised_sessions": optional(text(form, "supervised_sessions")),
                }
            )
            credentials.add_training_record(ctx.uow(), ctx.actor, cmd)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except (DomainError, ValidationError) as err:
            errors = field_errors(err, "course-")
            return _member_page(request, ctx, user_id, 400, errors=errors, course=form)
        return see_other(f"/staff/{user_id}?saved=training")

    return await posted_form(request, handle)


@router.get("/staff", response_model=None)
def staff_page(request: Request) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    return _staff_page(request, ctx)


def _done(user_name: str, what: str) -> str:
    return f"{user_name}: {what}."


OPERATIONS: dict[str, Callable[[RequestContext, UUID], tuple[str, str | None]]] = {
    "deactivate": lambda ctx, uid: (
        _done(staff.deactivate_user(ctx.uow(), ctx.actor, uid).full_name, "deactivated"),
        None,
    ),
    "reactivate": lambda ctx, uid: (
        _done(staff.reactivate_user(ctx.uow(), ctx.actor, uid).full_name, "active again"),
        None,
    ),
    "unlock": lambda ctx, uid: (
        _done(staff.unlock_sign_in(ctx.uow(), ctx.actor, uid).full_name, "sign-in unlocked"),
        None,
    ),
}


def _password_reset(ctx: RequestContext, uid: UUID) -> tuple[str, str | None]:
    user, code = staff.reset_password(ctx.uow(), ctx.actor, uid)
    return _done(user.full_name, "password reset; give them this reset code"), code


def _mfa_reset(ctx: RequestContext, uid: UUID) -> tuple[str, str | None]:
    user, code = staff.reset_mfa(ctx.uow(), ctx.actor, uid)
    return _done(user.full_name, "two-factor sign-in removed; give them this enrolment code"), code


def _enrolment_code(ctx: RequestContext, uid: UUID) -> tuple[str, str | None]:
    _issued, code = staff.issue_enrolment_code(ctx.uow(), ctx.actor, uid)
    return "Give this enrolment code to the user (in person or by phone)", code


OPERATIONS["password-reset"] = _password_reset
OPERATIONS["mfa-reset"] = _mfa_reset
OPERATIONS["enrolment-code"] = _enrolment_code


@router.post("/staff/{user_id}/{operation}", response_model=None)
async def staff_operation(request: Request, user_id: UUID, operation: str) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        run = OPERATIONS.get(operation)
        if run is None:
            return render(request, "error.html", 404, message="No such page.")
        try:
            message, code = run(ctx, user_id)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except DomainError as err:
            return _staff_page(request, ctx, 400, errors=field_errors(err))
        return _staff_page(request, ctx, saved=message, code=code)

    return await posted_form(request, handle)


@router.post("/staff/{user_id}/tokens/{token_id}/revoke", response_model=None)
async def revoke_token(request: Request, user_id: UUID, token_id: UUID) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            clinics.revoke_api_token(ctx.uow(), ctx.actor, user_id, token_id)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except DomainError as err:
            return _staff_page(request, ctx, 400, errors=field_errors(err))
        return _staff_page(request, ctx, saved="API token revoked.")

    return await posted_form(request, handle)
