"""The care-team rule (issue 14, item 7), on both databases: under the clinic's
restriction a clinician or student outside a patient's care team can neither write their
way into the record (open an episode, autosave a draft, record a measurement, a
screening, a consent …) nor read any of it, through any API operation or page; an
emergency access lets them in for its time and is recorded; membership is named, by the
owner or a member, never acquired by writing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa

from needlepoint.actions.clinics import issue_operator_token
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.entities import User
from needlepoint.domain.enums import AuditAction, Role
from tests.conftest import Api
from tests.factories import consent_body, screening_body, session_body
from tests.integration.test_accounts import browser, csrf_of, new_user, sign_in
from tests.integration.test_api import new_session

CLINICAL_TABLES = (
    "episodes",
    "sessions",
    "needling_sites",
    "measurements",
    "medication_uses",
    "screenings",
    "consents",
    "amendments",
    "care_team_members",
)


@dataclass
class Restricted:
    """A clinic restricting records to the care team; a patient whose team is the test
    clinician (they opened the episode and wrote the notes); an outsider clinician and
    an outsider student of the same clinic, with tokens and signed-in browsers."""

    api: Api
    patient_id: str
    episode_id: str
    draft_id: str
    signed_id: str
    consent_id: str
    outsider: User
    student: User
    tokens: dict[str, str]

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        if who in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[who]}", **extra}
        return self.api.headers(who, **extra)

    def counts(self) -> dict[str, int]:
        with self.api.clinic.engine.connect() as conn:
            return {
                name: conn.execute(
                    sa.select(sa.func.count()).select_from(t.metadata.tables[name])
                ).scalar_one()
                for name in CLINICAL_TABLES
            }

    def denials(self, who: User) -> int:
        with self.api.clinic.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(t.audit_events)
                .where(
                    t.audit_events.c.action == AuditAction.ACCESS_DENIED,
                    t.audit_events.c.actor_user_id == who.id,
                    t.audit_events.c.entity_type == "care_team",
                )
            ).scalar_one()


def restrict(api: Api) -> None:
    r = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": False, "care_team_restriction": True},
        headers=api.headers("owner", **{"If-Match": '"1"'}),
    )
    assert r.status_code == 200, r.text


@pytest.fixture
def restricted(api: Api) -> Restricted:
    draft = new_session(api)
    patient_id, episode_id = draft["patient_id"], draft["episode_id"]
    other = api.client.post(
        "/api/v1/sessions", json=session_body(episode_id), headers=api.headers()
    ).json()
    signed = api.client.post(
        f"/api/v1/sessions/{other['id']}/sign", headers=api.headers(**{"If-Match": '"1"'})
    )
    assert signed.status_code == 200, signed.text
    consents = api.client.get(f"/api/v1/patients/{patient_id}/consents", headers=api.headers())
    restrict(api)
    outsider, student = new_user(api.clinic), new_user(api.clinic, Role.STUDENT)
    engine = api.clinic.engine
    tokens = {
        name: issue_operator_token(SqlUnitOfWork(engine), user, "t", source="test")
        for name, user in (("outsider", outsider), ("student", student))
    }
    return Restricted(
        api,
        patient_id,
        episode_id,
        draft["id"],
        other["id"],
        consents.json()[0]["id"],
        outsider,
        student,
        tokens,
    )


def writes(c: Restricted) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    """Every API write naming this patient's record: (method, url, body, extra headers)."""
    p, e = c.patient_id, c.episode_id
    measurement = {"patient_id": p, "instrument_id": "nprs", "answers": {"item1": 3}}
    return [
        (
            "POST",
            "/api/v1/episodes",
            {
                "patient_id": p,
                "condition": "neck_pain",
                "onset_date": "2026-01-02",
                "opened_on": "2026-02-01",
            },
            {},
        ),
        ("POST", "/api/v1/sessions", session_body(e), {}),
        ("POST", "/api/v1/measurements", measurement, {}),
        ("POST", "/api/v1/measurements", {**measurement, "episode_id": e}, {}),
        ("POST", "/api/v1/measurements", {**measurement, "session_id": c.draft_id}, {}),
        (
            "POST",
            "/api/v1/medications",
            {
                "patient_id": p,
                "drug": "ibuprofen",
                "drug_class": "nsaid",
                "days_per_week": 2,
                "recorded_on": "2026-02-10",
            },
            {},
        ),
        ("POST", f"/api/v1/patients/{p}/screenings", screening_body(), {}),
        ("POST", f"/api/v1/patients/{p}/consents", consent_body(), {}),
        ("POST", f"/api/v1/consents/{c.consent_id}/withdraw", {}, {"If-Match": '"1"'}),
        (
            "PUT",
            f"/api/v1/sessions/{c.draft_id}",
            {k: v for k, v in session_body(e).items() if k != "episode_id"},
            {"If-Match": '"1"'},
        ),
        ("POST", f"/api/v1/sessions/{c.draft_id}/sign", None, {"If-Match": '"1"'}),
        (
            "POST",
            f"/api/v1/sessions/{c.signed_id}/amendments",
            {"reason": "typo", "text": "left, not right"},
            {},
        ),
        (
            "POST",
            f"/api/v1/episodes/{e}/close",
            {"closed_on": "2026-03-01", "discharge_reason": "goals met"},
            {"If-Match": '"1"'},
        ),
        (
            "POST",
            f"/api/v1/patients/{p}/care-team",
            {"user_id": str(c.outsider.id), "reason": "I would like to help"},
            {},
        ),
    ]


