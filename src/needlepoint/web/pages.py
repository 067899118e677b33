"""Server-rendered pages: sign in (password, then the authenticator code) and sign
out. The clinician's web app (patients, chart, screening, consent, episodes, session
notes, progress, settings) lives in `web/ui/`."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError

from needlepoint.actions import accounts, staff
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import (
    BeginMfaEnrolment,
    CompletePasswordReset,
    ConfirmMfaEnrolment,
    MfaCode,
)
from needlepoint.domain.entities import SecuritySettings, WebSession
from needlepoint.domain.errors import DomainError, RecordLocked
from needlepoint.web.context import (
    SESSION_COOKIE,
    RequestContext,
    WebSignIn,
    lookup_web_session,
    request_id,
    web_session_check,
)
from needlepoint.web.deferred_writes import DeferredWrites

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("needlepoint.web", "templates"),
        autoescape=select_autoescape(),
        auto_reload=False,  # templates change only with a release: no stat() per page
    )
)


LOGIN_CSRF_COOKIE = "needlepoint_login_csrf"
LOGIN_CSRF_MAX_AGE = 2 * 3600


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _current(request: Request) -> WebSignIn | None:
    """The browser's session, pending or complete; expired ones are ended here."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        found = lookup_web_session(conn, token)
    if found is None:
        return None
    ws = found.session
    policy = SecuritySettings(id=ws.clinic_id, clinic_id=ws.clinic_id)
    if found.idle_timeout_minutes is not None:
        policy = replace(policy, idle_timeout_minutes=found.idle_timeout_minutes)
    expired = accounts.session_expiry(ws, policy, datetime.now(UTC))
    if expired is not None:
        accounts.end_session(SqlUnitOfWork(engine), ws, reason=expired)
        return None
    request.state.csrf_token = ws.csrf_token
    return found


def _web_context(request: Request) -> RequestContext | None:
    """The signed-in user of a page request (None: send them to sign in). A session still
    waiting for its second factor signs nobody in."""
    found = _current(request)
    if found is None or found.session.mfa_pending:
        return None
    engine: sa.Engine = request.app.state.engine
    ws = found.session
    deferred: DeferredWrites = request.app.state.deferred
    if datetime.now(UTC) - ws.last_seen_at >= accounts.TOUCH_EVERY:
        deferred.touch(ws)  # by the background writer: a page view never takes the lock
    request.state.user_name = found.full_name
    request.state.clinic_name = found.clinic_name
    request.state.clinic_time_zone = found.clinic_time_zone
    request.state.user_role = found.role  # the menu shows "Staff" to owners
    request.state.web_session_id = ws.id
    actor = Actor(ws.user_id, ws.clinic_id, source="web", request_id=request_id(request))
    token = request.cookies.get(SESSION_COOKIE, "")
    return RequestContext(
        engine,
        actor,
        found.role,
        check=web_session_check(token, ws.id),
        sink=deferred.put,
        time_zone=found.clinic_time_zone,
    )


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user_name", getattr(request.state, "user_name", None))
    context.setdefault("clinic_name", getattr(request.state, "clinic_name", None))
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    return templates.TemplateResponse(request, name, context, status_code=status)


def _csrf_ok(request: Request, submitted: str) -> bool:
    """The synchroniser token of the browser's session matches the form's."""
    expected = getattr(request.state, "csrf_token", None)
    return bool(expected) and secrets.compare_digest(submitted, str(expected))


def _login_signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt="login-csrf")


def _login_csrf_ok(request: Request, submitted: str) -> bool:
    """Before sign-in there is no session: the form's token must match the signed,
    time-limited copy in a cookie (double submit)."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    try:
        nonce = _login_signer(request).loads(cookie, max_age=LOGIN_CSRF_MAX_AGE)
    except BadSignature:
        return False
    return isinstance(nonce, str) and secrets.compare_digest(submitted, nonce)


def _login_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    context.setdefault("error", None)
    context.setdefault("email", "")
    response = _render(request, "login.html", status, csrf_token=nonce, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        _login_signer(request).dumps(nonce),
        max_age=LOGIN_CSRF_MAX_AGE,
        httponly=True,
        secure=request.app.state.secure_cookies,
        samesite="lax",
    )
    return response


REMEMBER_COOKIE = "needlepoint_remember"


def _with_session_cookie(
    request: Request, response: Response, token: str, ws: Any, *, remember: bool | None = None
) -> Response:
    """Set the session cookie. It ends with the browser unless the user ticked "remember
    this device" at sign-in; then it lasts the session's absolute lifetime (the server
    ends the session then, or after the idle time-out, either way)."""
    if remember is None:  # a later step of the same sign-in: what the first step chose
        remember = request.cookies.get(REMEMBER_COOKIE) == "1"
    secure = request.app.state.secure_cookies
    lifetime = max(1, int((ws.expires_at - ws.created_at).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=lifetime if remember else None,
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    if remember:
        response.set_cookie(
            REMEMBER_COOKIE, "1", max_age=lifetime, httponly=True, secure=secure, samesite="lax"
        )
    else:
        response.delete_cookie(REMEMBER_COOKIE)
    return response


def _signed_out(target: str = "/login") -> Response:
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(REMEMBER_COOKIE)
    return response


@router.get("/", response_model=None)
def home(request: Request) -> Response:
    """Signed-in users land on the patient list."""
    target = "/patients" if request.cookies.get(SESSION_COOKIE) else "/login"
    return RedirectResponse(target, status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The sign-in page."""
    return _login_page(request)


