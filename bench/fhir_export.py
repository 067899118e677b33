"""FHIR bulk export benchmark: the clinic-level `$export` of a generated clinic.

Builds (or, with --reuse, reuses) a generated clinic in an SQLite file under /tmp (or
exports the database at --db, generating the clinic into it first when it has none, e.g. a
new PostgreSQL database), then runs the bulk export job exactly
as the server's background thread does (`queries.fhir_bulk.run`: pages of patients, R4B
models, NDJSON pieces written to the database as it goes) and prints patients/s,
resources/s, the bytes written and the process's peak resident memory (the high-water
mark of `ru_maxrss`, before the export and after it: the difference is what the export
added). Memory stays bounded: one page of records and one ~1 MiB buffer per resource type;
running with twice the patients should not raise the peak (compare --patients 2000 with
--patients 4000).

    .venv/bin/python bench/fhir_export.py [--patients 2000] [--db URL] [--reuse] [--page 100]
        [--import]   (then read the files back and import them into a new clinic: FHIR in)
    createdb -h 127.0.0.1 -U postgres fhir_bench && .venv/bin/python bench/fhir_export.py \
        --db postgresql+psycopg://postgres@127.0.0.1:5432/fhir_bench
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db import fhir_exports as store
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.tables import clinics, fhir_export_chunks, users
from needlepoint.domain.enums import Role
from needlepoint.queries import fhir_bulk
from needlepoint.queries.reader import open_reader
from needlepoint.synthetic.clinic import generate_clinic

SEED = 2026


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (Linux: KiB; macOS: bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def build(path: Path, patients: int, reuse: bool) -> sa.Engine:
    if reuse and path.exists():
        print(f"reusing {path}")
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)  # a clinic generated before the newest migrations
        return engine
    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    start = time.perf_counter()
    report = generate_clinic(engine, patients_count=patients, seed=SEED)
    print(
        f"generated {patients:,} patients, {report.sessions:,} sessions in "
        f"{time.perf_counter() - start:.0f} s -> {path}"
    )
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--db", help="an existing database URL (default: a generated SQLite)")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--page", type=int, default=fhir_bulk.PAGE_SIZE)
    parser.add_argument(
        "--import",
        dest="import_too",
        action="store_true",
        help="then read the export back (FHIR reader) and import it into a new clinic",
    )
    args = parser.parse_args()

    if args.db:
        engine = make_engine(args.db)
        upgrade(engine)
        with engine.connect() as conn:
            empty = conn.execute(sa.select(sa.func.count()).select_from(clinics)).scalar_one() == 0
        if empty:  # a new database: generate the clinic into it first
            start = time.perf_counter()
            report = generate_clinic(engine, patients_count=args.patients, seed=SEED)
            print(
                f"generated {args.patients:,} patients, {report.sessions:,} sessions in "
                f"{time.perf_counter() - start:.0f} s -> {args.db}"
            )
    else:
        engine = build(Path(f"/tmp/fhir-export-{args.patients}.db"), args.patients, args.reuse)
    with engine.connect() as conn:
        clinic_id = conn.execute(sa.select(clinics.c.id).order_by(clinics.c.created_at)).scalar()
        owner = conn.execute(
            sa.select(users.c.id).where(users.c.clinic_id == clinic_id, users.c.role == Role.OWNER)
        ).scalar()
    assert clinic_id is not None
    assert owner is not None

    before = peak_rss_mib()
    with open_reader(engine, clinic_id, Role.OWNER, owner, source="cli") as r:
        job = fhir_bulk.kick_off(r, engine, "bench", fhir_bulk.requested_types(None))
    requester = fhir_bulk.Requester(clinic_id, owner, Role.OWNER)
    start = time.perf_counter()
    fhir_bulk.run(engine, job, requester, lambda t: t, page_size=args.page)
    elapsed = time.perf_counter() - start
    after = peak_rss_mib()

    done = store.load_job(engine, clinic_id, job.id)
    assert done is not None
    assert done.status == store.COMPLETED, done
    resources = sum(o["count"] for o in done.output or [])
    with engine.connect() as conn:
        written = conn.execute(
            sa.select(sa.func.sum(sa.func.length(fhir_export_chunks.c.data))).where(
                fhir_export_chunks.c.job_id == job.id
            )
        ).scalar_one()
    print(f"backend: {engine.dialect.name}; page size {args.page}")
    print(f"patients: {done.patients_done:,}; resources: {resources:,}; {written / 1e6:.1f} MB")
    for o in done.output or []:
        print(f"  {o['type']:<22} {o['count']:>9,}")
    print(f"export: {elapsed:.1f} s")
    print(f"patients/s: {done.patients_done / elapsed:,.0f}")
    print(f"resources/s: {resources / elapsed:,.0f}")
    print(f"peak RSS: {before:.0f} MiB before the export, {after:.0f} MiB after")
    if args.import_too:
        import_back(engine, clinic_id, done)
    store.cancel(engine, job)  # delete the files again


def import_back(engine: sa.Engine, clinic_id: UUID, job: store.ExportJob) -> None:
    """FHIR in: the export's files read by the FHIR reader, imported into a new clinic with
    the same staff; times and peak memory of each step."""
    import tempfile

    from needlepoint.actions.context import Actor
    from needlepoint.importing.engine import run_import
    from needlepoint.importing.fhir_reader import read_fhir
    from needlepoint.synthetic.emr_export import copy_staff

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for out in job.output or []:
            with (folder / f"{out['type']}.ndjson").open("w", encoding="utf-8") as f:
                for piece in store.read_chunks(engine, job, out["type"]):
                    f.write(piece)
        start = time.perf_counter()
        read = read_fhir(folder)
        reading = time.perf_counter() - start
    print(
        f"FHIR read: {len(read.patients):,} patients, {len(read.problems)} problems, "
        f"{reading:.1f} s; peak RSS {peak_rss_mib():.0f} MiB"
    )
    owner = copy_staff(engine, clinic_id, engine, "Imported from FHIR (bench)")
    with engine.connect() as conn:
        target = conn.execute(sa.select(users.c.clinic_id).where(users.c.id == owner)).scalar_one()
    start = time.perf_counter()
    report = run_import(
        engine,
        Actor(owner, target, source="cli"),
        read.patients,
        source="fhir",
        dry_run=False,
        problems=read.problems,
    )
    importing = time.perf_counter() - start
    print(
        f"FHIR import: {report.patients_imported:,} patients imported, "
        f"{len(report.problems)} problems, {importing:.1f} s "
        f"({report.patients_imported / importing:,.0f} patients/s); "
        f"peak RSS {peak_rss_mib():.0f} MiB"
    )


if __name__ == "__main__":
    main()
