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

from needlepoint.actions import accounts
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import MfaCode
from needlepoint.domain.entities import SecuritySettings
from needlepoint.domain.errors import DomainError
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
    actor = Actor(ws.user_id, ws.clinic_id, source="web", request_id=request_id(request))
    token = request.cookies.get(SESSION_COOKIE, "")
    return RequestContext(
        engine,
        actor,
        found.role,
        check=web_session_check(token, ws.id),
        sink=deferred.put,
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


def _with_session_cookie(request: Request, response: Response, token: str, ws: Any) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(1, int((ws.expires_at - ws.created_at).total_seconds())),
        httponly=True,
        secure=request.app.state.secure_cookies,
        samesite="lax",
    )
    return response


def _signed_out(target: str = "/login") -> Response:
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
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
) -> Response:
    """Check the credentials (rate-limited, logged) and start a web session."""
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
            message = "Too many failed attempts: sign-in is paused for 15 minutes."
            return _login_page(request, 429, error=message, email=email)
        return _login_page(request, 401, error="Wrong email or password.", email=email)
    response = RedirectResponse(NEXT_STEP[result.outcome], status_code=303)
    return _with_session_cookie(request, response, result.token, result.session)


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
        token = accounts.verify_code(
            SqlUnitOfWork(request.app.state.engine),
            found.session,
            MfaCode(code=code.strip() or "------"),
            address=_address(request),
            request_id=request_id(request),
        )
    except (DomainError, ValidationError):
        token = None
    if token is None:
        return _render(request, "mfa.html", 401, error="That code is not valid.")
    response = RedirectResponse("/patients", status_code=303)
    return _with_session_cookie(request, response, token, found.session)


@router.get("/login/enrol", response_model=None)
def enrol_form(request: Request) -> Response:
    """Set up two-factor sign-in, when the clinic requires it and the user has none."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    ws = found.session
    actor = Actor(ws.user_id, ws.clinic_id, source="web", request_id=request_id(request))
    try:
        secret, uri = accounts.begin_mfa_enrolment(SqlUnitOfWork(request.app.state.engine), actor)
    except DomainError:
        return RedirectResponse("/login/code", status_code=303)
    return _render(request, "mfa_enrol.html", secret=secret, uri=uri, codes=None, error=None)


@router.post("/login/enrol", response_model=None)
def enrol(
    request: Request,
    code: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Confirm the new authenticator with a first code; show the recovery codes once."""
    found = _current(request)
    if found is None or not found.session.mfa_pending:
        return RedirectResponse("/login", status_code=303)
    if not _csrf_ok(request, csrf):
        return RedirectResponse("/login/enrol", status_code=303)
    ws = found.session
    actor = Actor(ws.user_id, ws.clinic_id, source="web", request_id=request_id(request))
    try:
        codes = accounts.confirm_mfa_enrolment(
            SqlUnitOfWork(request.app.state.engine), actor, MfaCode(code=code.strip() or "------")
        )
    except (DomainError, ValidationError):
        message = "That code is not valid; scan the key again and retry."
        return _render(
            request, "mfa_enrol.html", 400, secret=None, uri=None, codes=None, error=message
        )
    token = accounts.complete_enrolled_sign_in(
        SqlUnitOfWork(request.app.state.engine),
        ws,
        address=_address(request),
        request_id=request_id(request),
    )
    if token is None:
        return RedirectResponse("/login", status_code=303)
    response = _render(request, "mfa_enrol.html", secret=None, uri=None, codes=codes, error=None)
    return _with_session_cookie(request, response, token, ws)


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
