"""Before any needle goes in: the write path refuses needling for a contraindicated
patient or site, without consent, or by a practitioner short of the clinic's rules; each
refusal names its rule and source, nothing is written, and codes are derived on signing.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from needlepoint.actions import (
    clinics,
    consent,
    credentials,
    episodes,
    patients,
    screening,
    sessions,
)
from needlepoint.actions.context import Actor
from needlepoint.domain.commands import (
    RegisterUser,
    SignSession,
    UpdateClinicSettings,
    WithdrawConsent,
)
from needlepoint.domain.entities import Session
from needlepoint.domain.enums import CredentialPolicy, Role, ScreeningDecision
from needlepoint.domain.errors import InvalidInput, PermissionDenied, SafetyRefusal
from tests.conftest import Api, ClinicFixture
from tests.factories import (
    SCREENED,
    consent_cmd,
    episode_cmd,
    patient_cmd,
    screening_body,
    screening_cmd,
    session_cmd,
    site,
)
from tests.integration.test_actions import audit_actions, counts


def patient_with_episode(clinic: ClinicFixture) -> tuple[Any, Any]:
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    return patient, episode


def refusal(clinic: ClinicFixture, actor: Actor, cmd: Any) -> SafetyRefusal:
    """Record the note, expecting a refusal that leaves every table as it was."""
    before = counts(clinic)
    with pytest.raises(SafetyRefusal) as err:
        sessions.record_session(clinic.uow(), actor, cmd)
    assert counts(clinic) == before
    assert err.value.errors
    for error in err.value.errors:
        assert error["rule"]
        assert "message" in error
    return err.value


def test_needling_without_a_screening_or_consent_is_refused(clinic: ClinicFixture) -> None:
    _, episode = patient_with_episode(clinic)
    err = refusal(clinic, clinic.as_clinician, session_cmd(episode.id))
    assert {e["rule"] for e in err.errors or []} == {"screening_missing", "consent_missing"}


def test_a_note_without_needling_needs_no_screening(clinic: ClinicFixture) -> None:
    _, episode = patient_with_episode(clinic)
    note = sessions.record_session(
        clinic.uow(), clinic.as_clinician, session_cmd(episode.id, sites=[])
    )
    assert note.safety_flags == []


def test_a_contraindicated_patient_cannot_be_needled_and_the_reason_is_cited(
    clinic: ClinicFixture,
) -> None:
    patient, episode = patient_with_episode(clinic)
    answers = screening_body(needle_phobia=True)["answers"]
    screened = screening.record_screening(
        clinic.uow(), clinic.as_clinician, screening_cmd(patient.id, answers=answers)
    )
    assert screened.decision is ScreeningDecision.CONTRAINDICATED
    consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(patient.id))
    err = refusal(clinic, clinic.as_clinician, session_cmd(episode.id))
    (error,) = err.errors or []
    assert error["rule"] == "needle_phobia"
    assert "cannot be overridden" in error["message"]
    assert error["sources"][0]["id"] == "mcevoy_2012"
    # Overriding at a site does not help: absolute means absolute.
    overriding = session_cmd(episode.id, sites=[site(override_reason="Patient insists")])
    refusal(clinic, clinic.as_clinician, overriding)


def test_precautions_must_be_acknowledged_before_the_screening_is_recorded(
    clinic: ClinicFixture,
) -> None:
    patient, _ = patient_with_episode(clinic)
    answers = screening_body(anticoagulants=True)["answers"]
    before = audit_actions(clinic)
    with pytest.raises(InvalidInput) as err:
        screening.record_screening(
            clinic.uow(), clinic.as_clinician, screening_cmd(patient.id, answers=answers)
        )
    assert err.value.field == "acknowledged_precautions"
    assert "Pain Res Manag 2022" in err.value.detail
    assert audit_actions(clinic) == before
    recorded = screening.record_screening(
        clinic.uow(),
        clinic.as_clinician,
        screening_cmd(patient.id, answers=answers, acknowledged_precautions=["anticoagulants"]),
    )
    assert recorded.decision is ScreeningDecision.PRECAUTIONS
    assert recorded.acknowledged == ["anticoagulants"]


def test_a_screening_expires_and_a_new_one_supersedes_it(clinic: ClinicFixture) -> None:
    patient, episode = patient_with_episode(clinic)
    clinic.prepare_needling(patient.id)  # screened 2026-02-01, valid 90 days
    late = SCREENED + timedelta(days=90)
    err = refusal(clinic, clinic.as_clinician, session_cmd(episode.id, started_at=late))
    assert [e["rule"] for e in err.errors or []] == ["screening_expired"]
    screening.record_screening(
        clinic.uow(), clinic.as_clinician, screening_cmd(patient.id, screened_at=late)
    )
    sessions.record_session(
        clinic.uow(), clinic.as_clinician, session_cmd(episode.id, started_at=late)
    )


def test_a_withdrawn_consent_stops_further_needling(clinic: ClinicFixture) -> None:
    patient, episode = patient_with_episode(clinic)
    screening.record_screening(clinic.uow(), clinic.as_clinician, screening_cmd(patient.id))
    given = consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(patient.id))
    withdrawn_at = datetime(2026, 2, 10, tzinfo=UTC)
    consent.withdraw_consent(
        clinic.uow(),
        clinic.as_clinician,
        WithdrawConsent(
            consent_id=given.id, expected_version=given.version, withdrawn_at=withdrawn_at
        ),
    )
    earlier = session_cmd(episode.id, started_at=withdrawn_at - timedelta(days=2))
    sessions.record_session(clinic.uow(), clinic.as_clinician, earlier)
    later = session_cmd(episode.id, started_at=withdrawn_at + timedelta(days=1))
    err = refusal(clinic, clinic.as_clinician, later)
    assert [e["rule"] for e in err.errors or []] == ["consent_withdrawn"]


def test_a_lymphoedematous_limb_is_refused_at_that_site_only(clinic: ClinicFixture) -> None:
    patient, episode = patient_with_episode(clinic)
    answers = screening_body(lymphoedema=True)["answers"]
    screening.record_screening(
        clinic.uow(),
        clinic.as_clinician,
        screening_cmd(
            patient.id,
            answers=answers,
            lymphoedema_areas=["upper_limb:left"],
            acknowledged_precautions=["lymphoedema"],
        ),
    )
    consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(patient.id))
    note = session_cmd(
        episode.id,
        sites=[
            site("upper_trapezius"),
            site("brachioradialis", side="left"),
            site("supinator", side="right"),
        ],
    )
    err = refusal(clinic, clinic.as_clinician, note)
    assert [e["field"] for e in err.errors or []] == ["sites.1.muscle_id"]
    fine = session_cmd(episode.id, sites=[site("upper_trapezius"), site("supinator", side="right")])
    recorded = sessions.record_session(clinic.uow(), clinic.as_clinician, fine)
    assert any(
        (f["rule"], f["action"], f["site"]) == ("thorax_pneumothorax", "warn", 0)
        for f in recorded.safety_flags
    )


def test_an_unqualified_clinician_is_warned_or_blocked_as_the_clinic_decides(
    clinic: ClinicFixture,
) -> None:
    patient, episode = patient_with_episode(clinic)
    clinic.prepare_needling(patient.id)
    # The test clinician has no training on record: a warning by default ...
    warned = sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    assert {"rule": "no_training", "action": "warn", "site": None} in warned.safety_flags
    # ... and a refusal once the owner sets the clinic to block.
    clinic_row = credentials.update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=1, credential_policy=CredentialPolicy.BLOCK),
    )
    assert clinic_row.credential_policy is CredentialPolicy.BLOCK
    err = refusal(clinic, clinic.as_clinician, session_cmd(episode.id))
    assert err.errors
    assert err.errors[0]["field"] == "clinician_id"
    assert err.errors[0]["rule"] == "no_training"


def test_only_the_owner_changes_clinic_settings_and_stale_versions_are_refused(
    clinic: ClinicFixture,
) -> None:
    with pytest.raises(PermissionDenied):
        credentials.update_clinic_settings(
            clinic.uow(),
            clinic.as_clinician,
            UpdateClinicSettings(expected_version=1, screening_valid_days=30),
        )
    credentials.update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=1, jurisdiction="us-va"),
    )
    from needlepoint.domain.errors import StaleVersion

    with pytest.raises(StaleVersion):
        credentials.update_clinic_settings(
            clinic.uow(),
            clinic.as_owner,
            UpdateClinicSettings(expected_version=1, jurisdiction="none"),
        )
    with pytest.raises(InvalidInput) as err:
        credentials.update_clinic_settings(
            clinic.uow(),
            clinic.as_owner,
            UpdateClinicSettings(expected_version=2, jurisdiction="mars"),
        )
    assert err.value.field == "jurisdiction"


def test_virginia_requires_the_consent_copy_to_be_given(clinic: ClinicFixture) -> None:
    patient, episode = patient_with_episode(clinic)
    credentials.update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=1, jurisdiction="us-va"),
    )
    screening.record_screening(clinic.uow(), clinic.as_clinician, screening_cmd(patient.id))
    consent.record_consent(
        clinic.uow(), clinic.as_clinician, consent_cmd(patient.id, copy_given=False)
    )
    err = refusal(clinic, clinic.as_clinician, session_cmd(episode.id))
    assert "consent_copy_required" in {e["rule"] for e in err.errors or []}


def sign(clinic: ClinicFixture, note: Session, actor: Actor | None = None) -> Session:
    return sessions.sign_session(
        clinic.uow(),
        actor or clinic.as_clinician,
        SignSession(session_id=note.id, expected_version=note.version),
    )


def test_signing_derives_the_cpt_code_from_distinct_muscles(clinic: ClinicFixture) -> None:
    patient, episode = patient_with_episode(clinic)
    clinic.prepare_needling(patient.id)
    four = sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    assert four.cpt_code is None  # derived on signing, not before
    signed = sign(clinic, four)
    assert (signed.cpt_code, signed.billing_muscles) == ("20561", 4)
    two_sides = session_cmd(
        episode.id,
        sites=[site("splenius_capitis", side="left"), site("splenius_capitis", side="right")],
    )
    one_muscle = sign(clinic, sessions.record_session(clinic.uow(), clinic.as_clinician, two_sides))
    assert (one_muscle.cpt_code, one_muscle.billing_muscles) == ("20560", 1)
    credentials.update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=1, bill_sides_separately=True),
    )
    counted_twice = sign(
        clinic, sessions.record_session(clinic.uow(), clinic.as_clinician, two_sides)
    )
    assert counted_twice.billing_muscles == 2
    none = sign(
        clinic,
        sessions.record_session(
            clinic.uow(), clinic.as_clinician, session_cmd(episode.id, sites=[])
        ),
    )
    assert none.cpt_code is None


def test_a_students_note_is_co_signed_by_a_licensed_clinician(clinic: ClinicFixture) -> None:
    student = clinics.register_user(
        clinic.uow(),
        clinic.as_owner,
        RegisterUser(
            email=f"student-{clinic.owner.id.hex[:6]}@test.example",
            full_name="Sam Student",
            role=Role.STUDENT,
        ),
    )
    as_student = clinic.actor(student)
    patient, episode = patient_with_episode(clinic)
    clinic.prepare_needling(patient.id)
    note = sessions.record_session(clinic.uow(), as_student, session_cmd(episode.id))
    assert not [f for f in note.safety_flags if f["rule"] == "no_training"]  # supervised
    with pytest.raises(PermissionDenied):
        sign(clinic, note, as_student)
    cosigned = sign(clinic, note)
    assert cosigned.clinician_id == student.id
    assert cosigned.signed_by == clinic.clinician.id


def test_screening_consent_and_training_are_each_one_audited_action(clinic: ClinicFixture) -> None:
    patient, _ = patient_with_episode(clinic)
    before = audit_actions(clinic)
    screening.record_screening(clinic.uow(), clinic.as_clinician, screening_cmd(patient.id))
    consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(patient.id))
    from needlepoint.domain.commands import AddTrainingRecord

    credentials.add_training_record(
        clinic.uow(),
        clinic.as_owner,
        AddTrainingRecord(
            user_id=clinic.clinician.id,
            provider="Course Co",
            course="DN 1",
            hours_in_person=27,
            completed_on=date(2025, 1, 1),
            exam_passed=True,
            regions=["neck"],
        ),
    )
    added = audit_actions(clinic)[len(before) :]
    assert sorted(added) == sorted(
        ["screening.recorded", "consent.recorded", "user.training_recorded"]
    )


# --- the API ---------------------------------------------------------------------------


def test_the_api_previews_and_records_a_screening_naming_what_to_acknowledge(api: Api) -> None:
    h = api.headers()
    q = api.client.get("/api/v1/screening/questionnaire", headers=h).json()
    assert {x["category"] for x in q["questions"]} == {"absolute", "site", "precaution"}
    answers = screening_body(diabetes=True)
    preview = api.client.post("/api/v1/screening/evaluate", json=answers, headers=h).json()
    assert preview["decision"] == "precautions"
    assert preview["to_acknowledge"] == ["diabetes"]
    patient = api.client.post(
        "/api/v1/patients",
        json={
            "mrn": "SCR-1",
            "given_name": "A",
            "family_name": "B",
            "birth_date": "1970-01-01",
            "sex": "male",
        },
        headers=h,
    ).json()
    missing = api.client.post(
        f"/api/v1/patients/{patient['id']}/screenings", json=answers, headers=h
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "acknowledged_precautions"
    ok = api.client.post(
        f"/api/v1/patients/{patient['id']}/screenings",
        json={**answers, "acknowledged_precautions": ["diabetes"]},
        headers=h,
    )
    assert ok.status_code == 201, ok.text
    listed = api.client.get(f"/api/v1/patients/{patient['id']}/screenings", headers=h).json()
    assert [s["decision"] for s in listed] == ["precautions"]
    desk = api.client.get(
        f"/api/v1/patients/{patient['id']}/screenings", headers=api.headers("assistant")
    )
    assert desk.status_code == 403


def test_a_refused_site_comes_back_as_a_problem_naming_the_site_rule_and_source(api: Api) -> None:
    h = api.headers()
    patient = api.client.post(
        "/api/v1/patients",
        json={
            "mrn": "THX-1",
            "given_name": "A",
            "family_name": "B",
            "birth_date": "1970-01-01",
            "sex": "female",
        },
        headers=h,
    ).json()
    episode = api.client.post(
        "/api/v1/episodes",
        json={
            "patient_id": patient["id"],
            "condition": "neck_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
        headers=h,
    ).json()
    api.prepare_needling(patient["id"])
    from tests.factories import session_body

    body = session_body(
        episode["id"],
        sites=[site("rhomboid_major", side="left"), site("rhomboid_major", side="right")],
    )
    r = api.client.post("/api/v1/sessions", json=body, headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    (error,) = r.json()["errors"]
    assert error["field"] == "sites.1.override_reason"
    assert error["rule"] == "bilateral_thorax"
    assert error["sources"][0]["verified"] is True
    status = api.client.get(f"/api/v1/patients/{patient['id']}/needling-status", headers=h).json()
    assert status["blockers"] == [] or status["blockers"] == ["no current screening"]


def test_catalogue_conditions_consent_and_credentials_are_published(api: Api) -> None:
    h = api.headers()
    found = api.client.get("/api/v1/muscles", params={"q": "scm"}, headers=h).json()
    assert [m["id"] for m in found] == ["sternocleidomastoid"]
    muscle = api.client.get("/api/v1/muscles/sternocleidomastoid", headers=h).json()
    assert {c["rule"] for c in muscle["cautions"]} == {
        "anterior_neck",
        "carotid",
        "spinal_accessory_nerve",
    }
    assert api.client.get("/api/v1/muscles/paraspinals", headers=h).status_code == 404
    conditions = api.client.get("/api/v1/conditions", headers=h).json()
    neck = next(c for c in conditions if c["condition"]["id"] == "neck_pain")
    assert neck["icd10_suggestions"][0]["code"] == "M54.2"
    assert neck["icd10_suggestions"][0]["sources"][0]["verified"] is True
    template = api.client.get("/api/v1/consent-templates/dry_needling/1.0", headers=h).json()
    assert "not acupuncture" in template["text"]
    clinic = api.client.get("/api/v1/clinic", headers=h)
    assert clinic.json()["screening_valid_days"] == 90
    changed = api.client.patch(
        "/api/v1/clinic",
        json={"jurisdiction": "us-va"},
        headers=api.headers("owner", **{"If-Match": clinic.headers["etag"]}),
    )
    assert changed.status_code == 200, changed.text
    stale = api.client.patch(
        "/api/v1/clinic",
        json={"jurisdiction": "none"},
        headers=api.headers("owner", **{"If-Match": clinic.headers["etag"]}),
    )
    assert stale.status_code == 412
    creds = api.client.get(f"/api/v1/users/{api.clinic.clinician.id}/credentials", headers=h).json()
    assert creds["jurisdiction"] == "us-va"
    assert creds["required_hours"] == 54
    assert not creds["meets_rules"]
    other = api.client.get(
        f"/api/v1/users/{api.clinic.owner.id}/credentials", headers=api.headers("assistant")
    )
    assert other.status_code == 403


def test_every_refusal_names_a_rule_and_a_source(clinic: ClinicFixture) -> None:
    _, episode = patient_with_episode(clinic)
    credentials.update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=1, credential_policy=CredentialPolicy.BLOCK),
    )
    err = refusal(clinic, clinic.as_clinician, session_cmd(episode.id))
    assert {e["rule"] for e in err.errors or []} == {
        "screening_missing",
        "consent_missing",
        "no_training",
    }
    for error in err.errors or []:
        assert error["sources"], error["rule"]
        assert all(s["citation"] for s in error["sources"])


def test_a_command_rule_broken_inside_a_route_is_a_422_naming_the_field(api: Api) -> None:
    """Found by the fuzzer: a negative number of supervised sessions was a server error."""
    r = api.client.post(
        f"/api/v1/users/{api.clinic.clinician.id}/training",
        json={
            "provider": "P",
            "course": "C",
            "hours_in_person": 1,
            "completed_on": "2025-01-01",
            "exam_passed": True,
            "supervised_sessions": -1,
        },
        headers=api.headers("owner"),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "supervised_sessions"
