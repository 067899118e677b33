"""FHIR R4 export (issue 17 item 1), on both databases: every resource parses back with
its R4B model; `$everything` holds exactly one patient's record; the Bulk Data export's
kick-off, status poll, NDJSON download and cancel; the API's access rules; the audit
trail records each disclosure."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from needlepoint.actions import adverse_events, clinics, episodes, patients, sessions
from needlepoint.adapters.db.tables import audit_events
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.fhir import codes
from needlepoint.domain.commands import (
    AmendSession,
    RecordAdverseEvent,
    RegisterUser,
    SignSession,
)
from needlepoint.domain.entities import Patient
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.domain.permissions import Permission
from tests.conftest import Api, ClinicFixture, make_api, make_clinic
from tests.factories import episode_cmd, patient_cmd, session_cmd


def chart(c: ClinicFixture, family_name: str = "Testperson") -> Patient:
    """A patient with an episode, a signed and amended note (four sites, NPRS and ROM),
    a draft note, a later adverse event and a consent."""
    patient = patients.register_patient(
        c.uow(), c.as_clinician, patient_cmd(family_name=family_name)
    )
    c.prepare_needling(patient.id)
    episode = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(patient.id))
    note = sessions.record_session(c.uow(), c.as_clinician, session_cmd(episode.id))
    sessions.sign_session(
        c.uow(), c.as_clinician, SignSession(session_id=note.id, expected_version=1)
    )
    sessions.amend_session(
        c.uow(),
        c.as_clinician,
        AmendSession(session_id=note.id, reason="Wrong side", text="Levator scapulae was right."),
    )
    adverse_events.record_adverse_event(
        c.uow(),
        c.as_clinician,
        RecordAdverseEvent(
            session_id=note.id,
            kind="bruising",
            severity="mild",
            onset_at="2026-02-04T08:00:00+00:00",
            description="Bruise the next morning",
        ),
    )
    sessions.record_session(
        c.uow(),
        c.as_clinician,
        session_cmd(episode.id, started_at="2026-02-10T09:30:00+00:00"),
    )
    return patient


def parse(resource: dict[str, Any]) -> Any:
    """The resource parsed back with its R4B model (raises when it is not valid)."""
    model = get_fhir_model_class(resource["resourceType"])
    return model.model_validate(resource)


def systems(value: Any) -> set[str]:
    """Every coding system anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            found.add(value["system"])
        for v in value.values():
            found |= systems(v)
    elif isinstance(value, list):
        for v in value:
            found |= systems(v)
    return found


def references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            found.add(value["reference"])
        for v in value.values():
            found |= references(v)
    elif isinstance(value, list):
        for v in value:
            found |= references(v)
    return found


def everything(api: Api, patient_id: UUID, who: str = "clinician") -> Any:
    return api.client.get(f"/fhir/R4/Patient/{patient_id}/$everything", headers=api.headers(who))


