"""Errors as RFC 9457 problem details (`application/problem+json`), naming the field."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from needlepoint.domain.errors import (
    DomainError,
    InvalidInput,
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

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
            request=request,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Internal Server Error",
            "Something went wrong on our side; nothing was saved. The error was logged.",
            request=request,
        )


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
