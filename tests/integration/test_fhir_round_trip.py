"""FHIR in (issue 17): a generated clinic exported by the Bulk Data export, read back by the
FHIR reader and imported into an empty clinic with the same staff, then exported again,
gives the same content (ids, references to ids and record-keeping times aside), on both
databases; a malformed resource is reported by resource and field, and nothing of that
patient is written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from needlepoint.actions.context import Actor
from needlepoint.actions.sessions import amend_session
from needlepoint.adapters.db import fhir_exports as store
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import AmendSession
from needlepoint.domain.enums import Role
from needlepoint.importing.engine import run_import
from needlepoint.importing.fhir_reader import read_fhir
from needlepoint.queries import fhir_bulk
from needlepoint.queries.reader import open_reader
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.synthetic.emr_export import copy_staff

# Not carried by an import: the import records hold no consents, and the staff are the
# importing clinic's own (matched by e-mail; their training records are theirs). Set by
# the importing clinic when it records (not what happened): compared without them.
NOT_IMPORTED = {"Consent", "Practitioner"}
RECORD_KEEPING = {("Condition", "recordedDate"), ("AdverseEvent", "recordedDate")}


def export_to(engine: sa.Engine, clinic_id: UUID, folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The clinic's bulk export, written as NDJSON files into `folder`."""
    with engine.connect() as conn:
        owner = conn.execute(
            sa.select(t.users.c.id).where(
                t.users.c.clinic_id == clinic_id, t.users.c.role == Role.OWNER
            )
        ).scalar_one()
    with open_reader(engine, clinic_id, Role.OWNER, owner) as r:
        job = fhir_bulk.kick_off(r, engine, "test", fhir_bulk.requested_types(None))
    fhir_bulk.run(engine, job, fhir_bulk.Requester(clinic_id, owner, Role.OWNER), lambda x: x)
    done = store.load_job(engine, clinic_id, job.id)
    assert done is not None
    assert done.status == store.COMPLETED, done.error
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[dict[str, Any]]] = {}
    for out in done.output or []:
        text = "".join(store.read_chunks(engine, done, out["type"]))
        (folder / f"{out['type']}.ndjson").write_text(text, encoding="utf-8")
        found[out["type"]] = [json.loads(line) for line in text.splitlines()]
    return found


def content(value: Any, kind: str = "", key: str = "") -> Any:
    """A resource without its ids: references keep only the type they point at,
    identifier systems lose the clinic's id, record-keeping times are dropped."""
    if isinstance(value, dict):
        kind = value.get("resourceType", kind)
        found = {}
        for k, v in value.items():
            if k == "id" or (kind, k) in RECORD_KEEPING:
                continue
            if k == "reference" and isinstance(v, str):
                found[k] = v.split("/", 1)[0]
            elif k == "system" and isinstance(v, str) and v.startswith("urn:needlepoint:clinic:"):
                found[k] = "urn:needlepoint:clinic"
            elif k == "identifier" and kind == "Practitioner" and key == "qualification":
                continue  # a training record's own id
            else:
                found[k] = content(v, kind, k)
        return found
    if isinstance(value, list):
        return [content(v, kind, key) for v in value]
    return value