def test_everything_is_one_valid_bundle_of_exactly_that_patients_record(
    api: Api, other_clinic: ClinicFixture
) -> None:
    c = api.clinic
    mine = chart(c, "Mineperson")
    neighbour = chart(c, "Neighbourperson")
    elsewhere = chart(other_clinic, "Elsewhereperson")

    r = everything(api, mine.id)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    bundle = Bundle.model_validate(body)
    assert bundle.type == "searchset"
    resources = [e["resource"] for e in body["entry"]]
    for resource in resources:
        parse(resource)
    kinds = {res["resourceType"] for res in resources}
    assert kinds >= {
        "Patient",
        "Practitioner",
        "Condition",
        "EpisodeOfCare",
        "Encounter",
        "Procedure",
        "Questionnaire",
        "QuestionnaireResponse",
        "Observation",
        "Consent",
        "AdverseEvent",
        "Provenance",
    }
    # exactly this patient: one Patient, no word or id of the neighbour or the other clinic
    assert [res["id"] for res in resources if res["resourceType"] == "Patient"] == [str(mine.id)]
    text = r.text
    for stranger in (neighbour, elsewhere):
        assert str(stranger.id) not in text
        assert stranger.family_name not in text
    # every reference points at a resource of the bundle
    ids = {f"{res['resourceType']}/{res['id']}" for res in resources}
    assert references(body) <= ids
    # only the signed note (the draft is not yet the record): one Encounter
    assert sum(res["resourceType"] == "Encounter" for res in resources) == 1
    # four needling sites, each part of the session's claim-relevant procedure with CPT
    procedures = [res for res in resources if res["resourceType"] == "Procedure"]
    claim = [p for p in procedures if "partOf" not in p]
    assert len(claim) == 1
    cpt = [cd for cd in claim[0]["code"]["coding"] if cd["system"] == codes.CPT]
    assert [cd["code"] for cd in cpt] == ["20561"]  # four distinct muscles
    sites = [p for p in procedures if "partOf" in p]
    assert len(sites) == 4
    left = next(p for p in sites if p["bodySite"][0]["text"] == "Upper trapezius, left")
    laterality = left["bodySite"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]
    assert (laterality["system"], laterality["code"]) == (codes.SNOMED, "7771000")
    # NPRS with its verified LOINC code; ROM (no verified LOINC) with the local code
    observations = {
        o["code"]["coding"][0]["code"]: o for o in resources if o["resourceType"] == "Observation"
    }
    assert observations["72514-3"]["code"]["coding"][0]["system"] == "http://loinc.org"
    assert observations["72514-3"]["valueQuantity"]["value"] == 6
    assert observations["rom"]["code"]["coding"][0]["system"] == codes.INSTRUMENT
    # the diagnosis in ICD-10-CM
    condition = next(res for res in resources if res["resourceType"] == "Condition")
    assert condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    # signature and amendment as Provenance, signed by the clinician
    provenance = [res for res in resources if res["resourceType"] == "Provenance"]
    assert {p["activity"]["coding"][0]["code"] for p in provenance} == {"CREATE", "UPDATE"}
    assert all(
        p["signature"][0]["who"]["reference"] == f"Practitioner/{c.clinician.id}"
        for p in provenance
    )
    # code systems: only the official URIs and our own local ones
    assert systems(body) <= codes.KNOWN_SYSTEMS


def test_everything_follows_the_apis_access_rules(api: Api, other_clinic: ClinicFixture) -> None:
    mine = chart(api.clinic)
    theirs = chart(other_clinic, "Elsewhereperson")
    assert everything(api, theirs.id).status_code == 404  # another clinic's patient
    assert everything(api, mine.id, "assistant").status_code == 403  # no clinical reads
    anonymous = api.client.get(f"/fhir/R4/Patient/{mine.id}/$everything")
    assert anonymous.status_code == 401
    assert everything(api, mine.id, "owner").status_code == 200


def test_everything_is_audited_as_a_disclosure_of_the_patients_record(api: Api) -> None:
    mine = chart(api.clinic)
    assert everything(api, mine.id).status_code == 200
    api.client.app.state.deferred.flush()  # type: ignore[attr-defined]
    with api.clinic.engine.connect() as conn:
        found = conn.execute(
            sa.select(audit_events.c.actor_user_id).where(
                audit_events.c.action == AuditAction.RECORDS_DISCLOSED,
                audit_events.c.patient_id == mine.id,
            )
        ).all()
    assert [row.actor_user_id for row in found] == [api.clinic.clinician.id]


def test_metadata_is_a_capability_statement() -> None:
    from fastapi.testclient import TestClient

    from needlepoint.web.app import create_app

    app = create_app(sa.create_engine("sqlite://"), secret_key="x" * 32)
    r = TestClient(app).get("/fhir/R4/metadata")
    assert r.status_code == 200
    statement = parse(r.json())
    assert statement.kind == "instance"
    ops = {op.name for op in statement.rest[0].operation}
    assert ops == {"export"}


# -- bulk export -------------------------------------------------------------------------


def kick_off(api: Api, who: str = "owner", **params: str) -> Any:
    return api.client.get(
        "/fhir/R4/$export",
        params=params,
        headers=api.headers(who, Prefer="respond-async", Accept="application/fhir+json"),
    )


def wait_for(api: Api, status_url: str, who: str = "owner") -> Any:
    for _ in range(600):
        r = api.client.get(status_url, headers=api.headers(who))
        if r.status_code != 202:
            return r
        assert "X-Progress" in r.headers
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


