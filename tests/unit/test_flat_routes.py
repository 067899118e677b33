"""The app adds its routers' routes flat (`web.app._include_flat`, for routing speed):
each route must keep everything it was declared with, exactly as `include_router`
would have kept it. The OpenAPI document shows every part of a route that matters to
a caller, so the two must agree."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from needlepoint.bootstrap import open_database
from needlepoint.web import api, fhir, pages, ui
from needlepoint.web.app import create_app


def test_routes_added_flat_are_the_routes_include_router_gives() -> None:
    flat = create_app(open_database("sqlite://", migrate=False), secret_key="x" * 32)
    included = FastAPI()
    for router in api.routers:
        included.include_router(router, prefix=api.PREFIX)
    included.include_router(pages.router)
    included.include_router(fhir.router)
    for router in ui.routers:
        included.include_router(router)

    def document(app: FastAPI) -> dict[str, object]:
        return get_openapi(title="t", version="1", routes=app.routes)

    assert document(flat) == document(included)
    assert document(flat)["paths"], "the document lists the API"

    def signatures(app: FastAPI) -> set[tuple[str, str, frozenset[str]]]:
        return {
            (path, r.name, frozenset(r.methods or ()))
            for r in app.routes
            for path in [getattr(r, "path", "")]
            if getattr(r, "methods", None)
        }

    # every route (pages too, which the document leaves out) is there, once
    docs = {"openapi", "swagger_ui_html", "swagger_ui_redirect", "api_docs"}  # not ours
    names = [r.name for r in flat.routes if getattr(r, "methods", None) and r.name not in docs]
    expected = sum(len(r.routes) for r in [*api.routers, pages.router, fhir.router, *ui.routers])
    assert len(names) == expected
    assert {s for s in signatures(flat) if s[0] != "/api/docs"} >= {
        (api.PREFIX + r.path, r.name, frozenset(r.methods))
        for r in api.routers[0].routes
        if hasattr(r, "methods")
    }