NEXT_STEP = {
    accounts.Outcome.SIGNED_IN: "/patients",
    accounts.Outcome.NEEDS_CODE: "/login/code",
    accounts.Outcome.NEEDS_ENROLMENT: "/login/enrol",
}


@router.post("/login", response_model=None)
def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=64)] = "",
    remember: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Check the credentials (progressively delayed after failures, logged) and start a
    web session; its cookie ends with the browser unless `remember` is ticked."""
    if not _login_csrf_ok(request, csrf):
        return _login_page(request, 400, error="The form expired; try again.", email=email)
    engine: sa.Engine = request.app.state.engine
    result = accounts.sign_in(
        SqlUnitOfWork(engine),
        email,
        password,
        address=_address(request),
        request_id=request_id(request),
    )
    if result.outcome is accounts.Outcome.REFUSED or result.token is None:
        if result.locked:
            wait = result.retry_after or 1
            message = (
                f"Too many failed attempts from here: sign-in is paused; try again in "
                f"{_duration(wait)}."
            )
            page = _login_page(request, 429, error=message, email=email)
            page.headers["Retry-After"] = str(wait)
            return page
        return _login_page(request, 401, error="Wrong email or password.", email=email)
    response = RedirectResponse(NEXT_STEP[result.outcome], status_code=303)
    return _with_session_cookie(
        request, response, result.token, result.session, remember=remember == "on"
    )


def _duration(seconds: int) -> str:
    """A wait in words: `45 seconds`, `2 minutes`."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@router.get("/login/code", response_model=None)
def code_form(request: Request) -> Response:
    """The second step of signing in: the authenticator code."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    return _render(request, "mfa.html", error=None)


@router.post("/login/code", response_model=None)
def code(
    request: Request,
    code: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Check the authenticator (or recovery) code and complete the sign-in."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    if not _csrf_ok(request, csrf):
        return _render(request, "mfa.html", 400, error="The form expired; try again.")
    try:
        check = accounts.verify_code(
            SqlUnitOfWork(request.app.state.engine),
            found.session,
            MfaCode(code=code.strip() or "------"),
            address=_address(request),
            request_id=request_id(request),
        )
    except (DomainError, ValidationError):
        check = accounts.CodeCheck(None, "bad_code")
    if check.token is None:
        if check.refused == "mfa_locked":
            message = (
                "Too many wrong codes: two-factor sign-in is locked for this account. "
                "Ask an owner of your clinic to unlock it."
            )
            return _render(request, "mfa.html", 429, error=message)
        if check.refused == "throttled":
            wait = check.retry_after or 1
            message = f"Too many wrong codes: try again in {_duration(wait)}."
            page = _render(request, "mfa.html", 429, error=message)
            page.headers["Retry-After"] = str(wait)
            return page
        return _render(request, "mfa.html", 401, error="That code is not valid.")
    response = RedirectResponse("/patients", status_code=303)
    return _with_session_cookie(request, response, check.token, found.session)


@router.get("/login/enrol", response_model=None)
def enrol_form(request: Request) -> Response:
    """Set up two-factor sign-in, when the clinic requires it and the user has none:
    first the one-time enrolment code an owner gave them (the password alone does not
    enrol a device)."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    return _render(request, "mfa_enrol.html", step="code", error=None)


def _pending_actor(request: Request, ws: WebSession) -> Actor:
    return Actor(ws.user_id, ws.clinic_id, source="web", request_id=request_id(request))