def test_bulk_export_kick_off_poll_and_download(api: Api, other_clinic: ClinicFixture) -> None:
    c = api.clinic
    charted = [chart(c, f"Bulkperson{i}") for i in range(3)]
    chart(other_clinic, "Elsewhereperson")

    r = kick_off(api)
    assert r.status_code == 202, r.text
    status_url = r.headers["Content-Location"]
    assert "/fhir/R4/$export-status/" in status_url
    done = wait_for(api, status_url)
    assert done.status_code == 200, done.text
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    by_type = {o["type"]: o for o in manifest["output"]}
    assert set(by_type) >= {"Patient", "Practitioner", "Procedure", "Observation", "Provenance"}
    assert by_type["Patient"]["count"] == 3

    every: list[dict[str, Any]] = []
    for kind, out in by_type.items():
        f = api.client.get(out["url"], headers=api.headers("owner"))
        assert f.status_code == 200, f.text
        assert f.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in f.text.splitlines()]
        assert len(lines) == out["count"]
        assert {line["resourceType"] for line in lines} == {kind}
        for line in lines:
            parse(line)
        every += lines
    patients_out = {res["id"] for res in every if res["resourceType"] == "Patient"}
    assert patients_out == {str(p.id) for p in charted}
    text = orjson.dumps(every).decode()
    assert "Elsewhereperson" not in text
    assert systems(every) <= codes.KNOWN_SYSTEMS

    # the file needs the token too, and nobody of another clinic gets it
    url = by_type["Patient"]["url"]
    assert api.client.get(url).status_code == 401
    other = make_api(c.engine, other_clinic)
    assert other.client.get(url, headers=other.headers("owner")).status_code == 404
    assert other.client.get(status_url, headers=other.headers("owner")).status_code == 404

    # every exported patient is on the audit trail as a disclosure
    api.client.app.state.deferred.flush()  # type: ignore[attr-defined]
    with c.engine.connect() as conn:
        disclosed = {
            row.patient_id
            for row in conn.execute(
                sa.select(audit_events.c.patient_id).where(
                    audit_events.c.clinic_id == c.owner.clinic_id,
                    audit_events.c.action == AuditAction.RECORDS_DISCLOSED,
                )
            )
        }
    assert {p.id for p in charted} <= disclosed

    # DELETE removes the files; the status is gone
    assert api.client.delete(status_url, headers=api.headers("owner")).status_code == 202
    assert api.client.get(status_url, headers=api.headers("owner")).status_code == 404
    assert api.client.get(url, headers=api.headers("owner")).status_code == 404


def test_bulk_export_is_refused_without_clinical_reads_and_needs_respond_async(
    api: Api,
) -> None:
    chart(api.clinic)
    assert kick_off(api, "assistant").status_code == 403
    assert api.client.get("/fhir/R4/$export").status_code == 401
    no_prefer = api.client.get("/fhir/R4/$export", headers=api.headers("owner"))
    assert no_prefer.status_code == 422
    assert no_prefer.json()["errors"][0]["field"] == "Prefer"
    bad_type = kick_off(api, _type="Patient,Spaceship")
    assert bad_type.status_code == 422
    assert "Spaceship" in bad_type.text


def test_a_clinician_bound_by_the_care_team_restriction_may_not_export_the_clinic(
    api: Api,
) -> None:
    chart(api.clinic)
    r = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": False, "care_team_restriction": True},
        headers=api.headers("owner", **{"If-Match": '"1"'}),
    )
    assert r.status_code == 200, r.text
    assert kick_off(api, "clinician").status_code == 403
    assert kick_off(api, "owner").status_code == 202


def test_an_export_made_before_the_care_team_restriction_is_no_longer_the_clinicians(
    api: Api,
) -> None:
    """Security review: the files of an export a clinician made while the clinic was
    open stayed downloadable after the owner restricted records to each care team; the
    same rule as starting an export now applies to its status and files."""
    chart(api.clinic)
    started = kick_off(api, "clinician")
    assert started.status_code == 202
    done = wait_for(api, started.headers["Content-Location"], "clinician")
    assert done.status_code == 200, done.text
    files = [o["url"] for o in done.json()["output"]]
    assert api.client.get(files[0], headers=api.headers("clinician")).status_code == 200
    r = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": False, "care_team_restriction": True},
        headers=api.headers("owner", **{"If-Match": '"1"'}),
    )
    assert r.status_code == 200, r.text
    for url in (started.headers["Content-Location"], *files):
        assert api.client.get(url, headers=api.headers("clinician")).status_code == 403, url
    assert api.client.get(files[0], headers=api.headers("owner")).status_code == 200