def clinical_reads(api: Api, ids: dict[str, str]) -> list[str]:
    """Every API read of clinical records that names a patient's record, generated from
    the OpenAPI document (a read added later is tried too)."""
    doc = api.client.app.openapi()  # type: ignore[attr-defined]
    urls = []
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None or op.get("x-permission") != "read_clinical":
            continue
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue  # clinic-wide aggregates (analytics), no patient's record
        if "job_id" in names:
            # A bulk export's status and files: whose they are is the job's starter's, and
            # a clinician bound by the care team may not start one (test_fhir_export.py).
            continue
        assert set(names) <= set(ids), f"{path}: the test has no record for {names}"
        urls.append(re.sub(r"{(\w+)}", lambda m: ids[m[1]], path))
    assert len(urls) >= 10
    return urls


def test_an_outsider_can_neither_write_their_way_in_nor_read_the_record(
    restricted: Restricted,
) -> None:
    c = restricted
    api = c.api
    before = c.counts()
    for who in ("outsider", "student"):
        for method, url, body, extra in writes(c):
            r = api.client.request(method, url, json=body, headers=c.headers(who, **extra))
            assert r.status_code == 403, (who, method, url, r.status_code, r.text)
            assert "care" in r.json()["detail"] or "may not" in r.text, (who, url, r.text)
        assert c.counts() == before, who  # nothing written, nobody joined the team
    # Each refusal of the outsider is on the trail, naming the patient.
    assert c.denials(c.outsider) == len(writes(c))
    ids = {
        "patient_id": c.patient_id,
        "episode_id": c.episode_id,
        "session_id": c.signed_id,
    }
    for url in clinical_reads(api, ids):
        got = api.client.get(url, headers=api.headers())
        assert got.status_code == 200, (url, got.text)
        assert api.client.get(url, headers=api.headers("owner")).status_code == 200, url
        for who in ("outsider", "student"):
            denied = api.client.get(url, headers=c.headers(who))
            assert denied.status_code == 403, (who, url)
            assert "Myofascial" not in denied.text
            assert "trapezius" not in denied.text
    # Demographics stay readable: the front desk and colleagues must find the patient.
    seen = api.client.get(f"/api/v1/patients/{c.patient_id}", headers=c.headers("outsider"))
    assert seen.status_code == 200


