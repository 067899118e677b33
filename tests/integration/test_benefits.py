"""A patient's benefit summary through the API: the measures behind each of the eight
benefits, baseline → latest, responder status, time to first meaningful improvement, the
evidence note, and "not measured" where nothing was measured. Also for the demo clinic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from needlepoint.actions.clinics import issue_operator_token
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.entities import User
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.web import api as api_package
from tests.conftest import Api, make_api, make_clinic
from tests.factories import session_body, site

DAY0 = datetime(2026, 2, 3, 9, 30, tzinfo=UTC)
CERVICAL = {"joint": "cervical_spine", "movement": "rotation", "side": "left"}


def post(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.client.post(f"/api/v1{path}", json=body, headers=api.headers())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def sign(api: Api, session: dict[str, Any]) -> dict[str, Any]:
    """Sign a draft note (only signed notes count towards outcomes)."""
    r = api.client.post(
        f"/api/v1/sessions/{session['id']}/sign",
        headers=api.headers(**{"If-Match": f'"{session["version"]}"'}),
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def documented_model(path: str) -> Any:
    for router in api_package.routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and api_package.PREFIX + route.path == path:
                return route.response_model
    raise AssertionError(f"no route {path}")


def neck_pain_course(api: Api) -> dict[str, Any]:
    """Four weekly sessions, each signed: pain 7 → 6 → 4 → 3, the left upper trapezius
    trigger point resolves, cervical rotation 60° → 72°, NDI 40 % → 20 %, ibuprofen 5 → 1
    days a week, back at work in week 3, GROC +5 at the end."""
    patient = post(
        api,
        "/patients",
        {
            "mrn": "BEN-1",
            "given_name": "Nell",
            "family_name": "Neck",
            "birth_date": "1979-04-01",
            "sex": "female",
        },
    )
    episode = post(
        api,
        "/episodes",
        {
            "patient_id": patient["id"],
            "condition": "neck_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
            "plan": [{"modality": "exercise", "description": "Deep neck flexor training"}],
        },
    )
    api.prepare_needling(patient["id"])
    pain = [7, 6, 4, 3]
    trapezius = ["active", "active", "none", "none"]
    for week in range(4):
        when = DAY0 + timedelta(days=7 * week)
        measurements: list[dict[str, Any]] = [
            {"instrument_id": "nprs", "answers": {"item1": pain[week]}}
        ]
        if week in (0, 3):
            measurements += [
                {
                    "instrument_id": "rom",
                    "answers": {"item1": 60 if week == 0 else 72},
                    "context": CERVICAL,
                },
                {
                    "instrument_id": "ndi",
                    "answers": {f"item{i}": (2 if week == 0 else 1) for i in range(1, 11)},
                },
            ]
        note = post(
            api,
            "/sessions",
            session_body(
                episode["id"],
                started_at=when.isoformat(),
                sites=[
                    site("upper_trapezius", trigger_point=trapezius[week]),
                    site("levator_scapulae", trigger_point="latent"),
                ],
                measurements=measurements,
            ),
        )
        sign(api, note)
    for day, days_per_week in ((0, 5), (21, 1)):
        post(
            api,
            "/medications",
            {
                "patient_id": patient["id"],
                "episode_id": episode["id"],
                "drug": "Ibuprofen",
                "drug_class": "nsaid",
                "dose_mg": 400,
                "days_per_week": days_per_week,
                "recorded_on": (DAY0 + timedelta(days=day)).date().isoformat(),
            },
        )
    for instrument_id, answers, ctx in [
        ("return_to_activity", {"item1": 1}, {"activity": "work", "returned_on": "2026-02-19"}),
        ("groc", {"item1": 5}, None),
    ]:
        post(
            api,
            "/measurements",
            {
                "patient_id": patient["id"],
                "episode_id": episode["id"],
                "instrument_id": instrument_id,
                "answers": answers,
                "context": ctx,
                "taken_at": (DAY0 + timedelta(days=21, hours=1)).isoformat(),
            },
        )
    return episode


def benefits_of(api: Api, episode_id: str) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/episodes/{episode_id}/benefits", headers=api.headers())
    assert r.status_code == 200, r.text
    body = r.json()
    TypeAdapter(documented_model("/api/v1/episodes/{episode_id}/benefits")).validate_python(body)
    return {b["id"]: b for b in body["benefits"]} | {"_episode": body}


def test_pain_relief_shows_baseline_to_latest_the_responder_and_the_time_to_improve(
    api: Api,
) -> None:
    b = benefits_of(api, neck_pain_course(api)["id"])["pain_relief"]
    nprs = b["measures"][0]
    assert (nprs["baseline"], nprs["latest"], nprs["administrations"]) == (7, 3, 4)
    assert nprs["responder"]["change"] == -4
    assert nprs["responder"]["status"] == "responder"
    assert nprs["threshold"].startswith("MCID 2/10 and 30 % of the baseline")
    assert nprs["threshold_basis"] == "MCID"
    assert "Farrar" in nprs["threshold_source"]
    assert "Salaffi" in nprs["threshold_source"]
    # 7 → 4 in week 2 is the first change of at least 2 points: 14 days, after 2 sessions
    assert nprs["days_to_first_meaningful_improvement"] == 14
    assert nprs["sessions_to_first_meaningful_improvement"] == 2
    assert "Sánchez-Infante" in b["evidence"]["source"]


def test_every_benefit_is_listed_and_blood_circulation_says_not_measured(api: Api) -> None:
    summary = benefits_of(api, neck_pain_course(api)["id"])
    assert [k for k in summary if k != "_episode"] == [
        "pain_relief",
        "muscle_relaxation",
        "blood_circulation",
        "tissue_healing",
        "function_disability",
        "flexibility_rom",
        "complementary_care",
        "faster_recovery",
        "drug_free_management",
    ]
    assert [k for k, b in summary.items() if k != "_episode" and b["reported_beside"]] == [
        "function_disability"
    ]
    blood = summary["blood_circulation"]
    assert (blood["measured"], blood["status"], blood["measures"]) == (False, "not measured", [])
    assert "15 min" in blood["evidence"]["note"]


def test_function_rom_trigger_points_and_analgesics_each_tell_their_part(api: Api) -> None:
    summary = benefits_of(api, neck_pain_course(api)["id"])
    ndi = summary["function_disability"]["measures"][0]
    assert (ndi["baseline"], ndi["latest"], ndi["responder"]["status"]) == (40, 20, "responder")
    assert ndi["threshold_basis"] == "MDC"  # the MCID (7.5/50) lies inside the MDC (10.2/50)
    assert ndi["threshold"].startswith("MDC 20 %")
    assert "Young" in ndi["threshold_source"]
    # A function score is not tissue healing: that benefit is not measured, and says why.
    healing = summary["tissue_healing"]
    assert (healing["measured"], healing["status"], healing["measures"]) == (
        False,
        "not measured",
        [],
    )
    assert "no routine clinic measure" in healing["evidence"]["note"].lower()
    function_evidence = summary["function_disability"]["evidence"]
    assert "Navarro-Santana" in function_evidence["source"]

    rom = summary["flexibility_rom"]["measures"][0]
    assert rom["context"] == CERVICAL
    assert rom["responder"]["mdc_reached"] is True  # 12° ≥ the 9.6° cervical MDC
    assert rom["responder"]["mcid_reached"] is None  # no published MCID

    muscles = summary["muscle_relaxation"]
    facts = {f["label"]: f["value"] for f in muscles["facts"]}
    assert facts["Upper trapezius (left)"] == "active → resolved"
    assert facts["Levator scapulae (left)"] == "latent"
    tp = muscles["measures"][0]
    assert (tp["baseline"], tp["latest"]) == (1, 0)
    assert tp["responder"]["status"] == "no published threshold"

    drugs = summary["drug_free_management"]
    analgesic = drugs["measures"][0]
    assert (analgesic["baseline"], analgesic["latest"]) == (5, 1)
    assert analgesic["threshold"] == "no published threshold"
    assert {f["label"]: f["value"] for f in drugs["facts"]} == {"Ibuprofen 400 mg": "5 → 1"}


def test_recovery_and_complementary_care_and_global_rating(api: Api) -> None:
    summary = benefits_of(api, neck_pain_course(api)["id"])
    recovery = {f["label"]: f["value"] for f in summary["faster_recovery"]["facts"]}
    assert recovery["returned to work on"] == "2026-02-19"
    assert recovery["days to return to work"] == 18  # opened 1 February
    assert recovery["days to first meaningful change"] == 14
    assert recovery["compared with"] == "nothing: whether recovery was faster is not judged"
    assert summary["faster_recovery"]["status"] == "recorded"  # a fact, not a measured benefit
    complementary = {f["label"]: f["value"] for f in summary["complementary_care"]["facts"]}
    assert complementary["given with needling: exercise"] == "4 of 4 sessions"
    assert complementary["planned: exercise"] == "Deep neck flexor training"
    # a record of the care given beside needling, not a measured benefit
    assert summary["complementary_care"]["status"] == "recorded"
    groc = summary["_episode"]["global_ratings"][0]
    assert (groc["instrument_id"], groc["latest"], groc["responder"]) == ("groc", 5, None)


def test_an_episode_with_only_a_baseline_claims_no_change(api: Api) -> None:
    patient = post(
        api,
        "/patients",
        {
            "mrn": "BEN-2",
            "given_name": "Ola",
            "family_name": "Once",
            "birth_date": "1990-01-01",
            "sex": "male",
        },
    )
    episode = post(
        api,
        "/episodes",
        {
            "patient_id": patient["id"],
            "condition": "neck_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
    )
    note = post(api, "/sessions", session_body(episode["id"], sites=[], co_interventions=[]))
    sign(api, note)
    summary = benefits_of(api, episode["id"])
    pain = summary["pain_relief"]
    assert pain["status"] == "baseline only"
    assert pain["measures"][0]["responder"] is None
    for benefit in ("muscle_relaxation", "drug_free_management", "complementary_care"):
        assert summary[benefit]["status"] == "not measured"


def test_benefits_are_clinical_records_front_desk_and_other_clinics_are_refused(
    engine: sa.Engine, api: Api
) -> None:
    episode = neck_pain_course(api)
    path = f"/api/v1/episodes/{episode['id']}/benefits"
    assert api.client.get(path, headers=api.headers("assistant")).status_code == 403
    other = make_api(engine, make_clinic(engine, "Elsewhere"))
    assert other.client.get(path, headers=other.headers()).status_code == 404


def test_the_instrument_library_is_published_with_items_rules_thresholds_and_codes(
    api: Api,
) -> None:
    r = api.client.get("/api/v1/instruments", headers=api.headers())
    assert r.status_code == 200
    TypeAdapter(documented_model("/api/v1/instruments")).validate_python(r.json())
    library = {i["id"]: i for i in r.json()}
    assert library["quickdash"]["item_keys"][-1] == "item11"
    assert library["nprs"]["code"] == {
        "system": "http://loinc.org",
        "code": "72514-3",
        "verified": True,
    }
    assert library["psfs"]["code"]["system"] == "urn:needlepoint:instrument"
    assert library["headache_days"]["mcid"] is None
    assert api.client.get("/api/v1/instruments").status_code == 401


def test_a_demo_patient_from_the_synthetic_clinic_has_a_benefit_summary(engine: sa.Engine) -> None:
    report = generate_clinic(engine, patients_count=4, seed=4404, clinic_name="Benefit demo")
    with engine.connect() as conn:
        owner = User(
            **conn.execute(sa.select(t.users).where(t.users.c.id == report.owner_id)).one()._mapping
        )
        episode_ids = (
            conn.execute(
                sa.select(t.episodes.c.id).where(t.episodes.c.clinic_id == report.clinic_id)
            )
            .scalars()
            .all()
        )
    token = issue_operator_token(SqlUnitOfWork(engine), owner, "test", source="test")
    api = make_api(engine, make_clinic(engine))
    measured = 0
    for episode_id in episode_ids:
        r = api.client.get(
            f"/api/v1/episodes/{episode_id}/benefits", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        TypeAdapter(documented_model("/api/v1/episodes/{episode_id}/benefits")).validate_python(
            r.json()
        )
        pain = next(b for b in r.json()["benefits"] if b["id"] == "pain_relief")
        assert pain["measures"][0]["instrument_id"] == "nprs"  # every demo session rates pain
        measured += pain["status"] == "measured"
    assert measured >= 1
