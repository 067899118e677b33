"""Only signed notes count (issue 13): an unsigned draft never feeds the benefit summary,
the patient's measurement series, the progress page or the clinic's analytics and CSV;
signing it makes it count; an amendment keeps it counted. A note dated in the future and
an empty note are refused with a 422 naming the field, and nothing is written."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.domain.notes import FUTURE_TOLERANCE
from tests.conftest import Api
from tests.factories import session_body, site

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def post(api: Api, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = api.client.post(f"/api/v1{path}", json=body, headers=api.headers())
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def sign(api: Api, note: dict[str, Any], status: int = 200) -> dict[str, Any]:
    r = api.client.post(
        f"/api/v1/sessions/{note['id']}/sign",
        headers=api.headers(**{"If-Match": f'"{note["version"]}"'}),
    )
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def episode_for(api: Api, mrn: str) -> tuple[str, str]:
    patient = post(
        api,
        "/patients",
        {
            "mrn": mrn,
            "given_name": "Dora",
            "family_name": "Draft",
            "birth_date": "1980-05-05",
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
            "opened_on": "2026-03-01",
        },
    )
    api.prepare_needling(patient["id"])
    return patient["id"], episode["id"]


def note(api: Api, episode_id: str, week: int, nprs: int, ndi: int) -> dict[str, Any]:
    return post(
        api,
        "/sessions",
        session_body(
            episode_id,
            started_at=(DAY0 + timedelta(days=7 * week)).isoformat(),
            sites=[site("upper_trapezius")],
            measurements=[
                {"instrument_id": "nprs", "answers": {"item1": nprs}},
                {
                    "instrument_id": "ndi",
                    "answers": {f"item{i}": ndi for i in range(1, 11)},
                },
            ],
        ),
    )


def benefits(api: Api, episode_id: str) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/episodes/{episode_id}/benefits", headers=api.headers())
    assert r.status_code == 200, r.text
    return {b["id"]: b for b in r.json()["benefits"]} | {"_": r.json()}


def nprs_series(api: Api, patient_id: str) -> list[float]:
    r = api.client.get(
        f"/api/v1/patients/{patient_id}/measurements",
        params={"instrument": "nprs"},
        headers=api.headers(),
    )
    assert r.status_code == 200, r.text
    return [m["score"] for m in r.json()]


def dashboard(api: Api) -> dict[str, Any]:
    """The dashboard once its snapshot is up to date with the records (the analytics are
    refreshed in the background: 202 while the first snapshot is prepared)."""
    from needlepoint.analytics.dashboard import dashboards_of

    for _ in range(5):
        r = api.client.get("/api/v1/analytics/dashboard", headers=api.headers("owner"))
        assert r.status_code in (200, 202), r.text
        if r.status_code == 200 and not r.json()["refreshing"]:
            return r.json()  # type: ignore[no-any-return]
        assert dashboards_of(api.client.app.state).wait(300)  # type: ignore[attr-defined]
    raise AssertionError("the analytics never caught up with the records")


def tile(board: dict[str, Any], benefit: str) -> dict[str, Any]:
    return next(x for x in board["tiles"] if x["id"] == benefit)


def test_a_draft_never_signed_feeds_no_summary_series_or_analytics(api: Api) -> None:
    patient_id, episode_id = episode_for(api, "DRAFT-1")
    first = sign(api, note(api, episode_id, 0, nprs=8, ndi=3))
    note(api, episode_id, 1, nprs=2, ndi=1)  # a draft: never signed
    summary = benefits(api, episode_id)
    pain = summary["pain_relief"]
    assert pain["status"] == "baseline only"
    assert pain["measures"][0]["administrations"] == 1
    assert pain["measures"][0]["latest"] == 8
    assert summary["function_disability"]["status"] == "baseline only"
    assert summary["_"]["sessions"] == 1
    assert nprs_series(api, patient_id) == [8]
    chart = api.client.get(f"/api/v1/patients/{patient_id}/timeline", headers=api.headers())
    pending = [e for e in chart.json() if "not counted until it is signed" in e["detail"]]
    assert len(pending) == 2  # the draft's NPRS and NDI, shown on the chart as pending
    board = dashboard(api)
    assert board["sessions"] == 1
    assert tile(board, "pain_relief")["overall"]["complete"] == 0
    assert first["status"] == "signed"
    r = api.client.get("/api/v1/analytics/benefits.csv", headers=api.headers("owner"))
    rows = [
        row
        for row in csv.DictReader(io.StringIO(r.text))
        if row["benefit"] == "pain_relief" and row["dimension"] == "overall"
    ]
    # no complete pair: nothing counted, so no responder count (blank, never 0)
    assert [(row["complete"], row["responders"]) for row in rows] == [("0", "")]
    assert [row["status"] for row in rows] == ["not measured"]


def test_a_draft_with_measurements_counts_once_it_is_signed(api: Api) -> None:
    patient_id, episode_id = episode_for(api, "DRAFT-2")
    sign(api, note(api, episode_id, 0, nprs=8, ndi=3))
    draft = note(api, episode_id, 1, nprs=3, ndi=1)
    assert benefits(api, episode_id)["pain_relief"]["status"] == "baseline only"
    sign(api, draft)
    summary = benefits(api, episode_id)
    pain = summary["pain_relief"]["measures"][0]
    assert (pain["baseline"], pain["latest"], pain["responder"]["status"]) == (8, 3, "responder")
    ndi = summary["function_disability"]["measures"][0]
    assert (ndi["baseline"], ndi["latest"], ndi["responder"]["status"]) == (60, 20, "responder")
    assert nprs_series(api, patient_id) == [8, 3]
    board = dashboard(api)
    assert board["sessions"] == 2
    assert (tile(board, "pain_relief")["overall"]["complete"], board["episodes"]) == (1, 1)
    assert tile(board, "pain_relief")["overall"]["responders"] == 1
    assert tile(board, "function_disability")["overall"]["responders"] == 1
    healing = tile(board, "tissue_healing")
    assert healing["status"] == "not measured"
    assert healing["overall"]["complete"] == 0
    assert "Stoychev" in healing["pooled_summary"] or "none" in healing["pooled_summary"]
    assert "disability" in tile(board, "function_disability")["pooled_summary"]


def test_an_amended_signed_note_still_counts_as_signed(api: Api) -> None:
    patient_id, episode_id = episode_for(api, "DRAFT-3")
    sign(api, note(api, episode_id, 0, nprs=7, ndi=3))
    later = sign(api, note(api, episode_id, 1, nprs=4, ndi=2))
    r = api.client.post(
        f"/api/v1/sessions/{later['id']}/amendments",
        json={"reason": "Typo", "text": "Pain was 4/10 after needling, not before."},
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text
    pain = benefits(api, episode_id)["pain_relief"]["measures"][0]
    assert (pain["baseline"], pain["latest"], pain["administrations"]) == (7, 4, 2)
    assert nprs_series(api, patient_id) == [7, 4]


def test_a_measurement_recorded_on_its_own_counts_and_one_linked_to_a_draft_does_not(
    api: Api,
) -> None:
    patient_id, episode_id = episode_for(api, "DRAFT-4")
    sign(api, note(api, episode_id, 0, nprs=8, ndi=3))
    draft = note(api, episode_id, 1, nprs=7, ndi=3)
    base = {"patient_id": patient_id, "episode_id": episode_id, "instrument_id": "nprs"}
    post(
        api,
        "/measurements",
        {**base, "answers": {"item1": 6}, "taken_at": (DAY0 + timedelta(days=9)).isoformat()},
    )
    post(
        api,
        "/measurements",
        {
            **base,
            "session_id": draft["id"],
            "answers": {"item1": 1},
            "taken_at": (DAY0 + timedelta(days=10)).isoformat(),
        },
    )
    assert nprs_series(api, patient_id) == [8, 6]
    assert benefits(api, episode_id)["pain_relief"]["measures"][0]["latest"] == 6


def counts(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (t.sessions, t.measurements, t.audit_events)
        )


def test_a_note_dated_in_the_future_is_refused_naming_the_field(
    engine: sa.Engine, api: Api
) -> None:
    _, episode_id = episode_for(api, "FUTURE-1")
    before = counts(engine)
    ahead = datetime.now(UTC) + FUTURE_TOLERANCE + timedelta(minutes=10)
    r = api.client.post(
        "/api/v1/sessions",
        json=session_body(
            episode_id, started_at=ahead.isoformat(), sites=[site("upper_trapezius")]
        ),
        headers=api.headers(),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "started_at"
    body = session_body(episode_id, started_at=DAY0.isoformat(), sites=[site("upper_trapezius")])
    body["measurements"] = [
        {"instrument_id": "nprs", "answers": {"item1": 5}, "taken_at": ahead.isoformat()}
    ]
    r = api.client.post("/api/v1/sessions", json=body, headers=api.headers())
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "measurements.0.taken_at"
    assert counts(engine) == before
    # A clock a couple of minutes ahead is tolerated.
    soon = datetime.now(UTC) + timedelta(minutes=2)
    post(api, "/sessions", session_body(episode_id, started_at=soon.isoformat(), sites=[]))


def test_a_measurement_dated_in_the_future_is_refused(engine: sa.Engine, api: Api) -> None:
    patient_id, episode_id = episode_for(api, "FUTURE-2")
    before = counts(engine)
    ahead = datetime.now(UTC) + timedelta(days=1)
    r = api.client.post(
        "/api/v1/measurements",
        json={
            "patient_id": patient_id,
            "episode_id": episode_id,
            "instrument_id": "nprs",
            "answers": {"item1": 4},
            "taken_at": ahead.isoformat(),
        },
        headers=api.headers(),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "taken_at"
    assert counts(engine) == before


def test_an_empty_note_cannot_be_signed_and_stays_a_draft(engine: sa.Engine, api: Api) -> None:
    _, episode_id = episode_for(api, "EMPTY-1")
    empty = post(
        api,
        "/sessions",
        {
            "episode_id": episode_id,
            "started_at": DAY0.isoformat(),
            "subjective": "  ",
            "sites": [],
            "co_interventions": [],
            "measurements": [],
        },
    )
    before = counts(engine)
    r = api.client.post(
        f"/api/v1/sessions/{empty['id']}/sign",
        headers=api.headers(**{"If-Match": f'"{empty["version"]}"'}),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "session_id"
    assert "empty note" in r.json()["errors"][0]["message"]
    assert counts(engine) == before
    got = api.client.get(f"/api/v1/sessions/{empty['id']}", headers=api.headers())
    assert (got.json()["session"]["status"], got.json()["session"]["version"]) == (
        "draft",
        empty["version"],
    )
    # Text alone is content: a note saying what was found can be signed.
    worded = post(
        api,
        "/sessions",
        {"episode_id": episode_id, "started_at": DAY0.isoformat(), "assessment": "No change."},
    )
    assert sign(api, worded)["status"] == "signed"
