"""Issue 15, items 1-4 on both databases: the clinic's time zone (setting, forms in local
time, storage in UTC), a signed note that names its signer and patient, discarding a
draft, and adverse events recorded after the session with follow-ups and the
jurisdiction's reporting deadline, counted by the safety analytics."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.adverse_events import add_follow_up, record_adverse_event
from needlepoint.actions.clinics import register_user
from needlepoint.actions.credentials import update_clinic_settings
from needlepoint.actions.episodes import open_episode
from needlepoint.actions.patients import register_patient
from needlepoint.actions.sessions import (
    amend_session,
    discard_session,
    record_session,
    sign_session,
)
from needlepoint.adapters.db import tables as t
from needlepoint.analytics import dataset
from needlepoint.analytics.responders import Workspace
from needlepoint.analytics.safety import safety
from needlepoint.domain.commands import (
    AddAdverseEventFollowUp,
    AmendSession,
    DiscardSession,
    RecordAdverseEvent,
    RegisterUser,
    SignSession,
    UpdateClinicSettings,
)
from needlepoint.domain.entities import Clinic, Session, User
from needlepoint.domain.enums import AdverseEventKind, AuditAction, FollowUpKind, Role, Severity
from needlepoint.domain.errors import InvalidInput, RecordLocked
from needlepoint.queries.reader import Reader
from needlepoint.web.app import create_app
from tests.conftest import Api, ClinicFixture
from tests.factories import episode_cmd, patient_cmd, session_cmd

PASSWORD = "correct horse battery"
LA = "America/Los_Angeles"


def _clinic_row(engine: sa.Engine, clinic_id: UUID) -> Clinic:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.clinics).where(t.clinics.c.id == clinic_id)).one()
    return Clinic(**row._mapping)


def _set_zone(clinic: ClinicFixture, zone: str, jurisdiction: str | None = None) -> None:
    current = _clinic_row(clinic.engine, clinic.owner.clinic_id)
    fields: dict[str, object] = {"time_zone": zone}
    if jurisdiction:
        fields["jurisdiction"] = jurisdiction
    update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=current.version, **fields),
    )


def _audit_count(engine: sa.Engine, clinic_id: UUID, action: AuditAction) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.audit_events)
                .where(t.audit_events.c.clinic_id == clinic_id, t.audit_events.c.action == action)
            ).scalar_one()
        )


def _note(clinic: ClinicFixture) -> Session:
    patient = register_patient(
        clinic.uow(),
        clinic.as_clinician,
        patient_cmd(given_name="Ada", family_name="Lovelace", birth_date=date(1980, 5, 17)),
    )
    clinic.prepare_needling(patient.id)
    episode = open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    return record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))


def _signed(clinic: ClinicFixture) -> Session:
    draft = _note(clinic)
    return sign_session(
        clinic.uow(),
        clinic.as_clinician,
        SignSession(session_id=draft.id, expected_version=draft.version),
    )


def _web(engine: sa.Engine, clinic: ClinicFixture, licence: str | None = "PT-12345") -> TestClient:
    tag = re.sub(r"[^a-z0-9]", "", str(clinic.owner.clinic_id))[:10]
    register_user(
        clinic.uow(),
        clinic.as_owner,
        RegisterUser(
            email=f"web-{tag}@test.example",
            full_name="Wendy Web",
            role=Role.CLINICIAN,
            password=PASSWORD,
            licence_number=licence,
            licence_date=date(2015, 6, 1),
        ),
    )
    client = TestClient(create_app(engine, secret_key="k" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    r = client.post(
        "/login",
        data={"email": f"web-{tag}@test.example", "password": PASSWORD, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found[1]


def _web_user(engine: sa.Engine, clinic_id: UUID) -> User:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(t.users).where(
                t.users.c.clinic_id == clinic_id, t.users.c.full_name == "Wendy Web"
            )
        ).one()
    return User(**row._mapping)


# --- 1. the clinic's time zone -----------------------------------------------------------


def test_the_time_zone_is_set_through_the_api_and_a_wrong_name_is_refused_naming_the_field(
    api: Api, clinic: ClinicFixture, engine: sa.Engine
) -> None:
    got = api.client.get("/api/v1/clinic", headers=api.headers("owner"))
    assert got.status_code == 200
    etag = got.headers["ETag"]
    before = got.json()["time_zone"]
    bad = api.client.patch(
        "/api/v1/clinic",
        json={"time_zone": "Mars/Olympus_Mons"},
        headers=api.headers("owner", **{"If-Match": etag}),
    )
    assert bad.status_code == 422
    assert "time_zone" in bad.text
    assert _clinic_row(engine, clinic.owner.clinic_id).time_zone == before  # unchanged
    ok = api.client.patch(
        "/api/v1/clinic",
        json={"time_zone": LA},
        headers=api.headers("owner", **{"If-Match": etag}),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["time_zone"] == LA
    assert _clinic_row(engine, clinic.owner.clinic_id).time_zone == LA


def test_an_evening_note_in_los_angeles_is_stored_in_utc_and_shown_in_local_time(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    _set_zone(clinic, LA)
    client = _web(engine, clinic)
    draft = _note(clinic)
    page = client.get(f"/sessions/{draft.id}")
    assert page.status_code == 200
    # The stored 2026-02-03 09:30 UTC is 01:30 in Los Angeles (PST, UTC-8).
    assert 'value="2026-02-03T01:30"' in page.text
    form = {
        "csrf": _csrf(page.text),
        "episode_id": str(draft.episode_id),
        "session_id": str(draft.id),
        "version": str(draft.version),
        "started_at": "2026-02-03T19:45",  # an evening session, clinic time
        "subjective": "Evening visit.",
        "intent": "save",
    }
    saved = client.post(f"/sessions/{draft.id}", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(t.sessions.c.started_at).where(t.sessions.c.id == draft.id)
        ).scalar_one()
    # 19:45 PST on 3 February is 03:45 UTC on 4 February: stored in UTC …
    assert stored.astimezone(UTC) == datetime(2026, 2, 4, 3, 45, tzinfo=UTC)
    # … and shown again as the local evening of the 3rd, not the next day.
    again = client.get(f"/sessions/{draft.id}").text
    assert 'value="2026-02-03T19:45"' in again


def test_the_settings_page_sets_the_zone_and_shows_a_wrong_one_at_the_field(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    tag = str(clinic.owner.clinic_id)[:8]
    register_user(
        clinic.uow(),
        clinic.as_owner,
        RegisterUser(
            email=f"own2-{tag}@test.example",
            full_name="Olive Owner",
            role=Role.OWNER,
            password=PASSWORD,
        ),
    )
    client = TestClient(create_app(engine, secret_key="k" * 40))
    r = client.post(
        "/login",
        data={
            "email": f"own2-{tag}@test.example",
            "password": PASSWORD,
            "csrf": _csrf(client.get("/login").text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/settings").text
    assert 'name="time_zone"' in page
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    base = {
        "csrf": _csrf(page),
        "version": version[1],
        "jurisdiction": "none",
        "credential_policy": "warn",
        "screening_valid_days": "90",
    }
    bad = client.post("/settings", data={**base, "time_zone": "Europe/Atlantis"})
    assert bad.status_code == 400
    field = re.search(r'<input id="f-time_zone"[^>]*>', bad.text)
    assert field
    assert 'aria-invalid="true"' in field[0]
    assert 'data-field="time_zone"' in bad.text
    ok = client.post("/settings", data={**base, "time_zone": LA}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert _clinic_row(engine, clinic.owner.clinic_id).time_zone == LA


# --- 2. a signed note names its signer and its patient -------------------------------------


def test_a_signed_note_names_its_signer_patient_and_each_amendment_author(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    _set_zone(clinic, LA)
    client = _web(engine, clinic)
    wendy = _web_user(engine, clinic.owner.clinic_id)
    draft = _note(clinic)
    me = clinic.actor(wendy)
    signed = sign_session(
        clinic.uow(), me, SignSession(session_id=draft.id, expected_version=draft.version)
    )
    amend_session(
        clinic.uow(), me, AmendSession(session_id=draft.id, reason="Typo", text="Right, not left.")
    )
    page = client.get(f"/sessions/{draft.id}").text
    signer = re.search(r'<p id="signer">(.*?)</p>', page, re.S)
    assert signer
    assert "Wendy Web" in signer[1]
    assert "Licensed clinician" in signer[1]
    assert "licence PT-12345" in signer[1]
    # Another clinician recorded the note: named as the clinician of record.
    assert "Pat Therapist" in page
    assert "Lovelace, Ada" in page
    assert "1980-05-17" in page
    assert re.search(r'<dd id="note-chart">T-\d+</dd>', page)
    assert signed.signed_at is not None
    local = signed.signed_at.astimezone(ZoneInfo(LA))
    assert f"Signed {local:%Y-%m-%d %H:%M} {local.tzname()}" in page
    assert "Amended by Wendy Web, Licensed clinician, licence PT-12345" in page


def test_the_api_names_the_signer_and_the_patient(api: Api, clinic: ClinicFixture) -> None:
    signed = _signed(clinic)
    r = api.client.get(f"/api/v1/sessions/{signed.id}/signature", headers=api.headers())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["signed_by"]["full_name"] == "Pat Therapist"
    assert body["patient_name"] == "Ada Lovelace"
    assert body["patient_birth_date"] == "1980-05-17"
    assert body["chart_number"].startswith("T-")


# --- 3. discarding a draft -----------------------------------------------------------------


def test_a_draft_is_discarded_with_its_records_and_an_audit_event(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    draft = _note(clinic)
    discard_session(
        clinic.uow(),
        clinic.as_clinician,
        DiscardSession(session_id=draft.id, expected_version=draft.version),
    )
    with engine.connect() as conn:
        for table in (t.sessions, t.needling_sites, t.measurements, t.co_interventions):
            column = table.c.id if table is t.sessions else table.c.session_id
            assert conn.execute(sa.select(sa.func.count()).where(column == draft.id)).scalar() == 0
    assert _audit_count(engine, clinic.owner.clinic_id, AuditAction.SESSION_DISCARDED) == 1


def test_a_signed_note_is_never_discarded(
    api: Api, clinic: ClinicFixture, engine: sa.Engine
) -> None:
    signed = _signed(clinic)
    with pytest.raises(RecordLocked):
        discard_session(
            clinic.uow(),
            clinic.as_clinician,
            DiscardSession(session_id=signed.id, expected_version=signed.version),
        )
    r = api.client.delete(
        f"/api/v1/sessions/{signed.id}",
        headers=api.headers(**{"If-Match": f'"{signed.version}"'}),
    )
    assert r.status_code == 409, r.text
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(t.sessions.c.status).where(t.sessions.c.id == signed.id)
            ).scalar_one()
            == "signed"
        )
    assert _audit_count(engine, clinic.owner.clinic_id, AuditAction.SESSION_DISCARDED) == 0


# --- 4. adverse events after the session ---------------------------------------------------


def _late(session: Session, **extra: object) -> RecordAdverseEvent:
    return RecordAdverseEvent(
        session_id=session.id,
        kind=AdverseEventKind.PNEUMOTHORAX,
        severity=Severity.SERIOUS,
        onset_at=session.started_at + timedelta(hours=20),
        description="Short of breath the next morning; chest X-ray showed a pneumothorax",
        **extra,  # type: ignore[arg-type]
    )


def test_an_adverse_event_after_the_session_feeds_the_safety_analytics(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    signed = _signed(clinic)

    def serious_sessions() -> int:
        with engine.connect() as conn:
            reader = Reader(conn, clinic.owner.clinic_id, clinic.owner.role, clinic.owner.id)
            found = safety(Workspace(dataset.load(reader)))
        return sum(r.sessions_with_event for r in found.by_kind if r.kind == "pneumothorax")

    assert serious_sessions() == 0
    record_adverse_event(clinic.uow(), clinic.as_clinician, _late(signed))
    assert serious_sessions() == 1


def test_a_draft_takes_its_adverse_events_in_the_note_itself(clinic: ClinicFixture) -> None:
    draft = _note(clinic)
    with pytest.raises(InvalidInput) as err:
        record_adverse_event(clinic.uow(), clinic.as_clinician, _late(draft))
    assert err.value.field == "session_id"


def test_follow_ups_are_appended_and_the_florida_deadline_is_shown(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    _set_zone(clinic, LA, jurisdiction="us-fl")
    client = _web(engine, clinic)
    signed = _signed(clinic)
    event = record_adverse_event(clinic.uow(), clinic.as_clinician, _late(signed, reportable=True))
    page = client.get(f"/sessions/{signed.id}")
    assert page.status_code == 200
    # Onset 2026-02-04 05:30 UTC is 2026-02-03 21:30 PST: 15 days from the 3rd.
    deadline = re.search(rf'id="ae-{event.id}-deadline">(.*?)</p>', page.text, re.S)
    assert deadline
    assert "within 15 days" in deadline[1]
    assert "2026-02-18" in deadline[1]
    assert "unverified" in deadline[1]
    form = {
        "csrf": _csrf(page.text),
        "kind": "action",
        "occurred_at": "2026-02-04T08:00",
        "text": "Sent to the emergency department",
    }
    r = client.post(f"/adverse-events/{event.id}/follow-ups", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    add_follow_up(
        clinic.uow(),
        clinic.as_clinician,
        AddAdverseEventFollowUp(
            adverse_event_id=event.id,
            kind=FollowUpKind.REPORTED,
            text="Reported to the Florida board",
            occurred_at=event.onset_at + timedelta(days=2),
        ),
    )
    page2 = client.get(f"/sessions/{signed.id}").text
    assert "Sent to the emergency department" in page2
    assert "2026-02-04 08:00 PST" in page2
    deadline2 = re.search(rf'id="ae-{event.id}-deadline">(.*?)</p>', page2, re.S)
    assert deadline2
    assert "reported 2026-02-05" in deadline2[1]
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(t.adverse_event_follow_ups.c.occurred_at).where(
                t.adverse_event_follow_ups.c.kind == "action",
                t.adverse_event_follow_ups.c.adverse_event_id == event.id,
            )
        ).scalar_one()
    assert stored.astimezone(UTC) == datetime(2026, 2, 4, 16, 0, tzinfo=UTC)
    assert _audit_count(engine, clinic.owner.clinic_id, AuditAction.ADVERSE_EVENT_FOLLOWED_UP) == 2


def test_no_deadline_is_invented_where_the_jurisdiction_has_none(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    _set_zone(clinic, LA, jurisdiction="us-va")
    client = _web(engine, clinic)
    signed = _signed(clinic)
    event = record_adverse_event(clinic.uow(), clinic.as_clinician, _late(signed, reportable=True))
    page = client.get(f"/sessions/{signed.id}").text
    assert f'id="ae-{event.id}"' in page
    assert f'id="ae-{event.id}-deadline"' not in page
    assert "report to the board within" not in page


def test_a_late_event_form_error_is_shown_at_its_field_and_nothing_is_saved(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    client = _web(engine, clinic)
    signed = _signed(clinic)
    page = client.get(f"/sessions/{signed.id}").text
    r = client.post(
        f"/sessions/{signed.id}/adverse-events",
        data={
            "csrf": _csrf(page),
            "kind": "bruising",
            "severity": "mild",
            "onset_at": "2020-01-01T10:00",  # before the session
            "description": "Bruise",
        },
    )
    assert r.status_code == 400
    field = re.search(r'<input id="late-onset"[^>]*>', r.text)
    assert field
    assert 'aria-invalid="true"' in field[0]
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(t.adverse_events.c.session_id == signed.id)
            ).scalar()
            == 0
        )


def test_a_late_events_onset_is_never_pre_filled_and_a_missing_one_is_named(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    """A bruise noticed the next day: the onset is what the clinician enters, never the
    moment of recording left in the field (the board's deadline counts from the onset)."""
    client = _web(engine, clinic)
    signed = _signed(clinic)
    page = client.get(f"/sessions/{signed.id}").text
    field = re.search(r'<input id="late-onset"[^>]*>', page)
    assert field
    assert 'value=""' in field[0]
    assert "required" in field[0]
    for follow_up in re.findall(r'<input id="fu-[^"]*-at"[^>]*>', page):
        assert 'value=""' in follow_up
    # Nor are the event's kind and severity chosen for the clinician ("mild" was).
    for select in ("late-kind", "late-sev"):
        chosen = re.search(rf'<select id="{select}"[^>]*>(.*?)</select>', page)
        assert chosen, select
        assert "selected" not in chosen[1], select
        assert '<option value="">Choose…</option>' in chosen[1]
    r = client.post(
        f"/sessions/{signed.id}/adverse-events",
        data={
            "csrf": _csrf(page),
            "kind": "bruising",
            "severity": "mild",
            "onset_at": "",
            "description": "Bruise over the calf, noticed the next day",
        },
    )
    assert r.status_code == 400
    assert "Onset: enter when the symptoms began" in r.text
    field = re.search(r'<input id="late-onset"[^>]*>', r.text)
    assert field
    assert 'aria-invalid="true"' in field[0]
    desc = re.search(r'<input id="late-desc"[^>]*>', r.text)
    assert desc
    assert 'value="Bruise over the calf, noticed the next day"' in desc[0]  # what was typed
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(t.adverse_events.c.session_id == signed.id)
            ).scalar()
            == 0
        )


