"""Issue 13 site rules through the public API, on SQLite and PostgreSQL: each class is
refused or flagged as the rules say, a refusal writes nothing, and every message a
clinician reads is in clinical words."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Api
from tests.factories import SCREENED, consent_body, screening_body, session_body, site
from tests.integration.test_actions import counts

INTERNAL_ID = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b[a-z_]+:[a-z_]+\b")
GOOD_OVERRIDE = {
    "override_reason": "Ultrasound-guided: pleura seen at 32 mm, needle kept at 15 mm",
    "override_code": "imaging_guided",
}
CLEARANCE = {
    "cleared_by": "Dr A. Heart, device clinic",
    "cleared_on": "2026-01-10",
    "document": "Letter of 10 January 2026 in the chart",
}


def chart(api: Api, mrn: str, *, condition: str = "neck_pain") -> tuple[str, str]:
    h = api.headers()
    patient = api.client.post(
        "/api/v1/patients",
        json={
            "mrn": mrn,
            "given_name": "Ada",
            "family_name": "Testperson",
            "birth_date": "1970-01-01",
            "sex": "female",
        },
        headers=h,
    ).json()
    episode = api.client.post(
        "/api/v1/episodes",
        json={
            "patient_id": patient["id"],
            "condition": condition,
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
        headers=h,
    ).json()
    return patient["id"], episode["id"]


def prepare(api: Api, patient_id: str, **extra: Any) -> None:
    """Screen with the given answers (precautions acknowledged) and record consent."""
    yes = {k: v for k, v in extra.items() if isinstance(v, bool)}
    details = {k: v for k, v in extra.items() if not isinstance(v, bool)}
    body = {
        **screening_body(**yes),
        **details,
        "screened_at": SCREENED.isoformat(),
        "acknowledged_precautions": sorted(k for k, v in yes.items() if v),
    }
    h = api.headers()
    r = api.client.post(f"/api/v1/patients/{patient_id}/screenings", json=body, headers=h)
    assert r.status_code == 201, r.text
    r = api.client.post(f"/api/v1/patients/{patient_id}/consents", json=consent_body(), headers=h)
    assert r.status_code == 201, r.text


def post_note(api: Api, episode_id: str, *sites: dict[str, Any]) -> Any:
    body = session_body(episode_id, sites=list(sites))
    return api.client.post("/api/v1/sessions", json=body, headers=api.headers())


def refused(api: Api, episode_id: str, *sites: dict[str, Any]) -> list[dict[str, Any]]:
    """POST the note, expect 422, check nothing was written and no internal id shows."""
    before = counts(api.clinic)
    r = post_note(api, episode_id, *sites)
    assert r.status_code == 422, r.text
    assert counts(api.clinic) == before
    problem = r.json()
    errors: list[dict[str, Any]] = problem.get("errors") or []
    for message in [problem["detail"], *(e["message"] for e in errors)]:
        assert not INTERNAL_ID.search(message), message
    return errors


def recorded(api: Api, episode_id: str, *sites: dict[str, Any]) -> list[dict[str, Any]]:
    r = post_note(api, episode_id, *sites)
    assert r.status_code == 201, r.text
    flags: list[dict[str, Any]] = r.json()["safety_flags"]
    for f in flags:
        if "message" in f:
            assert not INTERNAL_ID.search(f["message"]), f["message"]
    return flags


@pytest.mark.parametrize("place", ["umbilicus", "nipple", "external_genitalia", "eye_orbit"])
def test_a_never_needle_place_is_refused_and_nothing_is_written(api: Api, place: str) -> None:
    patient, episode = chart(api, f"NN-{place}")
    prepare(api, patient)
    (error,) = refused(api, episode, site("upper_trapezius"), site(place, **GOOD_OVERRIDE))
    assert error["field"] == "sites.1.muscle_id"
    assert error["rule"] == place
    assert error["action"] == "refuse"
    assert "never needled" in error["message"]


def test_a_paired_muscle_recorded_as_midline_is_a_422_naming_the_side(api: Api) -> None:
    patient, episode = chart(api, "MID-1")
    prepare(api, patient)
    before = counts(api.clinic)
    r = post_note(api, episode, site("splenius_capitis", side="midline"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "sites.0.side"
    assert counts(api.clinic) == before


def test_an_override_needs_a_code_and_a_real_reason_and_the_owner_reviews_it(api: Api) -> None:
    patient, episode = chart(api, "OVR-1")
    prepare(api, patient)
    left = site("rhomboid_major", side="left")
    right = site("rhomboid_major", side="right")
    (short,) = refused(
        api, episode, left, {**right, "override_reason": "ok", "override_code": "imaging_guided"}
    )
    assert short["field"] == "sites.1.override_reason"
    reason = GOOD_OVERRIDE["override_reason"]
    (no_code,) = refused(api, episode, left, {**right, "override_reason": reason})
    assert no_code["field"] == "sites.1.override_code"
    flags = recorded(api, episode, left, {**right, **GOOD_OVERRIDE})
    (over,) = [f for f in flags if f["action"] == "overridden"]
    assert (over["rule"], over["site"], over["override_code"]) == (
        "bilateral_thorax",
        1,
        "imaging_guided",
    )
    review = api.client.get("/api/v1/overrides", headers=api.headers("owner"))
    assert review.status_code == 200
    (item,) = review.json()
    assert item["muscle"] == "Rhomboid major"
    assert item["side"] == "right"
    assert item["override_code"] == "imaging_guided"
    assert item["override_reason"] == reason
    assert item["overridden"][0].startswith("Rhomboid major (right side): Both sides of the thorax")
    assert api.client.get("/api/v1/overrides", headers=api.headers()).status_code == 403


def test_deeper_than_the_published_safe_depth_over_the_pleura_is_refused(api: Api) -> None:
    patient, episode = chart(api, "DEP-1")
    prepare(api, patient)
    deep = site("rhomboid_major", depth_mm=25)
    (error,) = refused(api, episode, deep)
    assert error["rule"] == "depth_rhomboid_major"
    assert error["field"] == "sites.0.override_reason"
    recorded(api, episode, site("rhomboid_major", depth_mm=18))
    flags = recorded(api, episode, {**deep, **GOOD_OVERRIDE})
    assert any(f["rule"] == "depth_rhomboid_major" and f["action"] == "overridden" for f in flags)


def test_estim_with_an_implanted_device_near_the_chest_is_refused_unless_cleared(
    api: Api,
) -> None:
    patient, episode = chart(api, "DEV-1")
    prepare(api, patient, implanted_electrical_device=True)
    chest = site("pectoralis_major", electrical_stimulation=True)
    arm = site("extensor_carpi_radialis_brevis", electrical_stimulation=True)
    errors = refused(api, episode, chest, {**arm, **GOOD_OVERRIDE})
    assert [(e["rule"], e["field"]) for e in errors] == [
        ("estim_implanted_device", "sites.0.muscle_id"),
        ("estim_implanted_device", "sites.1.muscle_id"),
    ]
    leg = recorded(api, episode, site("soleus", electrical_stimulation=True))
    assert [f["action"] for f in leg if f["rule"].startswith("estim")] == ["warn"]
    cleared_patient, cleared_episode = chart(api, "DEV-2")
    prepare(api, cleared_patient, implanted_electrical_device=True, device_clearance=CLEARANCE)
    flags = recorded(api, cleared_episode, chest)
    (f,) = [f for f in flags if f["rule"].startswith("estim")]
    assert f["rule"] == "estim_device_cleared"
    assert "Dr A. Heart" in f["message"]


def test_a_clearance_without_a_device_is_refused(api: Api) -> None:
    patient, _ = chart(api, "DEV-3")
    body = {**screening_body(), "device_clearance": CLEARANCE}
    r = api.client.post(f"/api/v1/patients/{patient}/screenings", json=body, headers=api.headers())
    assert r.status_code == 422


def test_anticoagulation_is_flagged_and_stored_at_each_site(api: Api) -> None:
    patient, episode = chart(api, "ANT-1")
    prepare(api, patient, anticoagulants=True)
    flags = recorded(api, episode, site("soleus"), site("gluteus_medius", side="right"))
    at = [f for f in flags if f["rule"] == "anticoagulants"]
    assert {f["site"] for f in at} == {0, 1}
    assert all(f["action"] == "precaution" for f in at)
    assert "press firmly" in at[0]["message"]


def test_bilateral_upper_trapezius_in_a_pincer_grip_needs_no_override(api: Api) -> None:
    patient, episode = chart(api, "UT-1")
    prepare(api, patient)
    pincer = {"approach": "pincer"}
    flags = recorded(
        api,
        episode,
        site("upper_trapezius", side="left", **pincer),
        site("upper_trapezius", side="right", **pincer),
    )
    assert not [f for f in flags if f["action"] == "overridden"]
    (error,) = refused(
        api,
        episode,
        site("upper_trapezius", side="left", **pincer),
        site("upper_trapezius", side="right", approach="perpendicular"),
    )
    assert (error["rule"], error["field"]) == ("bilateral_thorax", "sites.1.override_reason")


def test_lymphoedema_is_stated_with_the_limb_in_refusals_and_on_the_status(api: Api) -> None:
    patient, episode = chart(api, "LYM-1")
    prepare(api, patient, lymphoedema=True, lymphoedema_areas=["upper_limb:left"])
    (error,) = refused(api, episode, site("biceps_brachii", side="left"))
    assert error["message"].startswith("Lymphoedema of the left arm: never needle this limb.")
    today = {
        **screening_body(lymphoedema=True),
        "lymphoedema_areas": ["upper_limb:left"],
        "acknowledged_precautions": ["lymphoedema"],
    }  # screened now: the status is of today
    h = api.headers()
    r = api.client.post(f"/api/v1/patients/{patient}/screenings", json=today, headers=h)
    assert r.status_code == 201, r.text
    status = api.client.get(f"/api/v1/patients/{patient}/needling-status", headers=h).json()
    assert [p["message"] for p in status["precautions"]] == [
        "Lymphoedema of the left arm: never needle this limb."
    ]


def test_a_category_header_is_not_a_billable_code(api: Api) -> None:
    h = api.headers()
    patient, _ = chart(api, "ICD-1")
    before = counts(api.clinic)
    r = api.client.post(
        "/api/v1/episodes",
        json={
            "patient_id": patient,
            "condition": "myofascial_pain",
            "icd10_code": "M79.1",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "icd10_code"
    assert "M79.18" in r.json()["detail"]
    assert counts(api.clinic) == before
    offered = {
        s["code"]
        for c in api.client.get("/api/v1/conditions", headers=h).json()
        for s in c["icd10_suggestions"]
    }
    assert "M79.1" not in offered
    assert {"M79.10", "M79.11", "M79.12", "M79.18"} <= offered
