"""Errors as RFC 9457 problem details (`application/problem+json`), naming the field."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Sequence
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
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        # A page's address with a value out of range (a browser, outside the API): a
        # page in words naming each value, not a JSON document.
        page = error_page(
            request,
            422,
            details=[
                f"{e['field'].split('.')[-1].replace('_', ' ')}: {e['message']}" for e in errors
            ],
        )
        if page is not None:
            return page
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
        if not is_api(request):
            return RedirectResponse("/login", status_code=303)
        challenge = {"WWW-Authenticate": "Bearer"}
        return problem(401, "Unauthorized", exc.detail, headers=challenge, request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            methods = allowed_methods(app, request.url.path)
            if methods:
                headers["Allow"] = ", ".join(methods)
        page = error_page(request, exc.status_code, headers)
        if page is not None:
            return page
        return problem(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail),
            headers=headers or None,
            request=request,
        )

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def _database(request: Request, exc: sa.exc.SQLAlchemyError) -> Response:
        if is_busy(exc):
            return busy(request)
        if isinstance(exc, sa.exc.DataError) or isinstance(
            getattr(exc, "orig", None), OverflowError
        ):
            return out_of_range(request, exc)
        return unexpected(request, exc)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        return out_of_range(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        answer = unexpected(request, exc)  # logged there
        return error_page(request, 500) or answer


ErrorPage = Callable[..., Response]


def error_page(
    request: Request,
    status: int,
    headers: dict[str, str] | None = None,
    details: list[str] | None = None,
) -> Response | None:
    """The error as a page of the web app (its layout, in words) for a browser asking
    for a page outside the API; None otherwise (a problem document answers). The page
    renderer is the app's `state.error_page` (`web.ui.errors`), so that this module
    needs no templates; no database work (this runs on the event loop)."""
    render: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if render is None or is_api(request):
        return None
    if "text/html" not in request.headers.get("accept", ""):
        return None
    return render(request, status, headers, details)


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the API documents for this path (for `Allow` on a 405): Starlette
    names only the first route's, and one path may have several (GET and PATCH).
    None for a path the OpenAPI document does not describe (the web pages)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "allowed_methods", None
    )
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            methods = sorted(m.upper() for m in operations if m.isalpha())
            table.append((re.compile(f"^{regex}$"), methods))
        app.state.allowed_methods = table
    for pattern, methods in table:
        if pattern.match(path):
            return methods
    return None


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names each refused field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
ANY_REQUEST = {
    "400": "The request could not be carried out as asked",
    "401": "No valid API token (or session)",
    "403": "The token's user may not do this",
    "404": "No such record in this clinic",
    "413": "The request body is larger than the server accepts",
    "414": "The address (path and query) is longer than the server accepts",
    "422": "Invalid input: `errors` names each refused field",
    "429": "Too many requests from this caller (see `Retry-After`)",
    "431": "The request's headers are larger than the server accepts",
    "503": "Busy: nothing was done; retry after `Retry-After` seconds",
}
WRITES = {
    "409": "The record cannot change that way (e.g. a signed note)",
    "412": "If-Match names an older version: reload and try again",
    "428": "If-Match is missing or is not a version",
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation's OpenAPI entry lists the problem documents it may answer with
    (content type `application/problem+json`), replacing FastAPI's generic 422."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ANY_REQUEST | (WRITES if method != "get" else {})
            for code, description in codes.items():
                entry = operation["responses"].get(code)
                if entry is None or code == "422":
                    operation["responses"][code] = {"description": description, "content": content}
                else:
                    entry.setdefault("content", {})[PROBLEM_JSON] = content[PROBLEM_JSON]
    return schema


def unexpected(request: Request, exc: BaseException) -> Response:
    """500: a bug. Logged with its traceback; the answer shows none of it."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "Internal Server Error",
        "Something went wrong on our side; nothing was saved. The error was logged.",
        request=request,
    )


def out_of_range(request: Request, exc: BaseException) -> Response:
    """422: a value the database cannot hold (a number beyond its integers, text it
    refuses). The input checks (`web.app.RequestLimits`, the commands' field rules)
    name the field first; this is the net under them, so such input is never a 500."""
    log.warning("value out of range on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        422,
        "Unprocessable Content",
        "a value is outside what the clinic's records can hold; nothing was saved",
        request=request,
    )


def invalid_field(request: Request, field: str, message: str) -> Response:
    """422 naming the field, as a problem document (API and the web app's JSON
    endpoints) or a short page (forms), for input refused before any route runs."""
    detail = f"{field}: {message}"
    if is_api(request):
        errors = [{"field": field, "message": message}]
        return problem(422, "Unprocessable Content", detail, errors=errors, request=request)
    return HTMLResponse(INVALID_PAGE.format(detail=html.escape(detail)), status_code=422)


def too_large(request: Request, limit: int, *, what: str = "request body") -> Response:
    """413 (body), 414 (address) or 431 (headers): the request is bigger than the
    server accepts."""
    status = {"headers": 431, "address": 414}.get(what, 413)
    noun = "the request's headers are" if what == "headers" else f"the {what} is"
    detail = f"{noun} larger than the {limit:,} bytes this server accepts"
    if is_api(request):
        return problem(status, _title(status), detail, request=request)
    return HTMLResponse(INVALID_PAGE.format(detail=html.escape(detail)), status_code=status)


def too_many(request: Request, retry_after: int) -> Response:
    """429 with `Retry-After`: this caller sent more requests than the rate limit."""
    return problem(
        429,
        "Too Many Requests",
        f"too many requests; try again in {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
        request=request,
    )


INVALID_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not accepted — Needlepoint</title>
<link rel="stylesheet" href="/static/needlepoint.css"></head>
<body><main class="page"><h1>This request was not accepted</h1>
<p>{detail}. <strong>Nothing was saved.</strong></p>
<p>Go back, correct it and submit again.</p>
</main></body></html>
"""


RETRY_AFTER_SECONDS = 2
JSON_PAGES = frozenset({"/notes/autosave"})  # the web app's own JSON endpoints
MACHINE_PREFIXES = ("/api/", "/fhir/")  # the JSON API and FHIR: read by programs


def is_api(request: Request) -> bool:
    """True where programs call (the API, FHIR, the web app's JSON endpoints): errors
    are problem documents there, never a page or a redirect to the sign-in page."""
    path = request.url.path
    return path.startswith(MACHINE_PREFIXES) or path in JSON_PAGES


BUSY_DETAIL = (
    "The clinic's database is busy with other users' work right now; nothing was saved. "
    "Try again in a moment."
)


def busy(request: Request) -> Response:
    """503 with `Retry-After`: a connection or another writer's lock was not free within
    its bounded wait (`adapters.db.engine.Limits`), or too many requests are queued.
    Pages get a page that keeps the user's place; the API a problem document."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if is_api(request):
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
