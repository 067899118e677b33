"""The ASGI application: API, pages, error handling, request ids, security headers."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from needlepoint import __version__
from needlepoint.adapters.db.engine import Limits
from needlepoint.domain import knowledge
from needlepoint.web import api, fhir, pages, problems, ui
from needlepoint.web.deferred_writes import DeferredWrites
from needlepoint.web.limits import (
    PATIENT_LINK_BURST,
    PATIENT_LINK_RATE,
    RateLimit,
    RequestLimits,
)
from needlepoint.web.rate_sharing import RateSharing

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


NOT_STORED = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class RequestIdAndSecurityHeaders:
    """Give each request an id (audit grouping, `X-Request-ID`) and every response the
    security headers, errors included: this is the outermost layer of the app, so an
    unexpected exception is answered here (a 500 problem document with the same
    headers) rather than by Starlette's bare error page. Every answer except the static
    assets says `Cache-Control: no-store` (health information must not stay in a
    browser's or a proxy's cache). Plain ASGI: no extra task or thread per request."""

    def __init__(self, app: ASGIApp, *, https_only: bool = False) -> None:
        self.app = app
        # Behind HTTPS (secure cookies on), browsers must never fall back to plain HTTP.
        self.extra = {"Strict-Transport-Security": "max-age=31536000"} if https_only else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = os.urandom(16).hex()  # a uuid4's randomness without building a UUID
        scope.setdefault("state", {})["request_id"] = rid
        path = scope.get("path", "")
        headers_to_add = SECURITY_HEADERS | self.extra
        if not path.startswith("/static/"):
            headers_to_add = headers_to_add | NOT_STORED
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                for name, value in headers_to_add.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if started:  # too late for an answer: the server closes the connection
                raise
            response = problems.unexpected(Request(scope), exc)
            await response(scope, receive, send_with_headers)


class AdmissionLimit:
    """Answer 503 with `Retry-After` at once when more than `limit` requests are already
    in the server (running or queued for a worker thread), instead of letting a queue
    grow until every caller times out. Plain ASGI, on the event loop, no database."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await problems.busy(Request(scope))(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


# What `APIRouter.add_api_route` takes that a route keeps (besides its path and endpoint).
_ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name in inspect.signature(APIRoute.__init__).parameters
    and name not in ("self", "path", "endpoint", "dependency_overrides_provider")
)


