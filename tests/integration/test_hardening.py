"""What the second security review's fuzzer found, each as a class of input, on both
databases: every bad input is a 4xx naming the field and writes nothing; every answer,
errors included, carries the security headers, the request id and `no-store`; request
size and rate limits; CSV exports cannot carry a spreadsheet formula; uvicorn believes
`X-Forwarded-For` only from configured proxies."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.adapters.db import tables as t
from needlepoint.web.app import create_app
from tests.conftest import Api
from tests.integration.test_api import PATIENT, new_episode, new_patient

SECURITY = ("x-content-type-options", "x-frame-options", "content-security-policy")


def rows(api: Api) -> dict[str, int]:
    """Clinical rows and audit events of the test clinic (to show nothing was written)."""
    clinic_id = api.clinic.owner.clinic_id
    with api.clinic.engine.connect() as conn:
        return {
            table.name: conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.clinic_id == clinic_id)
            ).scalar_one()
            for table in (t.patients, t.sessions, t.measurements, t.audit_events)
        }


def assert_refused(r: Any, status: int = 422, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in r.text
    for name in (*SECURITY, "x-request-id"):
        assert name in r.headers, name
    assert r.headers["cache-control"] == "no-store"
    if field is not None:
        body = r.json()
        fields = {e["field"] for e in body.get("errors", [])}
        assert field in fields or body["detail"].startswith(field), body


# --- numbers: non-finite, beyond 64 bits, as JSON and as text ----------------------------

NOT_NUMBERS = ["1e309", "-1e309", "1E400", "Infinity", "-Infinity", "NaN", str(10**30), "9" * 400]


@pytest.mark.parametrize("number", NOT_NUMBERS)
def test_a_number_no_database_can_hold_is_refused_naming_the_field(api: Api, number: str) -> None:
    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    before = rows(api)
    # Raw JSON text: json.dumps would refuse to write most of these.
    ids = f'"patient_id": "{patient["id"]}", "episode_id": "{episode["id"]}"'
    body = (
        f'{{{ids}, "instrument_id": "nprs", "answers": {{"item1": {number}}}, '
        '"taken_at": "2026-03-01T09:00:00Z"}'
    )
    r = api.client.post(
        "/api/v1/measurements",
        content=body,
        headers=api.headers(**{"Content-Type": "application/json"}),
    )
    assert_refused(r, 422, "answers.item1")
    r = api.client.post(
        "/api/v1/medications",
        content=(
            f'{{{ids}, "drug": "ibuprofen", "drug_class": "nsaid", "dose_mg": {number}, '
            '"days_per_week": 3, "recorded_on": "2026-03-01"}'
        ),
        headers=api.headers(**{"Content-Type": "application/json"}),
    )
    assert_refused(r, 422, "dose_mg")
    assert rows(api) == before


@pytest.mark.parametrize(
    "query",
    [
        "offset=" + str(2**63),
        "offset=" + str(10**40),
        "offset=" + "9" * 5000,
        "offset=-1",
        "limit=" + str(2**64),
        "offset=1e309",
        "offset=NaN",
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/patients", "/api/v1/audit"])
def test_huge_and_impossible_paging_is_refused(api: Api, path: str, query: str) -> None:
    r = api.client.get(f"{path}?{query}", headers=api.headers("owner"))
    assert_refused(r, 422, query.split("=")[0])


def test_the_largest_offset_allowed_is_answered_with_an_empty_page(api: Api) -> None:
    from needlepoint.web.context import MAX_OFFSET

    r = api.client.get(f"/api/v1/patients?offset={MAX_OFFSET}", headers=api.headers())
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


# --- times at the edge of what can be represented -----------------------------------------

EDGE_TIMES = [
    "9999-12-31T23:59:59-05:00",  # beyond year 9999 once in UTC
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00+05:00",  # before year 1 once in UTC
    "0001-01-01T00:00:00-12:00",
    "9999-12-31T23:59:59Z",  # representable, but not shown in every time zone
    "1066-10-14T09:00:00Z",
]


@pytest.mark.parametrize("moment", EDGE_TIMES)
def test_a_time_at_the_edge_of_the_calendar_is_refused_naming_the_field(
    api: Api, moment: str
) -> None:
    from tests.factories import session_body

    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    before = rows(api)
    r = api.client.post(
        "/api/v1/sessions",
        json={**session_body(episode["id"]), "started_at": moment},
        headers=api.headers(),
    )
    assert_refused(r, 422, "started_at")
    for name in ("since", "until"):
        r = api.client.get(f"/api/v1/audit?{name}={moment}", headers=api.headers("owner"))
        assert_refused(r, 422, name)
    assert rows(api) == before


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "3000-01-01"])
def test_a_date_outside_the_clinical_years_is_refused(api: Api, day: str) -> None:
    r = api.client.post(
        "/api/v1/patients",
        json={**PATIENT, "mrn": "EDGE-1", "birth_date": day},
        headers=api.headers(),
    )
    assert_refused(r, 422, "birth_date")


@pytest.mark.parametrize("value", ["0", "1700000000", "-5", "1e9"])
def test_a_number_is_not_a_time(api: Api, value: str) -> None:
    r = api.client.get(f"/api/v1/audit?since={value}", headers=api.headers("owner"))
    assert_refused(r, 422, "since")


# --- If-Match of any size and shape ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["9" * 8_000, '"' + "1" * 30 + '"', "9" * 19, "", "   ", "abc", 'W/"x"', "\t", "1 2"],
)
def test_if_match_that_is_not_a_version_is_428_and_changes_nothing(api: Api, value: str) -> None:
    patient = new_patient(api)
    r = api.client.patch(
        f"/api/v1/patients/{patient['id']}",
        json={"given_name": "Changed"},
        headers=api.headers(**{"If-Match": value}),
    )
    assert_refused(r, 428)
    assert len(r.text) < 2_000  # a refused header is not echoed back whole
    again = api.client.get(f"/api/v1/patients/{patient['id']}", headers=api.headers())
    assert again.json()["given_name"] == patient["given_name"]


def test_a_100_kb_if_match_is_refused_as_too_large_a_header(api: Api) -> None:
    patient = new_patient(api)
    r = api.client.patch(
        f"/api/v1/patients/{patient['id']}",
        json={"given_name": "Changed"},
        headers=api.headers(**{"If-Match": "9" * 100_000}),
    )
    assert_refused(r, 431)
    assert len(r.text) < 2_000


def test_a_well_formed_old_version_is_still_412(api: Api) -> None:
    patient = new_patient(api)
    url = f"/api/v1/patients/{patient['id']}"
    assert (
        api.client.patch(
            url, json={"given_name": "A"}, headers=api.headers(**{"If-Match": '"1"'})
        ).status_code
        == 200
    )
    assert_refused(
        api.client.patch(
            url, json={"given_name": "B"}, headers=api.headers(**{"If-Match": 'W/"1"'})
        ),
        412,
    )


# --- NUL characters, anywhere -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PATIENT, "given_name": "Gr\x00ace"}, "given_name"),
        ({**PATIENT, "family_name": "\x00"}, "family_name"),
        ({**PATIENT, "mrn": "N-\x00-1"}, "mrn"),
        ({**PATIENT, "phone": "555\x00"}, "phone"),
        ({**PATIENT, "given\x00name": "x"}, "body"),
    ],
)
def test_a_nul_character_in_json_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    before = rows(api)
    r = api.client.post("/api/v1/patients", json=body, headers=api.headers())
    assert_refused(r, 422, field)
    assert rows(api) == before


@pytest.mark.parametrize(
    ("field", "escape"), [("given_name", "\\ud800"), ("family_name", "a\\udfffb")]
)
def test_a_lone_surrogate_in_json_is_refused_naming_the_field(
    api: Api, field: str, escape: str
) -> None:
    """Valid JSON, but not text any database can store (UTF-8 cannot encode it)."""
    before = rows(api)
    body = json.dumps({**PATIENT, field: "PLACEHOLDER"}).replace("PLACEHOLDER", escape)
    as_json = api.headers(**{"Content-Type": "application/json"})
    assert_refused(api.client.post("/api/v1/patients", content=body, headers=as_json), 422, field)
    assert rows(api) == before


def test_a_nul_character_deep_in_a_note_is_refused_naming_its_path(api: Api) -> None:
    from tests.factories import session_body, site

    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    body = session_body(episode["id"])
    body["sites"] = [site(), site("levator_scapulae", notes="ok\x00")]
    r = api.client.post("/api/v1/sessions", json=body, headers=api.headers())
    assert_refused(r, 422, "sites.1.notes")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/patients?q=%00",
        "/api/v1/patients?q=Ada%00Lovelace",
        "/api/v1/muscles/%00",
        "/api/v1/consent-templates/dry%00needling/1",
        "/patients?q=%00",
    ],
)
def test_a_nul_character_in_the_path_or_query_is_refused(api: Api, url: str) -> None:
    r = api.client.get(url, headers=api.headers())
    assert r.status_code == 422, r.text
    for name in (*SECURITY, "x-request-id"):
        assert name in r.headers


def test_a_nul_character_in_a_form_is_refused(api: Api) -> None:
    r = api.client.post(
        "/login",
        content=b"email=a%00b%40example.org&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422, r.text
    assert "email" in r.text
    assert r.headers["cache-control"] == "no-store"


# --- size and shape of the request --------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_the_route_reads_it(api: Api) -> None:
    before = rows(api)
    big = {**PATIENT, "mrn": "BIG-1", "given_name": "x" * 1_100_000}
    assert_refused(api.client.post("/api/v1/patients", json=big, headers=api.headers()), 413)

    def chunks() -> Any:  # no Content-Length: counted while read
        for _ in range(40):
            yield b"x" * 32_768

    r = api.client.post(
        "/api/v1/patients",
        content=chunks(),
        headers=api.headers(**{"Content-Type": "application/json"}),
    )
    assert_refused(r, 413)
    assert rows(api) == before


def test_an_address_over_the_limit_is_414(api: Api) -> None:
    assert_refused(api.client.get("/api/v1/patients?q=" + "a" * 10_000, headers=api.headers()), 414)
    assert api.client.get("/patients?q=" + "a" * 10_000).status_code == 414


def test_headers_over_the_limit_are_431(api: Api) -> None:
    r = api.client.get("/api/v1/patients", headers=api.headers(**{"X-Padding": "p" * 20_000}))
    assert_refused(r, 431)


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_json_nested_too_deep_is_refused(api: Api, depth: int) -> None:
    body = '{"mrn": ' + "[" * depth + "]" * depth + "}"
    r = api.client.post(
        "/api/v1/patients",
        content=body,
        headers=api.headers(**{"Content-Type": "application/json"}),
    )
    assert_refused(r, 422)


# --- every answer: request id, security headers, no-store ---------------------------------


def test_an_unexpected_error_carries_the_security_headers_and_request_id(
    api: Api, monkeypatch: Any
) -> None:
    from needlepoint.queries import patients as queries

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(queries, "search_patients", boom)
    r = TestClient(api.client.app, raise_server_exceptions=False).get(
        "/api/v1/patients", headers=api.headers()
    )
    assert_refused(r, 500)
    assert "secret internals" not in r.text
    assert len(r.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/api/v1/patients/00000000-0000-0000-0000-000000000000", 404),
        ("GET", "/api/v1/no-such-thing", 404),
        ("DELETE", "/api/v1/patients", 405),
        ("GET", "/api/v1/patients?limit=0", 422),
        ("POST", "/api/v1/patients", 422),
    ],
)
def test_every_error_carries_the_security_headers(
    api: Api, method: str, url: str, status: int
) -> None:
    assert_refused(api.client.request(method, url, headers=api.headers()), status)
    anonymous = api.client.request(method, url)  # no token: refused, with the same headers
    assert_refused(anonymous, anonymous.status_code)
    assert 400 <= anonymous.status_code < 500


def test_a_405_names_every_method_of_the_path(api: Api) -> None:
    r = api.client.delete("/api/v1/clinic", headers=api.headers("owner"))
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "PATCH"}


def test_health_information_is_never_stored_by_a_cache(api: Api) -> None:
    patient = new_patient(api)
    for url in (f"/api/v1/patients/{patient['id']}", f"/api/v1/patients/{patient['id']}/timeline"):
        r = api.client.get(url, headers=api.headers())
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
    assert api.client.get("/login").headers["cache-control"] == "no-store"
    # Static assets hold no health information and may be cached.
    assert "no-store" not in api.client.get("/static/needlepoint.css").headers.get(
        "cache-control", ""
    )


def test_the_openapi_document_lists_the_problem_answers(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").json()
    patch = doc["paths"]["/api/v1/patients/{patient_id}"]["patch"]["responses"]
    for code in ("401", "404", "412", "413", "422", "428", "429"):
        assert "application/problem+json" in patch[code]["content"], code
    assert "HTTPValidationError" not in doc["components"]["schemas"]


# --- rate limit ---------------------------------------------------------------------------


def test_the_api_rate_limit_answers_429_per_caller(api: Api) -> None:
    app = create_app(
        api.clinic.engine, secret_key="rate-" + "x" * 40, rate_limit=0.01, rate_burst=3
    )
    client = TestClient(app)
    seen = [client.get("/api/v1/patients", headers=api.headers()).status_code for _ in range(4)]
    assert seen == [200, 200, 200, 429]
    r = client.get("/api/v1/patients", headers=api.headers())
    assert_refused(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    # Another caller (token) has its own allowance; the address has twice the burst.
    assert client.get("/api/v1/patients", headers=api.headers("owner")).status_code == 200
    # Pages are not API: not counted.
    assert client.get("/login").status_code == 200


def test_without_a_token_the_address_is_limited(api: Api) -> None:
    app = create_app(
        api.clinic.engine, secret_key="rate-" + "x" * 40, rate_limit=0.01, rate_burst=2
    )
    client = TestClient(app)
    seen = {client.get("/api/v1/patients").status_code for _ in range(6)}
    assert seen == {401, 429}