def test_a_finished_export_expires_and_its_files_are_deleted(api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    from needlepoint.adapters.db import fhir_exports as store
    from needlepoint.adapters.db.tables import fhir_export_chunks, fhir_export_jobs

    chart(api.clinic)
    started = kick_off(api)
    status_url = started.headers["Content-Location"]
    done = wait_for(api, status_url)
    assert done.status_code == 200
    file_url = done.json()["output"][0]["url"]
    long_ago = datetime.now(UTC) - store.KEPT_FOR - timedelta(minutes=1)
    job_id = UUID(status_url.rsplit("/", 1)[-1])
    with api.clinic.engine.begin() as conn:
        conn.execute(
            sa.update(fhir_export_jobs)
            .where(fhir_export_jobs.c.id == job_id)
            .values(finished_at=long_ago, updated_at=long_ago)
        )
    gone = api.client.get(file_url, headers=api.headers("owner"))
    assert gone.status_code == 404
    assert "expired" in gone.text
    assert api.client.get(status_url, headers=api.headers("owner")).status_code == 404
    with api.clinic.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(fhir_export_chunks.c.job_id == job_id)
        ).scalar_one()
    assert left == 0


def test_only_the_requester_or_the_owner_polls_an_export(api: Api) -> None:
    c = api.clinic
    chart(c)
    r = kick_off(api, "clinician")
    assert r.status_code == 202
    status_url = r.headers["Content-Location"]
    colleague = clinics.register_user(
        SqlUnitOfWork(c.engine),
        c.as_owner,
        RegisterUser(email="colleague@test.example", full_name="Col League", role=Role.CLINICIAN),
    )
    token = clinics.issue_operator_token(SqlUnitOfWork(c.engine), colleague, "t", source="test")
    refused = api.client.get(status_url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    assert wait_for(api, status_url, "owner").status_code == 200
    assert wait_for(api, status_url, "clinician").status_code == 200


def test_type_filter_exports_only_those_types(api: Api) -> None:
    chart(api.clinic)
    r = kick_off(api, _type="Patient,Observation")
    done = wait_for(api, r.headers["Content-Location"])
    assert {o["type"] for o in done.json()["output"]} == {"Patient", "Observation"}


@pytest.mark.parametrize("page_size", [1, 2])
def test_the_export_pages_through_the_clinic(page_size: int, engine: sa.Engine) -> None:
    """Several pages (keyset by id) give every patient once."""
    from needlepoint.adapters.db import fhir_exports as store
    from needlepoint.queries import fhir_bulk
    from needlepoint.queries.reader import open_reader

    c = make_clinic(engine)
    made = {chart(c, f"Pageperson{i}").id for i in range(3)}
    requester = fhir_bulk.Requester(c.owner.clinic_id, c.owner.id, Role.OWNER)
    with open_reader(engine, c.owner.clinic_id, Role.OWNER, c.owner.id) as r:
        job = fhir_bulk.kick_off(r, engine, "test", ["Patient"])
    fhir_bulk.run(engine, job, requester, lambda t: t, page_size=page_size)
    finished = store.load_job(engine, c.owner.clinic_id, job.id)
    assert finished is not None
    assert finished.status == store.COMPLETED
    assert finished.patients_done == 3
    lines = "".join(store.read_chunks(engine, finished, "Patient")).splitlines()
    assert {orjson.loads(line)["id"] for line in lines} == {str(i) for i in made}


@pytest.mark.parametrize("role", list(Role))
def test_every_role_gets_exactly_what_read_clinical_allows(api: Api, role: Role) -> None:
    """The FHIR endpoints follow the one permission table, role by role."""
    from needlepoint.domain.permissions import allows

    c = api.clinic
    mine = chart(c)
    user = clinics.register_user(
        SqlUnitOfWork(c.engine),
        c.as_owner,
        RegisterUser(email=f"{role}@fhir.example", full_name=f"Some {role}", role=role),
    )
    token = clinics.issue_operator_token(SqlUnitOfWork(c.engine), user, "t", source="test")
    auth = {"Authorization": f"Bearer {token}"}
    got = api.client.get(f"/fhir/R4/Patient/{mine.id}/$everything", headers=auth)
    started = api.client.get("/fhir/R4/$export", headers={**auth, "Prefer": "respond-async"})
    if allows(role, Permission.READ_CLINICAL):
        assert got.status_code == 200, got.text
        assert started.status_code == 202, started.text
        assert wait_for(api, started.headers["Content-Location"]).status_code == 200
    else:
        assert got.status_code == 403, got.text
        assert started.status_code == 403, started.text


def test_a_read_only_token_may_export_but_not_delete(api: Api) -> None:
    c = api.clinic
    chart(c)
    # the owner has no password in the fixtures: a token made read-only directly
    from needlepoint.adapters.db.tables import api_tokens

    token = clinics.issue_operator_token(SqlUnitOfWork(c.engine), c.owner, "ro", source="test")
    with c.engine.begin() as conn:
        conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.label == "ro", api_tokens.c.user_id == c.owner.id)
            .values(scopes="read")
        )
    auth = {"Authorization": f"Bearer {token}"}
    started = api.client.get("/fhir/R4/$export", headers={**auth, "Prefer": "respond-async"})
    assert started.status_code == 202
    status_url = started.headers["Content-Location"]
    assert wait_for(api, status_url).status_code == 200
    assert api.client.delete(status_url, headers=auth).status_code == 403


