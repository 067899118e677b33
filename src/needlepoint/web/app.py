"""The ASGI application: API, pages, error handling, request ids, security headers."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from needlepoint import __version__
from needlepoint.web import api, pages, problems
from needlepoint.web.ui import analytics as ui_analytics

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


class RequestIdAndSecurityHeaders:
    """Give each request an id (audit grouping, `X-Request-ID`) and every response the
    security headers. Plain ASGI: no extra task or thread per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        docs = scope.get("path") == "/api/docs"  # Swagger UI loads its own scripts

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers and not (docs and name == "Content-Security-Policy"):
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(engine: sa.Engine, *, secret_key: str, secure_cookies: bool = False) -> FastAPI:
    """The web application over an already migrated database."""
    app = FastAPI(
        title="Needlepoint",
        version=__version__,
        summary="Dry needling: appropriateness, documentation and measured benefit.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    problems.install(app)

    app.add_middleware(RequestIdAndSecurityHeaders)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="needlepoint_session",
        max_age=8 * 3600,
        same_site="lax",
        https_only=secure_cookies,
    )
    for router in api.routers:  # flat, not nested: routing cost grows with nesting
        app.include_router(router, prefix=api.PREFIX)
    app.include_router(pages.router)
    app.include_router(ui_analytics.router)
    app.mount("/static", StaticFiles(packages=[("needlepoint.web", "static")]), name="static")
    return app