def test_pages_and_autosave_refuse_an_outsider(restricted: Restricted) -> None:
    c = restricted
    page = browser(c.api.clinic.engine)
    assert sign_in(page, c.outsider.email).status_code == 303
    before = c.counts()
    for url in (
        f"/patients/{c.patient_id}",
        f"/episodes/{c.episode_id}",
        f"/episodes/{c.episode_id}/progress",
        f"/episodes/{c.episode_id}/sessions/new",
        f"/sessions/{c.draft_id}",
        f"/sessions/{c.signed_id}",
        f"/patients/{c.patient_id}/screening",
    ):
        r = page.get(url)
        assert r.status_code == 403, (url, r.status_code)
        assert "Myofascial" not in r.text, url
        assert "not in your care" in r.text, url
    csrf = csrf_of(page.get("/patients").text)
    for session_id in ("", c.draft_id):
        saved = page.post(
            "/notes/autosave",
            data={
                "csrf": csrf,
                "episode_id": c.episode_id,
                "session_id": session_id,
                "version": "1",
                "started_at": "2026-02-03T09:30",
                "subjective": "autosaved by someone outside the team",
            },
        )
        assert saved.status_code in (400, 403), saved.text
        assert saved.json().get("saved") is not True
    opened = page.post(
        f"/patients/{c.patient_id}/episodes/new",
        data={
            "csrf": csrf,
            "condition": "neck_pain",
            "onset_date": "2026-01-02",
            "opened_on": "2026-02-01",
        },
        follow_redirects=False,
    )
    assert opened.status_code in (400, 403)
    assert "not in your care" in opened.text
    assert c.counts() == before
    assert page.get(f"/patients/{c.patient_id}").status_code == 403  # still outside


def test_emergency_access_opens_the_record_for_its_time_without_joining_the_team(
    restricted: Restricted,
) -> None:
    c = restricted
    api = c.api
    grant = api.client.post(
        f"/api/v1/patients/{c.patient_id}/emergency-access",
        json={"reason": "on call; the patient phoned with chest pain after needling"},
        headers=c.headers("outsider"),
    )
    assert grant.status_code == 201
    timeline = f"/api/v1/patients/{c.patient_id}/timeline"
    assert api.client.get(timeline, headers=c.headers("outsider")).status_code == 200
    note = api.client.post(
        "/api/v1/sessions", json=session_body(c.episode_id), headers=c.headers("outsider")
    )
    assert note.status_code == 201, note.text  # documented under the emergency access
    # The emergency access never becomes membership, for its holder or anyone they name.
    added = api.client.post(
        f"/api/v1/patients/{c.patient_id}/care-team",
        json={"user_id": str(c.student.id), "reason": "help me"},
        headers=c.headers("outsider"),
    )
    assert added.status_code == 403
    with api.clinic.engine.begin() as conn:  # the grant runs out
        conn.execute(
            sa.update(t.emergency_accesses).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    assert api.client.get(timeline, headers=c.headers("outsider")).status_code == 403
    their_note = f"/api/v1/sessions/{note.json()['id']}"
    assert api.client.get(their_note, headers=c.headers("outsider")).status_code == 403
    again = api.client.put(
        their_note,
        json={k: v for k, v in session_body(c.episode_id).items() if k != "episode_id"},
        headers=c.headers("outsider", **{"If-Match": '"1"'}),
    )
    assert again.status_code == 403


def test_a_member_or_the_owner_names_a_colleague_who_may_then_document(
    restricted: Restricted,
) -> None:
    c = restricted
    api = c.api
    team = f"/api/v1/patients/{c.patient_id}/care-team"
    refused = api.client.post(
        team,
        json={"user_id": str(c.student.id), "reason": "placement"},
        headers=c.headers("student"),
    )
    assert refused.status_code == 403  # a student adds nobody
    added = api.client.post(
        team,
        json={"user_id": str(c.student.id), "reason": "supervised placement"},
        headers=api.headers(),
    )
    assert added.status_code == 201, added.text
    by_owner = api.client.post(
        team,
        json={"user_id": str(c.outsider.id), "reason": "covering Tuesdays"},
        headers=api.headers("owner"),
    )
    assert by_owner.status_code == 201, by_owner.text
    twice = api.client.post(
        team, json={"user_id": str(c.outsider.id), "reason": "again"}, headers=api.headers()
    )
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["field"] == "user_id"
    assistant = api.client.post(
        team,
        json={"user_id": str(api.clinic.assistant.id), "reason": "front desk"},
        headers=api.headers(),
    )
    assert assistant.status_code == 422
    listed = api.client.get(team, headers=c.headers("student"))
    assert listed.status_code == 200
    assert {m["user_id"] for m in listed.json()} == {
        str(api.clinic.clinician.id),
        str(c.student.id),
        str(c.outsider.id),
    }
    assert any("supervised placement" in m["why"] for m in listed.json())
    note = api.client.post(
        "/api/v1/sessions", json=session_body(c.episode_id), headers=c.headers("student")
    )
    assert note.status_code == 201, note.text
    assert note.json()["clinician_id"] == str(c.student.id)
    signed = api.client.post(
        f"/api/v1/sessions/{note.json()['id']}/sign",
        headers=api.headers(**{"If-Match": '"1"'}),
    )
    assert signed.status_code == 200  # the supervisor's co-signature
    with api.clinic.engine.connect() as conn:
        events = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(
                t.audit_events.c.action == AuditAction.CARE_TEAM_MEMBER_ADDED,
                t.audit_events.c.clinic_id == api.clinic.owner.clinic_id,
            )
        ).scalar_one()
    assert events == 2


