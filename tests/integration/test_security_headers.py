"""Every route of the app — API, pages, static files, unknown paths — answers with the
security headers (CSP, frame denial, no-sniff), whatever the status; generated from the
app's route table so new routes are covered without editing this file."""

from __future__ import annotations

import inspect
import re
import uuid

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount

from needlepoint.web import api, pages
from needlepoint.web.app import SECURITY_HEADERS, create_app


def _routes(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """(prefix, route) of every route: the app's own, each API router's, the pages'."""
    found: list[tuple[str, BaseRoute]] = [("", r) for r in app.router.routes if hasattr(r, "path")]
    found += [(api.PREFIX, r) for router in api.routers for r in router.routes]
    found += [("", r) for r in pages.router.routes]
    return found


def _requests(app: FastAPI) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("GET", "/no/such/page"), ("GET", "/static/needlepoint.css")]
    for prefix, route in _routes(app):
        if isinstance(route, Mount):
            continue
        path = prefix + re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)  # type: ignore[attr-defined]
        methods = getattr(route, "methods", None) or {"GET"}
        out.extend((m, path) for m in sorted(methods) if m != "HEAD")
    return out


def test_every_route_sends_the_security_headers(sqlite_engine: sa.Engine) -> None:
    app = create_app(sqlite_engine, secret_key="h" * 40)
    client = TestClient(app, raise_server_exceptions=False)
    checked = 0
    for method, path in _requests(app):
        r = client.request(method, path, follow_redirects=False)
        assert r.status_code < 500, (method, path, r.text)
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (method, path, name)
        assert "Traceback" not in r.text
        checked += 1
    assert checked >= 40


def test_every_form_post_takes_a_csrf_token() -> None:
    """A page that accepts a POST must check a CSRF token (the synchroniser token of the
    session, or the sign-in form's double-submit cookie): a new form without one fails."""
    posts = [r for r in pages.router.routes if "POST" in (getattr(r, "methods", None) or ())]
    assert posts
    for route in posts:
        params = inspect.signature(route.endpoint).parameters  # type: ignore[attr-defined]
        assert "csrf" in params, f"POST {route.path} takes no csrf field"  # type: ignore[attr-defined]
    # The web app's forms are all checked by `ui.forms.checked_form`, directly (after
    # `submitted_form`) or through `ui.forms.posted_form`.
    from needlepoint.web import ui

    app_posts = [
        r
        for router in ui.routers
        for r in router.routes
        if "POST" in (getattr(r, "methods", None) or ())
    ]
    assert app_posts
    for route in app_posts:
        if route.path.startswith("/q/{token}"):  # type: ignore[attr-defined]
            # The patient's questionnaire pages: no session to forge a request in. The
            # address's link token is the patient's only credential, unknown to another
            # site, so a cross-site form cannot name it (ui.patient_questionnaires).
            continue
        source = inspect.getsource(route.endpoint)  # type: ignore[attr-defined]
        if "submitted_form(request)" in source:  # checked in its worker thread
            name = source.split("in_thread(")[1].split(",")[0].split(")")[0].strip()
            # a function of the module, or a closure whose body is in the endpoint's source
            worker = getattr(inspect.getmodule(route.endpoint), name, None)  # type: ignore[attr-defined]
            if worker is not None:
                source = inspect.getsource(worker)
            reads_form = "checked_form(request" in source
        else:
            reads_form = "posted_form(request" in source
        assert reads_form, f"POST {route.path} does not check its form's CSRF token"  # type: ignore[attr-defined]