def test_the_application_role_cannot_edit_a_follow_up(
    postgres_engine: sa.Engine,
) -> None:
    """PostgreSQL: follow-ups are appended only; the application role may not change or
    delete them (adapters/db/protections.py keeps it so)."""
    with postgres_engine.connect() as conn:
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            held = conn.execute(
                sa.text("SELECT has_table_privilege('needlepoint_app', :t, :p)"),
                {"t": "adverse_event_follow_ups", "p": privilege},
            ).scalar_one()
            assert held is False, privilege
        assert conn.execute(
            sa.text("SELECT relrowsecurity FROM pg_class WHERE relname = :t"),
            {"t": "adverse_event_follow_ups"},
        ).scalar_one()


# --- 3. signing: one confirmation step; a refusal at the top and at the site ---------------


def _site(i: int, muscle: str, **extra: str) -> dict[str, str]:
    values = {
        "muscle_id": muscle,
        "side": "left",
        "trigger_point": "active",
        "technique": "pistoning",
        "needle_gauge_mm": "0.25",
        "needle_length_mm": "30",
        "depth_mm": "12",
        "insertions": "3",
        "local_twitch_responses": "1",
        "tolerance": "good",
        **extra,
    }
    return {f"sites-{i}-{k}": v for k, v in values.items()}


