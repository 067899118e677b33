"""Who did it, and what a signed note still takes (issue 14, items 8 and 9), on both
databases.

- The acting user is the clinician of record: naming a trained colleague as the note's
  clinician does not get an untrained clinician past the clinic's credential block (nor
  anyone past anything); an episode's clinician is its opener unless the owner assigns a
  licensed colleague.
- After signing, only amendments: no measurement joins a signed note, and a draft of a
  closed episode is frozen (no edit, no sign, nothing added); a closed episode takes no
  new measurement or medication entry."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from needlepoint.actions import credentials, episodes, patients, sessions
from needlepoint.adapters.db import tables as t
from needlepoint.domain.commands import AddTrainingRecord, CloseEpisode, UpdateClinicSettings
from needlepoint.domain.enums import AuditAction, CredentialPolicy, Role
from needlepoint.domain.errors import InvalidInput, PermissionDenied
from tests.conftest import Api, ClinicFixture
from tests.factories import episode_cmd, patient_cmd, session_body, session_cmd
from tests.integration.test_accounts import new_user
from tests.integration.test_api import new_session

NOTE_TABLES = ("sessions", "needling_sites", "measurements", "co_interventions", "episodes")


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            n: conn.execute(
                sa.select(sa.func.count()).select_from(t.metadata.tables[n])
            ).scalar_one()
            for n in NOTE_TABLES
        }


def denials(engine: sa.Engine, what: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(
                t.audit_events.c.action == AuditAction.ACCESS_DENIED,
                t.audit_events.c.entity_type == what,
            )
        ).scalar_one()


def block_untrained(clinic: ClinicFixture) -> None:
    credentials.update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=1, credential_policy=CredentialPolicy.BLOCK),
    )


# -- item 8: the clinician of record ------------------------------------------------------


def test_an_untrained_clinician_cannot_record_a_note_in_a_trained_colleagues_name(
    clinic: ClinicFixture,
) -> None:
    trained = new_user(clinic)
    credentials.add_training_record(
        clinic.uow(),
        clinic.as_owner,
        AddTrainingRecord(
            user_id=trained.id,
            provider="Course Co",
            course="DN 1",
            hours_in_person=54,
            completed_on=date(2025, 1, 1),
            exam_passed=True,
        ),
    )
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    clinic.prepare_needling(patient.id)
    block_untrained(clinic)
    before = counts(clinic.engine)
    # Blocked as themselves ...
    with pytest.raises(Exception, match="training") as own:
        sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    assert own.type.__name__ == "SafetyRefusal"
    # ... and refused when naming the trained colleague, by anyone (the owner included).
    spoofed = session_cmd(episode.id, clinician_id=str(trained.id))
    for actor in (clinic.as_clinician, clinic.as_owner):
        with pytest.raises(PermissionDenied) as err:
            sessions.record_session(clinic.uow(), actor, spoofed)
        assert err.value.field == "clinician_id"
    assert counts(clinic.engine) == before
    assert denials(clinic.engine, "clinician_of_record") == 2
    # The trained colleague records their own note; naming oneself is the same as not naming.
    mine = sessions.record_session(
        clinic.uow(), clinic.actor(trained), session_cmd(episode.id, clinician_id=str(trained.id))
    )
    assert mine.clinician_id == trained.id


def test_through_the_api_the_clinician_id_of_a_note_is_the_caller(api: Api) -> None:
    note = new_session(api)
    colleague = new_user(api.clinic)
    body = session_body(note["episode_id"], clinician_id=str(colleague.id))
    r = api.client.post("/api/v1/sessions", json=body, headers=api.headers())
    assert r.status_code == 403
    assert r.json()["errors"][0]["field"] == "clinician_id"
    # An edit cannot change the clinician of record either: the field is not accepted.
    edit = {k: v for k, v in body.items() if k != "episode_id"}
    put = api.client.put(
        f"/api/v1/sessions/{note['id']}", json=edit, headers=api.headers(**{"If-Match": '"1"'})
    )
    assert put.status_code == 422
    stored = api.client.get(f"/api/v1/sessions/{note['id']}", headers=api.headers()).json()
    assert stored["session"]["clinician_id"] == str(api.clinic.clinician.id)


def test_an_episodes_clinician_is_its_opener_unless_the_owner_assigns_a_licensed_colleague(
    clinic: ClinicFixture,
) -> None:
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    colleague = new_user(clinic)
    naming = episode_cmd(patient.id, clinician_id=colleague.id)
    with pytest.raises(PermissionDenied) as err:
        episodes.open_episode(clinic.uow(), clinic.as_clinician, naming)
    assert err.value.field == "clinician_id"
    assigned = episodes.open_episode(clinic.uow(), clinic.as_owner, naming)
    assert assigned.clinician_id == colleague.id
    for who in (new_user(clinic, Role.STUDENT), clinic.assistant, new_user(clinic, Role.AUDITOR)):
        with pytest.raises(InvalidInput) as bad:
            episodes.open_episode(
                clinic.uow(), clinic.as_owner, episode_cmd(patient.id, clinician_id=who.id)
            )
        assert bad.value.field == "clinician_id"
    own = episodes.open_episode(
        clinic.uow(), clinic.as_clinician, episode_cmd(patient.id, clinician_id=clinic.clinician.id)
    )
    assert own.clinician_id == clinic.clinician.id


# -- item 9: after signing, only amendments ---------------------------------------------


def _measurement(patient_id: str, **more: Any) -> dict[str, Any]:
    return {"patient_id": patient_id, "instrument_id": "nprs", "answers": {"item1": 2}, **more}


def test_nothing_is_added_to_a_signed_note(api: Api) -> None:
    note = new_session(api)
    signed = api.client.post(
        f"/api/v1/sessions/{note['id']}/sign", headers=api.headers(**{"If-Match": '"1"'})
    )
    assert signed.status_code == 200
    before = api.client.get(f"/api/v1/sessions/{note['id']}", headers=api.headers()).json()
    rows = counts(api.clinic.engine)
    for body in (
        _measurement(note["patient_id"], session_id=note["id"]),
        _measurement(note["patient_id"], session_id=note["id"], episode_id=note["episode_id"]),
    ):
        r = api.client.post("/api/v1/measurements", json=body, headers=api.headers())
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["field"] == "session_id"
    put = api.client.put(
        f"/api/v1/sessions/{note['id']}",
        json={k: v for k, v in session_body(note["episode_id"]).items() if k != "episode_id"},
        headers=api.headers(**{"If-Match": '"2"'}),
    )
    assert put.status_code == 409
    after = api.client.get(f"/api/v1/sessions/{note['id']}", headers=api.headers()).json()
    assert after == before
    assert counts(api.clinic.engine) == rows
    amended = api.client.post(
        f"/api/v1/sessions/{note['id']}/amendments",
        json={"reason": "follow-up score", "text": "NPRS 2/10 on the phone next day"},
        headers=api.headers(),
    )
    assert amended.status_code == 201  # the way to add to a signed note


def test_a_measurement_joins_a_draft_of_its_own_episode_only(api: Api) -> None:
    note = new_session(api)
    other_episode = api.client.post(
        "/api/v1/episodes",
        json={
            "patient_id": note["patient_id"],
            "condition": "low_back_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
        headers=api.headers(),
    ).json()
    wrong = _measurement(note["patient_id"], session_id=note["id"], episode_id=other_episode["id"])
    r = api.client.post("/api/v1/measurements", json=wrong, headers=api.headers())
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "episode_id"
    fine = api.client.post(
        "/api/v1/measurements",
        json=_measurement(note["patient_id"], session_id=note["id"]),
        headers=api.headers(),
    )
    assert fine.status_code == 201, fine.text
    assert fine.json()["episode_id"] == note["episode_id"]  # filed under the note's episode


def test_a_closed_episodes_draft_is_frozen_and_the_episode_takes_nothing_new(
    api: Api, clinic: ClinicFixture
) -> None:
    note = new_session(api)
    episode = api.client.get(f"/api/v1/episodes/{note['episode_id']}", headers=api.headers())
    closed = api.client.post(
        f"/api/v1/episodes/{note['episode_id']}/close",
        json={"closed_on": "2026-03-01", "discharge_reason": "goals met"},
        headers=api.headers(**{"If-Match": episode.headers["ETag"]}),
    )
    assert closed.status_code == 200, closed.text
    rows = counts(api.clinic.engine)
    edit = {k: v for k, v in session_body(note["episode_id"]).items() if k != "episode_id"}
    attempts = [
        ("PUT", f"/api/v1/sessions/{note['id']}", edit, {"If-Match": '"1"'}),
        ("POST", f"/api/v1/sessions/{note['id']}/sign", None, {"If-Match": '"1"'}),
        ("POST", "/api/v1/sessions", session_body(note["episode_id"]), {}),
        (
            "POST",
            "/api/v1/measurements",
            _measurement(note["patient_id"], session_id=note["id"]),
            {},
        ),
        (
            "POST",
            "/api/v1/measurements",
            _measurement(note["patient_id"], episode_id=note["episode_id"]),
            {},
        ),
        (
            "POST",
            "/api/v1/medications",
            {
                "patient_id": note["patient_id"],
                "episode_id": note["episode_id"],
                "drug": "ibuprofen",
                "drug_class": "nsaid",
                "days_per_week": 2,
                "recorded_on": "2026-03-02",
            },
            {},
        ),
    ]
    for method, url, body, extra in attempts:
        r = api.client.request(method, url, json=body, headers=api.headers(**extra))
        assert r.status_code == 409, (method, url, r.status_code, r.text)
    assert counts(api.clinic.engine) == rows
    stored = api.client.get(f"/api/v1/sessions/{note['id']}", headers=api.headers()).json()
    assert stored["session"]["status"] == "draft"
    # A follow-up after discharge is the patient's, without the episode.
    follow_up = api.client.post(
        "/api/v1/measurements", json=_measurement(note["patient_id"]), headers=api.headers()
    )
    assert follow_up.status_code == 201


def test_the_actions_refuse_a_closed_episodes_draft_too(clinic: ClinicFixture) -> None:
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    clinic.prepare_needling(patient.id)
    draft = sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    episodes.close_episode(
        clinic.uow(),
        clinic.as_clinician,
        CloseEpisode(
            episode_id=episode.id,
            expected_version=episode.version,
            closed_on=date(2026, 3, 1),
            discharge_reason="moved away",
        ),
    )
    from needlepoint.domain.commands import SignSession
    from needlepoint.domain.errors import RecordLocked

    with pytest.raises(RecordLocked) as err:
        sessions.sign_session(
            clinic.uow(),
            clinic.as_clinician,
            SignSession(session_id=draft.id, expected_version=draft.version),
        )
    assert err.value.field == "session_id"
    assert "closed" in err.value.detail


def test_an_untrained_colleague_cannot_put_needling_into_a_trained_clinicians_draft(
    api: Api,
) -> None:
    """The same class through an edit: the draft stays in its clinician's name, so the
    editor's own credentials are checked too."""
    trained = new_user(api.clinic)
    credentials.add_training_record(
        api.clinic.uow(),
        api.clinic.as_owner,
        AddTrainingRecord(
            user_id=trained.id,
            provider="Course Co",
            course="DN 1",
            hours_in_person=54,
            completed_on=date(2025, 1, 1),
            exam_passed=True,
        ),
    )
    from needlepoint.actions.clinics import issue_operator_token
    from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork

    theirs = {
        "Authorization": "Bearer "
        + issue_operator_token(SqlUnitOfWork(api.clinic.engine), trained, "t", source="test")
    }
    note = new_session(api)  # opens the episode; prepares screening and consent
    block_untrained(api.clinic)
    body = session_body(note["episode_id"])
    draft = api.client.post("/api/v1/sessions", json=body, headers=theirs)
    assert draft.status_code == 201, draft.text
    edit = {k: v for k, v in body.items() if k != "episode_id"}
    edit["subjective"] = "edited by an untrained colleague"
    r = api.client.put(
        f"/api/v1/sessions/{draft.json()['id']}",
        json=edit,
        headers=api.headers(**{"If-Match": '"1"'}),  # the untrained test clinician
    )
    assert r.status_code == 422, r.text
    assert "clinician_id" in {e["field"] for e in r.json()["errors"]}
    stored = api.client.get(f"/api/v1/sessions/{draft.json()['id']}", headers=theirs).json()
    assert stored["session"]["subjective"] == body["subjective"]
    # The trained clinician edits their own draft as before.
    own = api.client.put(
        f"/api/v1/sessions/{draft.json()['id']}",
        json=edit,
        headers={**theirs, "If-Match": '"1"'},
    )
    assert own.status_code == 200, own.text