def test_an_everything_bundle_reads_back_as_one_patients_import_record(
    api: Api, tmp_path: Path
) -> None:
    from needlepoint.importing.fhir_reader import read_fhir

    mine = chart(api.clinic)
    r = everything(api, mine.id)
    (tmp_path / "bundle.json").write_text(r.text, encoding="utf-8")
    read = read_fhir(tmp_path / "bundle.json")
    assert read.problems == ()
    [patient] = read.patients
    assert (patient.external_id, patient.family_name) == (str(mine.id), mine.family_name)
    [episode] = patient.episodes
    assert episode.condition == "neck_pain"
    [note] = episode.sessions  # the signed note only
    assert note.signature is not None
    assert note.signature.signer.email == api.clinic.clinician.email
    assert [a.text for a in note.amendments] == ["Levator scapulae was right."]
    assert len(note.sites) == 4
    assert {m.instrument_id for m in note.measurements} == {"nprs", "rom"}
    assert [e.kind for e in note.adverse_events] == ["bruising"]


def test_a_cancelled_export_leaves_no_files(engine: sa.Engine) -> None:
    """Cancelled at any point (here: before the job starts), the job writes nothing that
    stays, and its status is gone."""
    from needlepoint.adapters.db import fhir_exports as store
    from needlepoint.adapters.db.tables import fhir_export_chunks
    from needlepoint.queries import fhir_bulk
    from needlepoint.queries.reader import open_reader

    c = make_clinic(engine)
    chart(c)
    with open_reader(engine, c.owner.clinic_id, Role.OWNER, c.owner.id) as r:
        job = fhir_bulk.kick_off(r, engine, "test", ["Patient", "Questionnaire"])
    store.cancel(engine, job)
    requester = fhir_bulk.Requester(c.owner.clinic_id, c.owner.id, Role.OWNER)
    fhir_bulk.run(engine, job, requester, lambda t: t)
    finished = store.load_job(engine, c.owner.clinic_id, job.id)
    assert finished is not None
    assert finished.status == store.CANCELLED
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(fhir_export_chunks.c.job_id == job.id)
        ).scalar_one()
    assert left == 0


def test_a_job_whose_process_stopped_is_seen_as_failed() -> None:
    from datetime import UTC, datetime, timedelta

    from needlepoint.adapters.db import fhir_exports as store

    then = datetime(2026, 1, 1, tzinfo=UTC)
    job = store.ExportJob(
        id=UUID(int=1),
        clinic_id=UUID(int=2),
        requested_by=UUID(int=3),
        request_url="x",
        types=["Patient"],
        status=store.RUNNING,
        requested_at=then,
        updated_at=then,
        finished_at=None,
        patients_total=10,
        patients_done=3,
        output=None,
        error=None,
    )
    assert job.current_status(then + timedelta(minutes=1)) == store.RUNNING
    assert job.current_status(then + store.STALE_AFTER + timedelta(seconds=1)) == store.FAILED


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/fhir/R4/$export", {"_since": "2026-01-01"}, {"Prefer": "respond-async"}),
        ("/fhir/R4/$export", {"bad\x00name": "x"}, {"Prefer": "respond-async"}),
        ("/fhir/R4/Patient/not-a-uuid/$everything", {}, {}),
        ("/fhir/R4/$export-status/not-a-uuid", {}, {}),
    ],
)
def test_fhir_errors_are_problem_documents_even_for_a_browser(
    api: Api, path: str, params: dict[str, str], headers: dict[str, str]
) -> None:
    """FHIR is read by programs: a refused request gets a problem document naming the
    field, never the web app's HTML page, whatever the client's Accept header says (the
    fuzzer found an HTML 422 on $export), and no token is a 401, not a sign-in page."""
    browser = {"Accept": "text/html,application/xhtml+xml", **headers}
    r = api.client.get(path, params=params, headers={**api.headers(), **browser})
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    anonymous = api.client.get(path, params=params, headers=browser, follow_redirects=False)
    assert anonymous.status_code in (400, 401, 422), anonymous.headers
    assert anonymous.headers["content-type"].startswith("application/problem+json")