def _include_flat(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Add a router's routes to the app's own router, each with everything it was
    declared with (tags, dependencies, responses, …), instead of `include_router`.
    FastAPI 0.16x keeps an included router behind a wrapper and matches a request
    through every wrapper, twice: with two dozen routers that took about 0.4 ms of
    each request (`bench/clinic_day.py` profile). Flat, a request is matched once
    against a plain list, as with routes declared on the app."""
    for route in router.routes:
        if not isinstance(route, APIRoute):  # a plain Starlette route or mount
            if prefix:
                raise TypeError(f"{route!r}: only API routes take a prefix here")
            app.router.routes.append(route)
            continue
        options = {name: getattr(route, name) for name in _ROUTE_OPTIONS}
        app.router.add_api_route(prefix + route.path, route.endpoint, **options)


def create_app(
    engine: sa.Engine,
    *,
    secret_key: str,
    secure_cookies: bool = False,
    threads: int | None = None,
    max_in_flight: int = 256,
    max_body_bytes: int = 1_048_576,
    rate_limit: float | None = 20.0,
    rate_burst: int = 200,
    processes: int = 1,
    demo: bool = False,
    public_url: str | None = None,
) -> FastAPI:
    """The web application over an already migrated database.

    `threads`: how many requests do database work at once (the worker thread pool). It
    is kept below the engine's connection limit, one connection being left for the
    background writer (`web.deferred_writes`): a request thread then never waits for a
    pooled connection. Requests beyond it queue on the event loop, up to `max_in_flight`
    in all; past that the server answers 503 with `Retry-After`.

    `demo`: a demonstration server; every page's footer says its data are synthetic.

    `public_url`: the address patients reach the server at; every link e-mailed to a
    patient starts with it (`web.context.patient_links_base`).

    `max_body_bytes`: the largest request body (413 beyond). `rate_limit`: API requests a
    second per caller, in bursts of `rate_burst` (429 beyond; `None`: no limit). See
    `web/limits.py`. `processes`: how many serving processes share the database; more
    than one shares the rate limit's use through it (`web/rate_sharing.py`)."""
    workers = threads or max(1, Limits().connections - 1)
    deferred = DeferredWrites(engine)
    sharing = RateSharing(engine) if processes > 1 and rate_limit is not None else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = workers
        await anyio.to_thread.run_sync(knowledge.load_all)
        deferred.start()
        if sharing is not None:
            sharing.start()
        try:
            yield
        finally:
            if sharing is not None:
                await anyio.to_thread.run_sync(sharing.stop)
            await anyio.to_thread.run_sync(deferred.stop)

    app = FastAPI(
        lifespan=lifespan,
        title="Needlepoint",
        version=__version__,
        summary="Dry needling: appropriateness, documentation and measured benefit.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served below from the pinned package, not from a CDN
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.deferred = deferred
    # Web sessions live in the database (`web_sessions`); the cookie holds only their
    # random id. The key signs the sign-in form's CSRF cookie.
    app.state.secret_key = secret_key
    app.state.secure_cookies = secure_cookies
    app.state.demo = demo
    app.state.public_url = public_url
    app.state.error_page = ui.errors.error_page  # web.problems renders errors with it
    problems.install(app)
    openapi = app.openapi

    def openapi_with_problems() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_errors(openapi())
        return app.openapi_schema

    app.openapi = openapi_with_problems  # type: ignore[method-assign]

    # Outermost last: ids and headers on every answer (errors too), then size and
    # input checks, the rate limit, and the admission limit next to the routes.
    app.add_middleware(AdmissionLimit, limit=max_in_flight)
    if rate_limit is not None:
        app.add_middleware(RateLimit, per_caller=rate_limit, burst=rate_burst, share=sharing)
    app.add_middleware(
        RateLimit, per_caller=PATIENT_LINK_RATE, burst=PATIENT_LINK_BURST, prefix="/q/"
    )
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes)
    app.add_middleware(RequestIdAndSecurityHeaders, https_only=secure_cookies)
    for router in api.routers:
        _include_flat(app, router, prefix=api.PREFIX)
    _include_flat(app, pages.router)
    _include_flat(app, fhir.router)  # FHIR R4 under /fhir/R4 (issue 17)
    for router in ui.routers:
        _include_flat(app, router)
    _api_docs(app)
    app.mount("/static", StaticFiles(packages=[("needlepoint.web", "static")]), name="static")
    return app


# Swagger UI's own files, from the pinned `fastapi-offline` package (which ships them),
# so that the API documentation works without internet. The page has no inline script:
# `/static/api-docs.js` starts Swagger UI, so the same Content-Security-Policy as every
# other page applies.
API_DOCS_ASSETS = "/static/api-docs"
API_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Needlepoint API</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<script src="{assets}/swagger-ui-bundle.js" defer></script>
<script src="/static/api-docs.js" defer></script>
</head>
<body>
<main id="swagger-ui" data-openapi="{openapi}"><h1>Needlepoint API</h1>
<p>Loading the API description&hellip;</p></main>
</body>
</html>
"""


def _api_docs(app: FastAPI) -> None:
    page = API_DOCS_PAGE.format(assets=API_DOCS_ASSETS, openapi=app.openapi_url)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page)

    app.mount(
        API_DOCS_ASSETS,
        StaticFiles(packages=[("fastapi_offline", "static")]),
        name="api-docs-assets",
    )