def _open_episode(clinic: ClinicFixture) -> UUID:
    patient = register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    clinic.prepare_needling(patient.id)
    return open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id)).id


def test_signing_shows_a_summary_to_confirm_then_locks(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    _set_zone(clinic, LA)
    client = _web(engine, clinic)
    episode_id = _open_episode(clinic)
    page = client.get(f"/episodes/{episode_id}/sessions/new").text
    data = {
        "csrf": _csrf(page),
        "episode_id": str(episode_id),
        "started_at": "2026-02-10T18:30",
        "subjective": "Neck pain.",
        "nprs": "6",
        "intent": "sign",
        **_site(0, "upper_trapezius"),
        **_site(1, "levator_scapulae"),
    }
    r = client.post(f"/episodes/{episode_id}/sessions", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    confirm_url = r.headers["location"]
    assert confirm_url.endswith("/sign")
    confirm = client.get(confirm_url).text
    assert "2026-02-10 18:30 PST" in confirm
    assert "Upper trapezius, left" in confirm
    assert "CPT 20560" in confirm  # 1-2 muscles
    assert "Numeric Pain Rating Scale: 6/10" in confirm
    session_id = UUID(confirm_url.split("/")[2])
    with engine.connect() as conn:  # not signed yet: the summary only asks
        status = conn.execute(
            sa.select(t.sessions.c.status).where(t.sessions.c.id == session_id)
        ).scalar_one()
    assert status == "draft"
    version = re.search(r'name="version" value="(\d+)"', confirm)
    assert version
    done = client.post(
        confirm_url, data={"csrf": _csrf(confirm), "version": version[1]}, follow_redirects=False
    )
    assert done.status_code == 303
    signed = client.get(done.headers["location"]).text
    assert "locked" in signed
    assert "2026-02-10 18:30 PST" in signed


def test_a_refused_sign_shows_the_reason_at_the_top_and_at_the_site_below_the_save_status(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    client = _web(engine, clinic)
    episode_id = _open_episode(clinic)
    page = client.get(f"/episodes/{episode_id}/sessions/new").text
    data = {
        "csrf": _csrf(page),
        "episode_id": str(episode_id),
        "started_at": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "subjective": "Kept text.",
        "intent": "sign",
        **_site(0, "upper_trapezius"),
        **_site(1, "levator_scapulae", depth_mm="-3"),
    }
    r = client.post(f"/episodes/{episode_id}/sessions", data=data)
    assert r.status_code == 400
    html = r.text
    summary = re.search(r'<div class="problems sign-refused"[^>]*>(.*?)</div>', html, re.S)
    assert summary, "the reason at the top"
    assert 'href="#site-1"' in summary[1]
    assert "Levator scapulae" in summary[1]
    assert 'data-invalid-field="sites-1-depth_mm"' in summary[1]
    # below the save status line, and no "Nothing was saved" box above it
    assert html.index('id="save-status"') < html.index('id="sign-problems"')
    assert "Nothing was saved:" not in html[: html.index('id="save-status"')]
    site = html.split('id="site-1"', 1)[1].split("</li>", 1)[0]
    assert 'class="error"' in site  # and at the site concerned
    assert "Kept text." in html
    assert "/static/field_state.js" in html


def test_an_empty_note_refused_at_signing_comes_back_with_the_reason(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    client = _web(engine, clinic)
    episode_id = _open_episode(clinic)
    page = client.get(f"/episodes/{episode_id}/sessions/new").text
    data = {
        "csrf": _csrf(page),
        "episode_id": str(episode_id),
        "started_at": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "intent": "sign",
    }
    r = client.post(f"/episodes/{episode_id}/sessions", data=data, follow_redirects=False)
    assert r.status_code == 303
    confirm = client.get(r.headers["location"]).text
    version = re.search(r'name="version" value="(\d+)"', confirm)
    assert version
    refused = client.post(
        r.headers["location"], data={"csrf": _csrf(confirm), "version": version[1]}
    )
    assert refused.status_code == 400
    assert "an empty note cannot be signed" in refused.text
    assert refused.text.index('id="save-status"') < refused.text.index('id="sign-problems"')


def test_a_draft_is_discarded_from_its_page_after_a_confirmation(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    client = _web(engine, clinic)
    draft = _note(clinic)
    note = client.get(f"/sessions/{draft.id}").text
    assert f'href="/sessions/{draft.id}/discard"' in note
    confirm = client.get(f"/sessions/{draft.id}/discard").text
    assert "Discard this draft?" in confirm
    version = re.search(r'name="version" value="(\d+)"', confirm)
    assert version
    r = client.post(
        f"/sessions/{draft.id}/discard",
        data={"csrf": _csrf(confirm), "version": version[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get(f"/sessions/{draft.id}").status_code == 404
    assert _audit_count(engine, clinic.owner.clinic_id, AuditAction.SESSION_DISCARDED) == 1