def comparable(export: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {
        kind: sorted(json.dumps(content(r), sort_keys=True) for r in resources)
        for kind, resources in export.items()
        if kind not in NOT_IMPORTED
    }


_SEEDS = itertools.count(7100)


@pytest.fixture
def source(engine: sa.Engine) -> tuple[UUID, UUID]:
    """A generated clinic with one amended note, and an empty clinic with its staff."""
    # each generated clinic's ids follow from its seed: a seed of its own per test
    report = generate_clinic(engine, patients_count=12, seed=next(_SEEDS), workers=1)
    with engine.connect() as conn:
        note = conn.execute(
            sa.select(t.sessions.c.id, t.sessions.c.signed_by)
            .where(t.sessions.c.clinic_id == report.clinic_id, t.sessions.c.signed_by.isnot(None))
            .order_by(t.sessions.c.started_at)
        ).first()
    assert note is not None
    amend_session(
        SqlUnitOfWork(engine),
        Actor(note.signed_by, report.clinic_id, source="test"),
        AmendSession(session_id=note.id, reason="Side", text="Left side, not right."),
    )
    owner = copy_staff(engine, report.clinic_id, engine, "Imported from FHIR")
    return report.clinic_id, owner


def test_export_import_export_gives_the_same_content(
    engine: sa.Engine, source: tuple[UUID, UUID], tmp_path: Path
) -> None:
    clinic_id, owner_id = source
    first = export_to(engine, clinic_id, tmp_path / "first")
    read = read_fhir(tmp_path / "first")
    assert read.problems == ()
    assert len(read.patients) == 12
    with engine.connect() as conn:
        target = conn.execute(
            sa.select(t.users.c.clinic_id).where(t.users.c.id == owner_id)
        ).scalar_one()
    report = run_import(
        engine, Actor(owner_id, target, source="test"), read.patients, source="fhir", dry_run=False
    )
    assert report.problems == [], report.problems[:5]
    assert report.patients_imported == 12
    second = export_to(engine, target, tmp_path / "second")
    a, b = comparable(first), comparable(second)
    assert a.keys() == b.keys()
    for kind in a:
        only_a = sorted(set(a[kind]) - set(b[kind]))[:2]
        only_b = sorted(set(b[kind]) - set(a[kind]))[:2]
        assert a[kind] == b[kind], (kind, only_a, only_b)
    assert sum(len(v) for v in a.values()) > 100  # a real clinic's worth, not an empty one


def test_a_malformed_resource_is_named_and_its_patient_is_not_imported(
    engine: sa.Engine, source: tuple[UUID, UUID], tmp_path: Path
) -> None:
    clinic_id, owner_id = source
    exported = export_to(engine, clinic_id, tmp_path / "x")
    procedures = (tmp_path / "x" / "Procedure.ndjson").read_text().splitlines()
    broken = json.loads(procedures[0])
    broken["performedDateTime"] = "yesterday"  # not a dateTime
    victim = broken["subject"]["reference"].split("/", 1)[1]
    procedures[0] = json.dumps(broken)
    (tmp_path / "x" / "Procedure.ndjson").write_text("\n".join(procedures) + "\n")
    (tmp_path / "x" / "Observation.ndjson").write_text(
        (tmp_path / "x" / "Observation.ndjson").read_text() + "{not json\n"
    )
    read = read_fhir(tmp_path / "x")
    named = {(p.origin.source, p.field) for p in read.problems}
    assert ("Procedure", "performedDateTime") in named
    assert any(p.origin.source == "Observation.ndjson" for p in read.problems)
    assert victim not in {p.external_id for p in read.patients}
    assert len(read.patients) == 11
    assert any(p.patient_external_id == victim for p in read.problems)

    # imported: the others, and nothing of that patient
    with engine.connect() as conn:
        target = conn.execute(
            sa.select(t.users.c.clinic_id).where(t.users.c.id == owner_id)
        ).scalar_one()
    report = run_import(
        engine,
        Actor(owner_id, target, source="test"),
        read.patients,
        source="fhir",
        dry_run=False,
        problems=read.problems,
    )
    assert report.patients_imported == 11
    victim_mrn = next(
        i["value"] for p in exported["Patient"] if p["id"] == victim for i in p["identifier"]
    )
    with engine.connect() as conn:
        mrns = set(
            conn.execute(sa.select(t.patients.c.mrn).where(t.patients.c.clinic_id == target))
            .scalars()
            .all()
        )
    assert len(mrns) == 11
    assert victim_mrn not in mrns


def test_the_api_imports_a_fhir_export_and_refuses_unsafe_file_names(
    engine: sa.Engine, source: tuple[UUID, UUID], tmp_path: Path
) -> None:
    """`POST /api/v1/imports` with `format: fhir` takes the NDJSON files of a Bulk Data
    export (owner only) and imports every patient; a file name that is not a plain
    FHIR file name is refused, naming it, and nothing is written."""
    from fastapi.testclient import TestClient

    from needlepoint.actions.clinics import issue_operator_token
    from needlepoint.domain.entities import User
    from needlepoint.web.app import create_app

    clinic_id, owner_id = source
    export_to(engine, clinic_id, tmp_path / "export")
    files = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "export").iterdir()}
    with engine.connect() as conn:
        target = conn.execute(
            sa.select(t.users.c.clinic_id).where(t.users.c.id == owner_id)
        ).scalar_one()
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.id == owner_id)).one()
    token = issue_operator_token(SqlUnitOfWork(engine), User(**row._mapping), "import")

    # 12 patients' whole records: more than the default body limit (an operator raises
    # NEEDLEPOINT_MAX_BODY_BYTES for API imports, or uses the CLI)
    client = TestClient(create_app(engine, secret_key="k" * 40, max_body_bytes=16 << 20))
    h = {"Authorization": f"Bearer {token}"}
    for bad in ("../Patient.ndjson", "Patient.ndjson/..", "a/b.json", "Patient.txt"):
        r = client.post("/api/v1/imports", json={"format": "fhir", "files": {bad: "{}"}}, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert "files.0" in r.text
    r = client.post("/api/v1/imports", json={"format": "fhir", "files": files}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["problems"] == []
    assert r.json()["patients_imported"] == 12
    with engine.connect() as conn:
        imported = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.patients)
            .where(t.patients.c.clinic_id == target)
        ).scalar_one()
    assert imported == 12