def test_a_patient_without_a_care_team_is_taken_on_by_opening_their_first_episode(
    restricted: Restricted,
) -> None:
    c = restricted
    api = c.api
    patient = api.client.post(
        "/api/v1/patients",
        json={
            "mrn": "NEW-1",
            "given_name": "Nell",
            "family_name": "Newcomer",
            "birth_date": "1980-01-01",
            "sex": "female",
        },
        headers=api.headers("assistant"),
    ).json()
    body = {
        "patient_id": patient["id"],
        "condition": "neck_pain",
        "onset_date": "2026-01-02",
        "opened_on": "2026-02-01",
    }
    timeline = f"/api/v1/patients/{patient['id']}/timeline"
    assert api.client.get(timeline, headers=c.headers("outsider")).status_code == 403
    taken = api.client.post("/api/v1/episodes", json=body, headers=c.headers("outsider"))
    assert taken.status_code == 201, taken.text
    assert api.client.get(timeline, headers=c.headers("outsider")).status_code == 200
    # The patient has a team now: another clinician cannot take them on as well.
    second = api.client.post("/api/v1/episodes", json=body, headers=api.headers())
    assert second.status_code == 403
    assert api.client.get(timeline, headers=api.headers()).status_code == 403


def test_without_the_restriction_the_clinic_works_as_before(api: Api) -> None:
    note = new_session(api)
    outsider = new_user(api.clinic)
    theirs = {
        "Authorization": "Bearer "
        + issue_operator_token(SqlUnitOfWork(api.clinic.engine), outsider, "t", source="test")
    }
    assert api.client.get(f"/api/v1/sessions/{note['id']}", headers=theirs).status_code == 200
    more = api.client.post(
        "/api/v1/sessions", json=session_body(note["episode_id"]), headers=theirs
    )
    assert more.status_code == 201


def test_the_owner_is_not_bound_and_refusals_are_on_the_audit_trail(
    restricted: Restricted,
) -> None:
    c = restricted
    api = c.api
    assert (
        api.client.get(
            f"/api/v1/patients/{c.patient_id}/timeline", headers=c.headers("outsider")
        ).status_code
        == 403
    )
    with api.clinic.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.audit_events)
            .where(
                t.audit_events.c.actor_user_id == c.outsider.id,
                t.audit_events.c.action == AuditAction.ACCESS_DENIED,
            )
            .order_by(t.audit_events.c.seq.desc())
        ).first()
    assert row is not None
    assert (row.entity_type, row.patient_id) == ("care_team", UUID(c.patient_id))
    note = api.client.post(
        "/api/v1/sessions", json=session_body(c.episode_id), headers=api.headers("owner")
    )
    assert note.status_code == 201


LATER_COLUMNS = {"clinics": ("time_zone", "VARCHAR(64) NOT NULL DEFAULT 'UTC'")}
"""Columns of existing tables added by migrations after 0012 (0015: the clinic's time
zone): today's code writes them, so the old schema holds them while the test writes its
records, and loses them again before the upgrade adds them for real."""


