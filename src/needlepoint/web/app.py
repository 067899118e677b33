"""The ASGI application: API, pages, error handling, request ids, security headers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from needlepoint import __version__
from needlepoint.web import pages, problems
from needlepoint.web.api import router as api_router

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


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

    @app.middleware("http")
    async def _request_id_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        for name, value in SECURITY_HEADERS.items():
            if not (name == "Content-Security-Policy" and request.url.path == "/api/docs"):
                response.headers.setdefault(name, value)
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="needlepoint_session",
        max_age=8 * 3600,
        same_site="lax",
        https_only=secure_cookies,
    )
    app.include_router(api_router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("needlepoint.web", "static")]), name="static")
    return app
