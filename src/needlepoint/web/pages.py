"""Server-rendered pages: sign in and sign out. The clinician's web app (patients, chart,
screening, consent, episodes, session notes, progress, settings) lives in `web/ui/`."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from needlepoint.actions.context import Actor
from needlepoint.adapters.db.tables import clinics, users
from needlepoint.adapters.passwords import verify_password
from needlepoint.domain.enums import Role
from needlepoint.web.context import RequestContext, request_id

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("needlepoint.web", "templates"),
        autoescape=select_autoescape(),
    )
)


def _web_context(request: Request) -> RequestContext | None:
    user_id = request.session.get("user_id")
    if not user_id:
        return None
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                users.c.id,
                users.c.clinic_id,
                users.c.role,
                users.c.full_name,
                clinics.c.name.label("clinic_name"),
            )
            .join(clinics, clinics.c.id == users.c.clinic_id)
            .where(users.c.id == UUID(user_id), users.c.is_active.is_(True))
        ).first()
    if row is None:
        request.session.clear()
        return None
    request.state.user_name = row.full_name
    request.state.clinic_name = row.clinic_name
    actor = Actor(row.id, row.clinic_id, source="web", request_id=request_id(request))
    return RequestContext(engine, actor, Role(row.role))


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user_name", getattr(request.state, "user_name", None))
    context.setdefault("clinic_name", getattr(request.state, "clinic_name", None))
    context.setdefault("csrf_token", _csrf_token(request))
    return templates.TemplateResponse(request, name, context, status_code=status)


def _csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


@router.get("/", response_model=None)
def home(request: Request) -> Response:
    """Signed-in users land on the patient list."""
    target = "/patients" if request.session.get("user_id") else "/login"
    return RedirectResponse(target, status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The sign-in page."""
    return _render(request, "login.html", error=None, email="")


@router.post("/login", response_model=None)
def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Check the credentials and start a web session."""
    if not secrets.compare_digest(csrf, str(request.session.get("csrf", ""))):
        return _render(
            request, "login.html", 400, error="The form expired; try again.", email=email
        )
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.password_hash).where(
                users.c.email == email.strip().lower(), users.c.is_active.is_(True)
            )
        ).first()
    if not verify_password(password, row.password_hash if row else None) or row is None:
        return _render(request, "login.html", 401, error="Wrong email or password.", email=email)
    request.session.clear()
    request.session["user_id"] = str(row.id)
    return RedirectResponse("/patients", status_code=303)


@router.post("/logout", response_model=None)
def logout(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    """End the web session."""
    if secrets.compare_digest(csrf, str(request.session.get("csrf", ""))):
        request.session.clear()
    return RedirectResponse("/login", status_code=303)
