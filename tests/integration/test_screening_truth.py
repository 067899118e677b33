"""Issue 13 items 5, 6, 7 and 10 through the API, on SQLite and PostgreSQL: the screening
takes age and sex from the record (a minor is flagged and needs a guardian's consent; no
pregnancy question for a man), pregnancy, surgery and implants have consequences at the
needling site, and a contraindication never silently disappears. Every refusal is a 422
naming the field, and nothing is written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from needlepoint.domain.screening import age_on
from tests.conftest import Api
from tests.factories import SCREENED, consent_body, screening_body, session_body, site
from tests.integration.test_actions import counts

TODAY = datetime.now(UTC).date()


def years_ago(years: int, days: int = 0) -> str:
    day = (
        TODAY.replace(year=TODAY.year - years)
        if (TODAY.month, TODAY.day) != (2, 29)
        else (date(TODAY.year - years, 3, 1))
    )
    return (day + timedelta(days=days)).isoformat()


def patient(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {
        "mrn": f"TRUTH-{len(counts(api.clinic))}-{datetime.now(UTC).timestamp()}",
        "given_name": "Robin",
        "family_name": "Record",
        "birth_date": "1985-04-02",
        "sex": "female",
        **overrides,
    }
    r = api.client.post("/api/v1/patients", json=body, headers=api.headers())
    assert r.status_code == 201, r.text
    return r.json()


def episode(api: Api, patient_id: str) -> str:
    r = api.client.post(
        "/api/v1/episodes",
        json={
            "patient_id": patient_id,
            "condition": "low_back_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def screen(api: Api, patient_id: str, body: dict[str, Any], at: datetime = SCREENED) -> Any:
    return api.client.post(
        f"/api/v1/patients/{patient_id}/screenings",
        json={**body, "screened_at": at.isoformat()},
        headers=api.headers(),
    )


def refused(api: Api, response: Any, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    problem: dict[str, Any] = response.json()
    fields = [e.get("field") for e in problem.get("errors", [])] + [problem.get("field")]
    assert field in fields, problem
    return problem


def unchanged(api: Api, before: dict[str, int]) -> None:
    assert counts(api.clinic) == before


def consented(api: Api, patient_id: str, **overrides: Any) -> None:
    r = api.client.post(
        f"/api/v1/patients/{patient_id}/consents",
        json=consent_body(**overrides),
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text


# --- item 5: age from the date of birth, guardians, no pregnancy question for a man -------


def test_a_minor_is_flagged_from_the_date_of_birth_and_needs_a_guardians_consent(
    api: Api,
) -> None:
    teen = patient(api, birth_date=years_ago(15))
    q = api.client.get(
        f"/api/v1/screening/questionnaire?patient_id={teen['id']}", headers=api.headers()
    ).json()
    assert "child" not in {x["id"] for x in q["questions"]}
    before = counts(api.clinic)
    refused(api, screen(api, teen["id"], screening_body()), "acknowledged_precautions")
    unchanged(api, before)
    r = screen(api, teen["id"], {**screening_body(), "acknowledged_precautions": ["minor"]})
    assert r.status_code == 201, r.text
    assert [x["rule"] for x in r.json()["reasons"]] == ["minor"]
    # The age on the screening date (SCREENED), not today: computed from the birth date.
    expected = age_on(date.fromisoformat(teen["birth_date"]), SCREENED.date())
    assert (
        f"Minor ({expected} years old on the screening date)" in r.json()["reasons"][0]["message"]
    )
    before = counts(api.clinic)
    r = api.client.post(
        f"/api/v1/patients/{teen['id']}/consents", json=consent_body(), headers=api.headers()
    )
    refused(api, r, "signer_relationship")
    unchanged(api, before)
    r = api.client.post(
        f"/api/v1/patients/{teen['id']}/consents",
        json=consent_body(signer_name="Alex Record", signer_relationship="legal_guardian"),
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["signer_relationship"] == "legal_guardian"


def test_a_patient_turning_18_tomorrow_is_still_a_minor_today(api: Api) -> None:
    almost = patient(api, birth_date=years_ago(18, days=1))
    ev = api.client.post(
        f"/api/v1/screening/evaluate?patient_id={almost['id']}",
        json=screening_body(),
        headers=api.headers(),
    )
    assert ev.status_code == 200, ev.text
    assert ev.json()["to_acknowledge"] == ["minor"]
    adult = patient(api, birth_date=years_ago(18))
    ev = api.client.post(
        f"/api/v1/screening/evaluate?patient_id={adult['id']}",
        json=screening_body(),
        headers=api.headers(),
    )
    assert ev.json()["decision"] == "clear"


def test_a_man_is_not_asked_about_pregnancy_and_a_yes_is_refused(api: Api) -> None:
    man = patient(api, sex="male")
    q = api.client.get(
        f"/api/v1/screening/questionnaire?patient_id={man['id']}", headers=api.headers()
    ).json()
    assert "pregnancy" not in {x["id"] for x in q["questions"]}
    before = counts(api.clinic)
    refused(api, screen(api, man["id"], screening_body(pregnancy=True)), "answers.pregnancy")
    unchanged(api, before)
    answers = {k: v for k, v in screening_body()["answers"].items() if k != "pregnancy"}
    r = screen(api, man["id"], {"answers": answers})
    assert r.status_code == 201, r.text
    assert "pregnancy" not in r.json()["answers"]["answers"]
    woman = patient(api)
    refused(api, screen(api, woman["id"], {"answers": answers}), "answers.pregnancy")


def test_the_retired_child_question_is_refused_by_name(api: Api) -> None:
    p = patient(api)
    body = screening_body()
    body["answers"]["child"] = False
    problem = refused(api, screen(api, p["id"], body), "answers.child")
    assert "date of birth" in str(problem)


# --- items 6 and 7: pregnancy, surgery and implants at the needling site ------------------


def needle(api: Api, episode_id: str, *sites: dict[str, Any]) -> Any:
    return api.client.post(
        "/api/v1/sessions",
        json=session_body(episode_id, sites=list(sites)),
        headers=api.headers(),
    )


@pytest.fixture
def pregnant(api: Api) -> str:
    p = patient(api)
    r = screen(
        api, p["id"], {**screening_body(pregnancy=True), "acknowledged_precautions": ["pregnancy"]}
    )
    assert r.status_code == 201, r.text
    assert "never needle the abdomen" in r.json()["reasons"][0]["message"]
    ep = episode(api, p["id"])
    consented(api, p["id"])
    return ep


def test_pregnancy_refuses_the_abdomen_even_with_a_reason(api: Api, pregnant: str) -> None:
    before = counts(api.clinic)
    reason = "Pelvic girdle pain; side lying, shallow, agreed with the patient."
    overridden = site(
        "rectus_abdominis", override_reason=reason, override_code="technique_modified"
    )
    r = needle(api, pregnant, site("upper_trapezius"), overridden)
    problem = refused(api, r, "sites.1.muscle_id")
    assert "abdominal wall" in str(problem)
    unchanged(api, before)


@pytest.mark.parametrize(
    "lumbopelvic",
    [
        site("quadratus_lumborum"),
        site("piriformis", side="right"),
        site(
            "upper_trapezius",
            electrical_stimulation=True,
            estim_params={"frequency_hz": 2, "minutes": 10},
        ),
    ],
)
def test_pregnancy_needs_a_structured_override_for_the_lower_back_and_electrical_stimulation(
    api: Api, pregnant: str, lumbopelvic: dict[str, Any]
) -> None:
    before = counts(api.clinic)
    refused(api, needle(api, pregnant, lumbopelvic), "sites.0.override_reason")
    reason = "Pelvic girdle pain unresponsive to exercise; side lying, shallow."
    # the same structured override as every other site rule: a reason code as well
    refused(
        api,
        needle(api, pregnant, {**lumbopelvic, "override_reason": reason}),
        "sites.0.override_code",
    )
    unchanged(api, before)
    r = needle(
        api,
        pregnant,
        {**lumbopelvic, "override_reason": reason, "override_code": "technique_modified"},
    )
    assert r.status_code == 201, r.text
    flags = [f for f in r.json()["safety_flags"] if f["action"] == "overridden"]
    assert flags
    assert all(f["override_code"] == "technique_modified" for f in flags)


@pytest.mark.parametrize(
    ("question", "detail", "value", "near", "far"),
    [
        (
            "prosthetic_joint",
            "prosthetic_joints",
            ["knee:left"],
            site("popliteus"),
            site("popliteus", side="right"),
        ),
        (
            "breast_implants",
            "breast_implant_sides",
            ["left"],
            site("pectoralis_major"),
            site("pectoralis_major", side="right"),
        ),
        (
            "recent_surgery",
            "surgery_areas",
            ["lower_limb:left"],
            site("soleus"),
            site("soleus", side="right"),
        ),
    ],
)
def test_surgery_and_implants_need_a_reason_near_the_affected_area_only(
    api: Api,
    question: str,
    detail: str,
    value: list[str],
    near: dict[str, Any],
    far: dict[str, Any],
) -> None:
    p = patient(api)
    body = {
        **screening_body(**{question: True}),
        detail: value,
        "acknowledged_precautions": [question],
    }
    r = screen(api, p["id"], body)
    assert r.status_code == 201, r.text
    ep = episode(api, p["id"])
    consented(api, p["id"])
    before = counts(api.clinic)
    refused(api, needle(api, ep, far, near), "sites.1.override_reason")
    unchanged(api, before)
    assert needle(api, ep, far).status_code == 201
    reason = "Scar and implant located by palpation; needle directed away, strict asepsis."
    overridden = {**near, "override_reason": reason, "override_code": "technique_modified"}
    r = needle(api, ep, overridden)
    assert r.status_code == 201, r.text
    assert [f["override_code"] for f in r.json()["safety_flags"] if f["action"] == "overridden"]


def test_a_surgery_question_without_its_areas_is_refused_by_name(api: Api) -> None:
    p = patient(api)
    before = counts(api.clinic)
    refused(api, screen(api, p["id"], screening_body(other_implant=True)), "implant_areas")
    unchanged(api, before)


# --- item 10: a contraindication cannot silently disappear --------------------------------


def test_clearing_a_contraindication_needs_what_changed_and_why_and_the_chart_shows_it(
    api: Api,
) -> None:
    p = patient(api)
    first = screen(
        api,
        p["id"],
        {
            **screening_body(needle_phobia=True, lymphoedema=True),
            "lymphoedema_areas": ["upper_limb:left"],
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["decision"] == "contraindicated"
    later = SCREENED + timedelta(days=7)
    before = counts(api.clinic)
    problem = refused(api, screen(api, p["id"], screening_body(), later), "clearance")
    assert "Lymphoedema of the left arm" in str(problem)
    assert "Needle phobia" in str(problem)
    unchanged(api, before)
    short = {**screening_body(), "clearance": {"reason": "resolved", "explanation": "better"}}
    refused(api, screen(api, p["id"], short, later), "clearance.explanation")
    unchanged(api, before)
    body = {
        **screening_body(),
        "clearance": {
            "reason": "recorded_in_error",
            "explanation": "The patient confirmed she has no fear of needles and no arm swelling.",
        },
    }
    r = screen(api, p["id"], body, later)
    assert r.status_code == 201, r.text
    cleared = r.json()["clearances"]
    assert {c["finding"] for c in cleared} == {"needle_phobia", "lymphoedema:upper_limb:left"}
    assert all(c["reason"] == "recorded_in_error" for c in cleared)
    # The same answers again clear nothing more: no clearance needed (or allowed).
    again = screen(api, p["id"], screening_body(), later + timedelta(days=1))
    assert again.status_code == 201, again.text
    assert again.json()["clearances"] is None
