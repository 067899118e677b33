"""Reads of health information are audited, record by record; the audit report is for the
owner and auditors only, filters and sorts, and exports CSV as a recorded disclosure."""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.enums import Role
from needlepoint.queries.audit import verify_chains
from tests.conftest import Api
from tests.integration.test_api import new_episode, new_patient


def events(api: Api, **where: Any) -> list[sa.Row[Any]]:
    ae = t.audit_events
    with api.clinic.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(ae)
                .where(
                    ae.c.clinic_id == api.clinic.owner.clinic_id,
                    *(ae.c[k] == v for k, v in where.items()),
                )
                .order_by(ae.c.seq)
            )
        )


def auditor_token(api: Api) -> str:
    auditor = register_user(
        SqlUnitOfWork(api.clinic.engine),
        api.clinic.as_owner,
        RegisterUser(
            email=f"audit-{api.clinic.owner.id.hex[:8]}@test.example",
            full_name="Ann Auditor",
            role=Role.AUDITOR,
        ),
    )
    return issue_operator_token(SqlUnitOfWork(api.clinic.engine), auditor, "test")


def test_opening_a_patients_record_and_timeline_is_audited_with_the_source_address(
    api: Api,
) -> None:
    patient = new_patient(api)
    pid = UUID(patient["id"])
    assert api.client.get(f"/api/v1/patients/{pid}", headers=api.headers()).status_code == 200
    r = api.client.get(f"/api/v1/patients/{pid}/timeline", headers=api.headers())
    assert r.status_code == 200
    viewed = events(api, action="record.viewed", patient_id=pid)
    assert len(viewed) == 2
    assert {v.entity_type for v in viewed} == {"patient"}
    assert all(v.actor_user_id == api.clinic.clinician.id for v in viewed)
    assert all(v.source_address == "testclient" and v.request_id for v in viewed)


def test_reading_a_session_note_audits_the_note_of_that_patient(api: Api) -> None:
    from tests.factories import session_body

    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    note = api.client.post(
        "/api/v1/sessions", json=session_body(episode["id"]), headers=api.headers()
    ).json()
    r = api.client.get(f"/api/v1/sessions/{note['id']}", headers=api.headers())
    assert r.status_code == 200, r.text
    (viewed,) = events(api, action="record.viewed", entity_id=UUID(note["id"]))
    assert viewed.entity_type == "session"
    assert viewed.patient_id == UUID(patient["id"])


def test_a_refused_read_is_audited_as_denied(api: Api) -> None:
    patient = new_patient(api)
    r = api.client.get(
        f"/api/v1/patients/{patient['id']}/timeline", headers=api.headers("assistant")
    )
    assert r.status_code == 403
    (denied,) = events(api, action="access.denied")
    assert denied.outcome == "denied"
    assert denied.actor_user_id == api.clinic.assistant.id


def test_only_the_owner_and_auditors_read_the_audit_report(api: Api) -> None:
    new_patient(api)
    for who in ("clinician", "assistant"):
        assert api.client.get("/api/v1/audit", headers=api.headers(who)).status_code == 403
    owner = api.client.get("/api/v1/audit", headers=api.headers("owner"))
    assert owner.status_code == 200, owner.text
    token = auditor_token(api)
    auditor = api.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
    assert auditor.status_code == 200
    assert auditor.json()["total"] >= 1


def test_the_audit_report_filters_by_patient_user_action_and_period(api: Api) -> None:
    first, second = new_patient(api), new_patient(api)
    h = api.headers("owner")
    by_patient = api.client.get(f"/api/v1/audit?patient_id={first['id']}", headers=h).json()
    assert by_patient["total"] == 1
    assert by_patient["items"][0]["action"] == "patient.registered"
    by_user = api.client.get(
        f"/api/v1/audit?user_id={api.clinic.clinician.id}&action=patient.registered", headers=h
    ).json()
    assert {e["patient_id"] for e in by_user["items"]} == {first["id"], second["id"]}
    newest_first = [e["seq"] for e in api.client.get("/api/v1/audit", headers=h).json()["items"]]
    assert newest_first == sorted(newest_first, reverse=True)
    oldest = api.client.get("/api/v1/audit?sort=occurred_at&limit=1", headers=h).json()
    assert oldest["items"][0]["action"] == "clinic.registered"
    future = api.client.get("/api/v1/audit?since=2999-01-01T00:00:00Z", headers=h).json()
    assert future["total"] == 0
    naive = api.client.get("/api/v1/audit?since=2000-01-01T00:00:00&until=2999-01-01", headers=h)
    assert naive.status_code == 200, naive.text  # no zone: UTC
    assert naive.json()["total"] == api.client.get("/api/v1/audit", headers=h).json()["total"]
    bad = api.client.get("/api/v1/audit?action=nonsense", headers=h)
    assert bad.status_code == 422


def test_exporting_the_audit_report_as_csv_is_itself_a_recorded_disclosure(api: Api) -> None:
    patient = new_patient(api)
    for url in (
        f"/api/v1/audit.csv?patient_id={patient['id']}",
        f"/api/v1/audit?format=csv&patient_id={patient['id']}",
    ):
        r = api.client.get(url, headers=api.headers("owner"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert rows[-1]["action"] == "patient.registered"  # newest first: the oldest last
        assert rows[-1]["hash"]
        assert rows[-1]["seq"]
    exports = events(api, action="audit.exported")
    assert len(exports) == 2
    assert all(e.actor_user_id == api.clinic.owner.id for e in exports)
    with api.clinic.engine.connect() as conn:
        assert verify_chains(conn, api.clinic.owner.clinic_id).ok


# Every endpoint that discloses health information, and the record its audit event names.
HEALTH_READS = [
    ("/api/v1/patients/{patient}", "patient"),
    ("/api/v1/patients/{patient}/timeline", "patient"),
    ("/api/v1/patients/{patient}/episodes", "patient"),
    ("/api/v1/patients/{patient}/measurements", "patient"),
    ("/api/v1/patients/{patient}/medications", "patient"),
    ("/api/v1/episodes/{episode}", "episode"),
    ("/api/v1/episodes/{episode}/sessions", "episode"),
    ("/api/v1/sessions/{session}", "session"),
    ("/api/v1/patients/{patient}/screenings", "patient"),
    ("/api/v1/patients/{patient}/consents", "patient"),
    ("/api/v1/patients/{patient}/needling-status", "patient"),
    ("/api/v1/episodes/{episode}/benefits", "episode"),
    ("/api/v1/patients?q={mrn}", "patient"),  # a search result shows the record too
]


def test_every_health_information_endpoint_leaves_a_record_viewed_event(api: Api) -> None:
    from tests.factories import session_body

    patient = new_patient(api)
    episode = new_episode(api, patient["id"])
    note = api.client.post(
        "/api/v1/sessions", json=session_body(episode["id"]), headers=api.headers()
    ).json()
    ids = {"patient": patient["id"], "episode": episode["id"], "session": note["id"]}
    ids["mrn"] = patient["mrn"]
    for template, kind in HEALTH_READS:
        before = len(events(api, action="record.viewed"))
        r = api.client.get(template.format(**ids), headers=api.headers())
        assert r.status_code == 200, (template, r.text)
        viewed = events(api, action="record.viewed")[before:]
        assert [(v.entity_type, str(v.entity_id)) for v in viewed] == [(kind, ids[kind])], template
        assert viewed[0].patient_id == UUID(patient["id"]), template
