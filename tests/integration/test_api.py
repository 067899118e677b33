"""The JSON API in-process: attribution, problem details naming the field, ETag/If-Match,
locked notes, tenant isolation, search and pagination, timeline, OpenAPI."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from tests.conftest import Api, make_api, make_clinic
from tests.factories import session_body

PATIENT = {
    "mrn": "API-0001",
    "given_name": "Grace",
    "family_name": "Hopper",
    "birth_date": "1966-12-09",
    "sex": "female",
}


def new_patient(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {**PATIENT, "mrn": f"API-{len(api.tokens)}-{id(overrides)}", **overrides}
    r = api.client.post("/api/v1/patients", json=body, headers=api.headers())
    assert r.status_code == 201, r.text
    return r.json()


def new_episode(api: Api, patient_id: str) -> dict[str, Any]:
    r = api.client.post(
        "/api/v1/episodes",
        json={
            "patient_id": patient_id,
            "condition": "neck_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
            "plan": [{"modality": "manual_therapy"}],
        },
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text
    api.prepare_needling(patient_id)
    return r.json()


def new_session(api: Api) -> dict[str, Any]:
    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    r = api.client.post("/api/v1/sessions", json=session_body(episode["id"]), headers=api.headers())
    assert r.status_code == 201, r.text
    return r.json()


def audit_count(api: Api) -> int:
    with api.clinic.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(t.audit_events.c.clinic_id == api.clinic.owner.clinic_id)
        ).scalar_one()


def test_requests_without_a_token_are_refused(api: Api) -> None:
    r = api.client.get("/api/v1/patients")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    bad = api.client.get("/api/v1/patients", headers={"Authorization": "Bearer np_nope"})
    assert bad.status_code == 401


def test_every_request_is_attributed_to_a_user_and_clinic(api: Api) -> None:
    me = api.client.get("/api/v1/me", headers=api.headers()).json()
    assert me["id"] == str(api.clinic.clinician.id)
    assert me["clinic_id"] == str(api.clinic.owner.clinic_id)
    assert "password_hash" not in me
    patient = new_patient(api)
    with api.clinic.engine.connect() as conn:
        event = conn.execute(
            sa.select(
                t.audit_events.c.actor_user_id, t.audit_events.c.source, t.audit_events.c.request_id
            ).where(t.audit_events.c.patient_id == UUID(patient["id"]))
        ).one()
    assert event.actor_user_id == api.clinic.clinician.id
    assert event.source == "api"
    assert event.request_id


def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_written(api: Api) -> None:
    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    before = audit_count(api)
    body = session_body(episode["id"])
    body["sites"][2]["depth_mm"] = 45  # deeper than the 30 mm needle
    r = api.client.post("/api/v1/sessions", json=body, headers=api.headers())
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "sites.2"
    assert "deeper than the needle" in problem["errors"][0]["message"]

    body = session_body(episode["id"])
    body["measurements"][0]["answers"] = {"item1": 11}
    r = api.client.post("/api/v1/sessions", json=body, headers=api.headers())
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "measurements.0.answers.item1", "message": "item1 must be between 0 and 10"}
    ]
    r = api.client.post("/api/v1/patients", json={**PATIENT, "sex": "x"}, headers=api.headers())
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "sex"
    assert audit_count(api) == before


def test_updates_need_the_version_and_a_stale_one_is_refused(api: Api) -> None:
    patient = new_patient(api)
    url = f"/api/v1/patients/{patient['id']}"
    got = api.client.get(url, headers=api.headers())
    assert got.headers["etag"] == '"1"'

    missing = api.client.patch(url, json={"given_name": "G."}, headers=api.headers())
    assert missing.status_code == 428

    ok = api.client.patch(
        url, json={"given_name": "G."}, headers=api.headers(**{"If-Match": '"1"'})
    )
    assert ok.status_code == 200
    assert ok.json()["version"] == 2
    assert ok.headers["etag"] == '"2"'

    stale = api.client.patch(
        url, json={"family_name": "Lost"}, headers=api.headers(**{"If-Match": '"1"'})
    )
    assert stale.status_code == 412
    assert api.client.get(url, headers=api.headers()).json()["family_name"] == "Hopper"


def test_a_signed_note_cannot_be_changed_but_can_be_amended(api: Api) -> None:
    session = new_session(api)
    url = f"/api/v1/sessions/{session['id']}"
    signed = api.client.post(f"{url}/sign", headers=api.headers(**{"If-Match": '"1"'}))
    assert signed.status_code == 200
    assert signed.json()["status"] == "signed"

    body = session_body(session["episode_id"])
    body.pop("episode_id")
    edit = api.client.put(
        url, json={**body, "subjective": "rewritten"}, headers=api.headers(**{"If-Match": '"2"'})
    )
    assert edit.status_code == 409
    assert "amendment" in edit.json()["detail"]

    amended = api.client.post(
        f"{url}/amendments",
        json={"reason": "Late entry", "text": "Patient felt dizzy."},
        headers=api.headers(),
    )
    assert amended.status_code == 201
    detail = api.client.get(url, headers=api.headers()).json()
    assert detail["session"]["subjective"] == "Neck pain 6/10, worse at the desk."
    assert [a["text"] for a in detail["amendments"]] == ["Patient felt dizzy."]
    assert len(detail["sites"]) == 4


def test_another_clinics_records_answer_404_without_content(engine: sa.Engine, api: Api) -> None:
    session = new_session(api)
    outsider = make_api(engine, make_clinic(engine, "Elsewhere"))
    for url in (
        f"/api/v1/patients/{session['patient_id']}",
        f"/api/v1/patients/{session['patient_id']}/timeline",
        f"/api/v1/episodes/{session['episode_id']}",
        f"/api/v1/sessions/{session['id']}",
    ):
        r = outsider.client.get(url, headers=outsider.headers())
        assert r.status_code == 404, url
        assert "Neck" not in r.text
        assert "Hopper" not in r.text
    listing = outsider.client.get("/api/v1/patients", headers=outsider.headers()).json()
    assert listing["total"] == 0


def test_the_front_desk_sees_demographics_but_not_notes(api: Api) -> None:
    session = new_session(api)
    desk = api.headers("assistant")
    assert (
        api.client.get(f"/api/v1/patients/{session['patient_id']}", headers=desk).status_code == 200
    )
    assert api.client.get(f"/api/v1/sessions/{session['id']}", headers=desk).status_code == 403
    r = api.client.post("/api/v1/sessions", json=session_body(session["episode_id"]), headers=desk)
    assert r.status_code == 403


def test_patient_search_and_pagination(api: Api) -> None:
    for i, family in enumerate(["Okafor", "Okada", "Lindqvist", "O'Brien", "Okafor"]):
        new_patient(api, family_name=family, mrn=f"SRCH-{i}")
    h = api.headers()
    found = api.client.get("/api/v1/patients", params={"q": "oka"}, headers=h).json()
    assert found["total"] == 3
    assert [p["family_name"] for p in found["items"]] == ["Okada", "Okafor", "Okafor"]
    assert (
        api.client.get("/api/v1/patients", params={"q": "SRCH-2"}, headers=h).json()["total"] == 1
    )
    page1 = api.client.get("/api/v1/patients", params={"limit": 2}, headers=h).json()
    page2 = api.client.get("/api/v1/patients", params={"limit": 2, "offset": 2}, headers=h).json()
    assert page1["total"] == page2["total"] == 5
    assert {p["id"] for p in page1["items"]}.isdisjoint({p["id"] for p in page2["items"]})
    # A page past the end is empty but still counts the matches.
    past = api.client.get("/api/v1/patients", params={"q": "oka", "offset": 10}, headers=h).json()
    assert (past["items"], past["total"]) == ([], 3)
    assert api.client.get("/api/v1/patients", params={"q": "%"}, headers=h).json()["total"] == 0
    # Case is ignored on both databases (SQLite's LIKE, PostgreSQL's ILIKE); "_" is literal.
    for q, total in (("OKA", 3), ("srch-2", 1), ("o_", 0), ("'b", 1)):
        found = api.client.get("/api/v1/patients", params={"q": q}, headers=h).json()
        assert found["total"] == total, q
    assert api.client.get("/api/v1/patients", params={"limit": 0}, headers=h).status_code == 422


def test_a_search_word_is_found_within_one_name_or_the_mrn_never_across_them(api: Api) -> None:
    """PostgreSQL searches the name and MRN joined by spaces (one trigram index,
    migration 0022): a word, which holds no space, still matches exactly when it is
    within the given name, the family name or the MRN, as on SQLite."""
    new_patient(api, given_name="Pedro", family_name="Castillo", mrn="JOIN-77")
    h = api.headers()
    for q, total in (
        ("dro", 1),  # given name
        ("astil", 1),  # family name
        ("in-7", 1),  # MRN
        ("pedro castillo", 1),  # every word, each in its own field
        ("ocas", 0),  # the end of one field and the start of the next
        ("lloJOIN", 0),
        ("o c", 1),  # two words: "o" and "c"
    ):
        found = api.client.get("/api/v1/patients", params={"q": q}, headers=h).json()
        assert found["total"] == total, q


def test_timeline_shows_episode_session_and_measurements_newest_first(api: Api) -> None:
    session = new_session(api)
    r = api.client.get(f"/api/v1/patients/{session['patient_id']}/timeline", headers=api.headers())
    kinds = [e["kind"] for e in r.json()]
    assert kinds.count("measurement") == 2
    assert "session" in kinds
    assert kinds[-1] == "episode_opened"
    times = [e["at"] for e in r.json()]
    assert times == sorted(times, reverse=True)


def test_openapi_documents_every_route(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/v1/patients",
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}/sign",
        "/api/v1/episodes/{episode_id}/close",
        "/api/v1/measurements",
    ):
        assert path in spec["paths"], path


def test_unexpected_errors_show_no_stack_trace(api: Api, monkeypatch: Any) -> None:
    from needlepoint.queries import patients as queries

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(queries, "search_patients", boom)
    from fastapi.testclient import TestClient

    r = TestClient(api.client.app, raise_server_exceptions=False).get(
        "/api/v1/patients", headers=api.headers()
    )
    assert r.status_code == 500
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_security_headers_on_every_response(api: Api) -> None:
    r = api.client.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_responses_match_the_documented_models(api: Api) -> None:
    """Routes answer with orjson directly; every answer must still validate against the
    response model its OpenAPI entry documents."""
    from fastapi.routing import APIRoute
    from pydantic import TypeAdapter

    session = new_session(api)
    h = api.headers()
    sid, pid, eid = session["id"], session["patient_id"], session["episode_id"]
    api.client.post(f"/api/v1/sessions/{sid}/sign", headers=api.headers(**{"If-Match": '"1"'}))
    calls = {
        ("GET", "/api/v1/patients"): api.client.get("/api/v1/patients", headers=h),
        ("GET", "/api/v1/patients/{patient_id}"): api.client.get(
            f"/api/v1/patients/{pid}", headers=h
        ),
        ("GET", "/api/v1/patients/{patient_id}/timeline"): api.client.get(
            f"/api/v1/patients/{pid}/timeline", headers=h
        ),
        ("GET", "/api/v1/patients/{patient_id}/episodes"): api.client.get(
            f"/api/v1/patients/{pid}/episodes", headers=h
        ),
        ("GET", "/api/v1/patients/{patient_id}/measurements"): api.client.get(
            f"/api/v1/patients/{pid}/measurements", headers=h
        ),
        ("GET", "/api/v1/episodes/{episode_id}"): api.client.get(
            f"/api/v1/episodes/{eid}", headers=h
        ),
        ("GET", "/api/v1/episodes/{episode_id}/sessions"): api.client.get(
            f"/api/v1/episodes/{eid}/sessions", headers=h
        ),
        ("GET", "/api/v1/sessions/{session_id}"): api.client.get(
            f"/api/v1/sessions/{sid}", headers=h
        ),
        ("POST", "/api/v1/sessions/{session_id}/amendments"): api.client.post(
            f"/api/v1/sessions/{sid}/amendments", json={"reason": "r", "text": "t"}, headers=h
        ),
        ("POST", "/api/v1/medications"): api.client.post(
            "/api/v1/medications",
            headers=h,
            json={
                "patient_id": pid,
                "drug": "Ibuprofen",
                "drug_class": "nsaid",
                "days_per_week": 3,
                "recorded_on": "2026-02-03",
            },
        ),
    }
    from needlepoint.web import api as api_package

    models = {
        (method, api_package.PREFIX + route.path): route.response_model
        for router in api_package.routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    for key, response in calls.items():
        assert response.status_code in (200, 201), (key, response.text)
        TypeAdapter(models[key]).validate_python(response.json())