def _later_columns(engine: sa.Engine, *, add: bool) -> None:
    with engine.begin() as conn:
        for table, (column, kind) in LATER_COLUMNS.items():
            if add:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
            else:
                conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def before_care_teams(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A new database migrated to the revision just before care teams were named (0012,
    kept the newest migration so that today's code matches the rest of that schema)."""
    from alembic.script import ScriptDirectory

    from needlepoint.adapters.db.engine import make_engine
    from needlepoint.adapters.db.migrate import alembic_config, upgrade

    scripts = ScriptDirectory.from_config(alembic_config())
    before = str(scripts.get_revision("0012").down_revision)
    from tests.conftest import PG_ADMIN_URL, _pg_admin

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        upgrade(engine, before)
        _later_columns(engine, add=True)
        yield engine
        engine.dispose()
        return
    admin = _pg_admin()
    if admin is None:
        pytest.skip("PostgreSQL not reachable")
    name = f"needlepoint_test_{uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(sa.engine.make_url(PG_ADMIN_URL).set(database=name))
    try:
        upgrade(engine, before)
        _later_columns(engine, add=True)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_upgrading_names_the_clinicians_of_existing_notes_on_their_patients_teams(
    before_care_teams: sa.Engine,
) -> None:
    """Before care teams were named, writing a note put its clinician on the team; the
    migration names them once, so nobody loses the access they had."""
    from needlepoint.actions import episodes, patients, sessions
    from needlepoint.adapters.db.migrate import upgrade
    from tests.conftest import make_clinic
    from tests.factories import episode_cmd, patient_cmd, session_cmd

    engine = before_care_teams
    c = make_clinic(engine)
    patient = patients.register_patient(c.uow(), c.as_owner, patient_cmd())
    episode = episodes.open_episode(c.uow(), c.as_owner, episode_cmd(patient.id))
    c.prepare_needling(patient.id)
    sessions.record_session(c.uow(), c.as_clinician, session_cmd(episode.id))
    sessions.record_session(c.uow(), c.as_clinician, session_cmd(episode.id))
    sessions.record_session(c.uow(), c.as_owner, session_cmd(episode.id))  # the episode's own
    _later_columns(engine, add=False)
    upgrade(engine)
    with engine.connect() as conn:
        named = conn.execute(
            sa.select(
                t.care_team_members.c.patient_id,
                t.care_team_members.c.user_id,
                t.care_team_members.c.reason,
            )
        ).all()
    assert [(r.patient_id, r.user_id) for r in named] == [(patient.id, c.clinician.id)]
    assert "before care teams" in named[0].reason


def test_on_the_pages_a_member_adds_a_colleague_and_an_outsider_can_break_the_glass(
    restricted: Restricted,
) -> None:
    c = restricted
    outsider = browser(c.api.clinic.engine)
    assert sign_in(outsider, c.outsider.email).status_code == 303
    refused = outsider.get(f"/patients/{c.patient_id}")
    assert refused.status_code == 403
    assert "Emergency access" in refused.text
    assert "Myofascial" not in refused.text
    broke = outsider.post(
        f"/patients/{c.patient_id}/emergency-access",
        data={"csrf": csrf_of(refused.text), "reason": "patient phoned: chest pain"},
        follow_redirects=False,
    )
    assert broke.status_code == 303
    chart = outsider.get(f"/patients/{c.patient_id}")
    assert chart.status_code == 200
    assert "Care team" in chart.text
    assert "Add to the care team" not in chart.text  # an emergency access adds nobody

    member_user = new_user(c.api.clinic)
    added = c.api.client.post(  # the owner names a clinician with a password, to sign in
        f"/api/v1/patients/{c.patient_id}/care-team",
        json={"user_id": str(member_user.id), "reason": "second opinion"},
        headers=c.api.headers("owner"),
    )
    assert added.status_code == 201
    member = browser(c.api.clinic.engine)
    assert sign_in(member, member_user.email).status_code == 303
    chart = member.get(f"/patients/{c.patient_id}")
    assert chart.status_code == 200
    assert "second opinion" in chart.text
    assert str(c.student.id) in chart.text  # offered in the list of colleagues
    posted = member.post(
        f"/patients/{c.patient_id}/care-team",
        data={"csrf": csrf_of(chart.text), "user_id": str(c.student.id), "reason": "placement"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert "placement" in member.get(f"/patients/{c.patient_id}").text
    empty = member.post(
        f"/patients/{c.patient_id}/care-team",
        data={"csrf": csrf_of(chart.text), "user_id": "", "reason": ""},
        follow_redirects=False,
    )
    assert empty.status_code == 400
    assert "Nothing was saved" in empty.text
