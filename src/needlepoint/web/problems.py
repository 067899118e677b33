"""Errors as RFC 9457 problem details (`application/problem+json`), naming the field."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from needlepoint.adapters.db.engine import is_busy
from needlepoint.domain.errors import (
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RecordLocked,
    SafetyRefusal,
    StaleVersion,
    VersionRequired,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_OF: dict[type[DomainError], tuple[int, str]] = {
    InvalidInput: (422, "Unprocessable Content"),
    SafetyRefusal: (422, "Unprocessable Content"),
    NotFound: (404, "Not Found"),
    PermissionDenied: (403, "Forbidden"),
    RecordLocked: (409, "Conflict"),
    StaleVersion: (412, "Precondition Failed"),
    VersionRequired: (428, "Precondition Required"),
}


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "sites", 0, "depth_mm")` → `sites.0.depth_mm` (the field as a user knows it)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(
            422,
            "Unprocessable Content",
            f"{first['field']}: {first['message']}",
            errors=errors,
            request=request,
        )

    @app.exception_handler(ValidationError)
    async def _invalid_command(request: Request, exc: ValidationError) -> JSONResponse:
        # A command built inside a route from a valid body and path values can still
        # break a rule of its own: that is the caller's input, not a server error.
        errors = [
            {"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(
            422,
            "Unprocessable Content",
            f"{first['field']}: {first['message']}",
            errors=errors,
            request=request,
        )

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        status, title = STATUS_OF.get(type(exc), (400, "Bad Request"))
        errors = exc.errors or ([{"field": exc.field, "message": exc.detail}] if exc.field else [])
        return problem(status, title, exc.detail, errors=errors, request=request)

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(request: Request, exc: NotAuthenticated) -> Response:
        if not request.url.path.startswith("/api/"):
            return RedirectResponse("/login", status_code=303)
        challenge = {"WWW-Authenticate": "Bearer"}
        return problem(401, "Unauthorized", exc.detail, headers=challenge, request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
            request=request,
        )

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def _database(request: Request, exc: sa.exc.SQLAlchemyError) -> Response:
        if is_busy(exc):
            return busy(request)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Internal Server Error",
            "Something went wrong on our side; nothing was saved. The error was logged.",
            request=request,
        )


RETRY_AFTER_SECONDS = 2
JSON_PAGES = frozenset({"/notes/autosave"})  # the web app's own JSON endpoints
BUSY_DETAIL = (
    "The clinic's database is busy with other users' work right now; nothing was saved. "
    "Try again in a moment."
)


def busy(request: Request) -> Response:
    """503 with `Retry-After`: a connection or another writer's lock was not free within
    its bounded wait (`adapters.db.engine.Limits`), or too many requests are queued.
    Pages get a page that keeps the user's place; the API a problem document."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.url.path.startswith("/api/") or request.url.path in JSON_PAGES:
        return problem(503, "Service Unavailable", BUSY_DETAIL, headers=headers, request=request)
    body = BUSY_PAGE.format(seconds=RETRY_AFTER_SECONDS)
    return HTMLResponse(body, status_code=503, headers=headers)


BUSY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Busy — Needlepoint</title>
<link rel="stylesheet" href="/static/needlepoint.css"></head>
<body><main class="page"><h1>The clinic's records are busy</h1>
<p>Other users were saving at the same moment and your request waited too long.
<strong>Nothing was saved.</strong></p>
<p>Go back (your form is still filled in) and submit it again in {seconds} seconds.</p>
</main></body></html>
"""


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
