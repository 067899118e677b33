"""The API documentation works without internet: Swagger UI's files come from the pinned
package, served by the app itself, under the same security headers as every page."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.web.app import SECURITY_HEADERS, create_app


def test_api_docs_reference_no_external_url_and_their_assets_load(
    sqlite_engine: sa.Engine,
) -> None:
    client = TestClient(create_app(sqlite_engine, secret_key="d" * 40))
    page = client.get("/api/docs")
    assert page.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value, name  # the CSP too: no inline script
    assert "<script>" not in page.text  # every script is a file of this server
    assert not re.search(r"(https?:)?//", page.text), "an external URL in the docs page"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 100, asset
    assert "SwaggerUIBundle" in client.get("/static/api-docs.js").text
    spec = re.search(r'data-openapi="([^"]+)"', page.text)
    assert spec is not None
    assert client.get(spec.group(1)).json()["info"]["title"] == "Needlepoint"
