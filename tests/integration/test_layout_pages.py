"""The app's frame, on SQLite and PostgreSQL: error pages in the app's layout for a
browser (problem documents for the API), the favicon, the demo-only footer notice, and
form attributes written escaped."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.web.app import create_app
from tests.conftest import make_clinic
from tests.integration.test_web_app import sign_in

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
DEMO_NOTICE = "Synthetic demonstration data only"


def test_an_unknown_page_is_a_styled_404_in_the_apps_layout(engine: sa.Engine) -> None:
    client = TestClient(create_app(engine, secret_key="e" * 40))
    r = client.get("/no/such/page", headers=BROWSER)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in r.text
    assert '<link rel="stylesheet" href="/static/needlepoint.css">' in r.text
    assert 'class="foot"' in r.text
    assert re.search(r"reference [0-9a-f]{32}", r.text)
    assert r.headers["content-security-policy"]  # the same security headers as any page
    assert r.headers["cache-control"] == "no-store"
    # The API, and callers that do not ask for a page, keep their problem documents.
    api = client.get("/api/v1/no-such-thing", headers=BROWSER)
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")
    plain = client.get("/no/such/page")
    assert plain.headers["content-type"].startswith("application/problem+json")


def test_a_wrong_method_on_a_page_is_a_styled_405(engine: sa.Engine) -> None:
    client = TestClient(create_app(engine, secret_key="e" * 40))
    r = client.delete("/login", headers=BROWSER)
    assert r.status_code == 405
    assert "Not available this way" in r.text


def test_the_favicon_is_an_svg_served_with_its_type(engine: sa.Engine) -> None:
    client = TestClient(create_app(engine, secret_key="e" * 40))
    login = client.get("/login").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    legacy = client.get("/favicon.ico", follow_redirects=False)
    assert legacy.status_code == 308
    assert legacy.headers["location"] == "/static/favicon.svg"


def test_the_synthetic_data_notice_appears_only_on_a_demo_server(engine: sa.Engine) -> None:
    clinic = TestClient(create_app(engine, secret_key="e" * 40))
    assert DEMO_NOTICE not in clinic.get("/login").text
    assert DEMO_NOTICE not in clinic.get("/missing", headers=BROWSER).text
    demo = TestClient(create_app(engine, secret_key="e" * 40, demo=True))
    assert DEMO_NOTICE in demo.get("/login").text
    assert DEMO_NOTICE in demo.get("/missing", headers=BROWSER).text


def test_form_attributes_are_written_escaped(engine: sa.Engine) -> None:
    browser = sign_in(engine, make_clinic(engine))
    page = browser.get("/patients/new").text
    given = re.search(r'<input id="f-given_name"[^>]*>', page)
    assert given is not None
    assert 'autocomplete="off"' in given[0]
    assert "&#34;" not in given[0]
    assert "&quot;" not in given[0]


def test_a_server_error_on_a_page_is_a_styled_500_that_shows_nothing_inside(
    engine: sa.Engine,
) -> None:
    app = create_app(engine, secret_key="e" * 40)

    def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/broken-page", broken, include_in_schema=False)
    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/broken-page", headers=BROWSER)
    assert r.status_code == 500
    assert "Something went wrong" in r.text
    assert "secret internals" not in r.text
    assert r.headers["content-security-policy"]


def test_a_value_out_of_range_in_a_pages_address_is_a_page_naming_it(engine: sa.Engine) -> None:
    """A page's query value the route refuses (the prognosis form's age, a negative
    NPRS) is answered with a page in words naming each value, not a JSON document; a
    caller that does not ask for a page keeps the problem document."""
    browser = sign_in(engine, make_clinic(engine))
    r = browser.get(
        "/analytics/figures", params={"age": "500", "baseline_nprs": "-3"}, headers=BROWSER
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Check what was entered</h1>" in r.text
    assert re.search(r"<li>age: Input should be less than or equal to 120", r.text)
    assert re.search(r"<li>baseline nprs: Input should be greater than or equal to 0", r.text)
    plain = browser.get("/analytics/figures", params={"age": "500"})  # not a browser
    assert plain.status_code == 422
    assert plain.headers["content-type"].startswith("application/problem+json")