@router.post("/login/enrol/start", response_model=None)
def enrol_start(
    request: Request,
    enrolment_code: Annotated[str, Form(max_length=64)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Check the owner's enrolment code and show a new authenticator key."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    if not _csrf_ok(request, csrf):
        return RedirectResponse("/login/enrol", status_code=303)
    try:
        cmd = BeginMfaEnrolment(enrolment_code=enrolment_code.strip() or None)
        secret, uri = accounts.begin_mfa_enrolment(
            SqlUnitOfWork(request.app.state.engine), _pending_actor(request, found.session), cmd
        )
    except RecordLocked:
        return RedirectResponse("/login/code", status_code=303)
    except (DomainError, ValidationError):
        message = "That enrolment code is not valid (wrong, used or expired); ask an owner."
        return _render(request, "mfa_enrol.html", 400, step="code", error=message)
    return _render(
        request,
        "mfa_enrol.html",
        step="key",
        secret=secret,
        uri=uri,
        enrolment_code=cmd.enrolment_code,
        error=None,
    )


@router.post("/login/enrol", response_model=None)
def enrol(
    request: Request,
    code: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)] = "",
    enrolment_code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Confirm the new authenticator with a first code; show the recovery codes once."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    if not _csrf_ok(request, csrf):
        return RedirectResponse("/login/enrol", status_code=303)
    ws = found.session
    try:
        codes = accounts.confirm_mfa_enrolment(
            SqlUnitOfWork(request.app.state.engine),
            _pending_actor(request, ws),
            ConfirmMfaEnrolment(
                code=code.strip() or "------", enrolment_code=enrolment_code.strip() or None
            ),
        )
    except (DomainError, ValidationError):
        message = "That code is not valid; enter your enrolment code and scan the new key."
        return _render(request, "mfa_enrol.html", 400, step="code", error=message)
    token = accounts.complete_enrolled_sign_in(
        SqlUnitOfWork(request.app.state.engine),
        ws,
        address=_address(request),
        request_id=request_id(request),
    )
    if token is None:
        return RedirectResponse("/login", status_code=303)
    response = _render(request, "mfa_enrol.html", step="done", codes=codes, error=None)
    return _with_session_cookie(request, response, token, ws)


def _reset_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    """The password-reset form: like the sign-in form, CSRF by double submit."""
    nonce = secrets.token_urlsafe(24)
    context.setdefault("error", None)
    context.setdefault("email", "")
    context.setdefault("done", False)
    response = _render(request, "password_reset.html", status, csrf_token=nonce, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        _login_signer(request).dumps(nonce),
        max_age=LOGIN_CSRF_MAX_AGE,
        httponly=True,
        secure=request.app.state.secure_cookies,
        samesite="lax",
    )
    return response


@router.get("/password-reset", response_class=HTMLResponse)
def password_reset_form(request: Request) -> HTMLResponse:
    """Set a new password with the one-time reset code an owner gave you."""
    return _reset_page(request)


@router.post("/password-reset", response_model=None)
def password_reset(
    request: Request,
    email: Annotated[str, Form(max_length=254)],
    reset_code: Annotated[str, Form(max_length=64)],
    new_password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Check the reset code (logged; wrong codes count towards the address's delays) and
    set the new password exactly as typed."""
    if not _login_csrf_ok(request, csrf):
        return _reset_page(request, 400, error="The form expired; try again.", email=email)
    try:
        cmd = CompletePasswordReset(email=email, reset_code=reset_code, new_password=new_password)
        staff.complete_password_reset(
            SqlUnitOfWork(request.app.state.engine),
            cmd,
            address=_address(request),
            request_id=request_id(request),
        )
    except (DomainError, ValidationError) as err:
        if isinstance(err, DomainError):
            message = err.detail
        else:
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
        return _reset_page(request, 400, error=message, email=email)
    return _reset_page(request, done=True)


@router.post("/logout", response_model=None)
def logout(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    """End this browser's session (server-side: the cookie's id stops working)."""
    found = _current(request)
    if found is not None and _csrf_ok(request, csrf):
        accounts.end_session(SqlUnitOfWork(request.app.state.engine), found.session)
        return _signed_out()
    return RedirectResponse("/login" if found is None else "/patients", status_code=303)


@router.post("/logout/everywhere", response_model=None)
def logout_everywhere(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    """End every session of this user, on every device."""
    ctx = _web_context(request)
    if ctx is not None and _csrf_ok(request, csrf):
        accounts.sign_out_everywhere(SqlUnitOfWork(request.app.state.engine), ctx.actor)
        return _signed_out()
    return RedirectResponse("/login" if ctx is None else "/patients", status_code=303)
