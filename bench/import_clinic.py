"""Import benchmark: a 3,000-patient clinic, exported by "another EMR" in the import's CSV
layout, imported into an empty database through the actions (docs/import.md).

The clinic is made by the synthetic generator (`synthetic/clinic.py`) and written out
with `synthetic/emr_export.py`; that part is not timed. Each import then runs in a
fresh process (so that its peak memory is its own) into an empty SQLite file and an
empty PostgreSQL database with the clinic's staff copied in: reading the CSV files,
checking every record, running the actions per patient and writing each batch of
patients in one transaction, exactly as `needlepoint import` does. Printed per
database: patients/s, sessions/s, total seconds, peak RSS, and the ratio to the goal
(60 s for the whole clinic; issue 17). The machine is shared: the load average is
printed with each figure.

    .venv/bin/python bench/import_clinic.py [--patients 3000] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

GOAL_SECONDS = 60.0
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def make_export(patients: int, seed: int, folder: Path) -> tuple[str, str]:
    """Generate the clinic into a scratch SQLite file and export it as CSV; returns the
    scratch database's URL and the owner's e-mail."""
    from needlepoint.bootstrap import open_database
    from needlepoint.synthetic.clinic import generate_clinic
    from needlepoint.synthetic.emr_export import export_clinic_csv

    url = f"sqlite:///{folder / 'source.db'}"
    engine = open_database(url)
    started = time.perf_counter()
    report = generate_clinic(engine, patients_count=patients, seed=seed)
    counts = export_clinic_csv(engine, report.clinic_id, folder / "csv")
    print(
        f"source clinic: {counts.patients} patients, {counts.episodes} episodes, "
        f"{counts.sessions} sessions, {counts.sites} sites, {counts.measurements} "
        f"measurements ({counts.skipped_measurements} outside an episode, not exported); "
        f"generated and exported in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    with engine.connect() as conn:
        email = conn.execute(
            sa.text("SELECT email FROM users WHERE role = 'owner' AND clinic_id = :c"),
            {"c": report.clinic_id.hex},
        ).scalar_one()
    engine.dispose()
    return url, str(email)


def prepare_target(source_url: str, target_url: str) -> None:
    """An empty, migrated database holding the clinic's staff (no patients)."""
    from needlepoint.bootstrap import open_database
    from needlepoint.synthetic.emr_export import copy_staff

    source = open_database(source_url, migrate=False)
    target = open_database(target_url)
    with source.connect() as conn:
        clinic_id = uuid.UUID(conn.execute(sa.text("SELECT id FROM clinics")).scalar_one())
    copy_staff(source, clinic_id, target, "Imported clinic")
    source.dispose()
    target.dispose()


def import_only(target_url: str, folder: Path, owner_email: str) -> None:
    """The timed part, in its own process: read, check, run the actions, write."""
    from needlepoint.actions.context import Actor
    from needlepoint.bootstrap import open_database
    from needlepoint.importing.csv_reader import read_csv_folder
    from needlepoint.importing.engine import run_import

    engine = open_database(target_url, migrate=False)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT id, clinic_id FROM users WHERE email = :e"), {"e": owner_email}
        ).one()
    actor = Actor(uuid.UUID(str(row[0])), uuid.UUID(str(row[1])), source="import")
    started = time.perf_counter()
    read = read_csv_folder(folder)
    read_seconds = time.perf_counter() - started
    report = run_import(
        engine, actor, read.patients, source="csv", dry_run=False, problems=read.problems
    )
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "read_seconds": read_seconds,
                "patients": report.patients_imported,
                "sessions": report.sessions_imported,
                "measurements": report.measurements_imported,
                "problems": len(report.problems),
                "first_problems": [str(p) for p in report.problems[:5]],
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


def bench(name: str, source_url: str, target_url: str, folder: Path, owner_email: str) -> None:
    prepare_target(source_url, target_url)
    load_before = _load()
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--import-into",
            target_url,
            "--csv",
            str(folder / "csv"),
            "--owner-email",
            owner_email,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = result["seconds"]
    print(
        f"{name:10s}: {result['patients']} patients, {result['sessions']} sessions, "
        f"{result['measurements']} measurements in {seconds:.1f} s "
        f"(reading the CSV {result['read_seconds']:.1f} s) → "
        f"{result['patients'] / seconds:.0f} patients/s, {result['sessions'] / seconds:.0f} "
        f"sessions/s; peak RSS {result['peak_rss_mb']:.0f} MB; "
        f"{seconds / GOAL_SECONDS:.2f} × the {GOAL_SECONDS:.0f} s goal "
        f"({'met' if seconds < GOAL_SECONDS else 'NOT met'}); {result['problems']} problems; "
        f"before: {load_before}; after: {_load()}",
        flush=True,
    )
    for p in result["first_problems"]:
        print(f"  problem: {p}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg", default=os.environ.get("NEEDLEPOINT_TEST_PG", PG_DEFAULT))
    parser.add_argument("--import-into", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--owner-email", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.import_into:
        import_only(args.import_into, Path(args.csv), args.owner_email)
        return
    with tempfile.TemporaryDirectory(prefix="needlepoint-import-bench-") as tmp:
        folder = Path(tmp)
        source_url, owner_email = make_export(args.patients, args.seed, folder)
        if args.db in ("sqlite", "both"):
            bench("SQLite", source_url, f"sqlite:///{folder / 'target.db'}", folder, owner_email)
        if args.db in ("postgresql", "both"):
            admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
            name = f"needlepoint_import_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                target = sa.engine.make_url(args.pg).set(database=name)
                url = target.render_as_string(hide_password=False)
                bench("PostgreSQL", source_url, url, folder, owner_email)
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
