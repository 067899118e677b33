"""Research export benchmark: the de-identified release of a generated clinic.

Builds (or, with --reuse, reuses) a generated clinic in an SQLite file under /tmp, then
times the export as the command runs it: the action (reading the clinic's records through
the unit of work, de-identifying, k-anonymity, the audit event) and writing the files
(Parquet, CSV, dictionary, report). Prints each time and the process's peak memory. No
goal is asserted: the figures go into docs/research-export.md when they change much.

    .venv/bin/python bench/research_export.py [--patients 3000] [--db PATH] [--reuse]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from needlepoint.actions.context import Actor
from needlepoint.actions.research import export_research
from needlepoint.adapters.db.tables import episodes, needling_sites, sessions, users
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.research_files import write_release
from needlepoint.bootstrap import open_database
from needlepoint.domain.research import ExportResearch
from needlepoint.synthetic.clinic import generate_clinic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    path = args.db or Path(tempfile.gettempdir()) / f"np-research-{args.patients}.db"
    if path.exists() and not args.reuse:
        path.unlink()
    engine = open_database(f"sqlite:///{path}")
    if not args.reuse:
        started = time.perf_counter()
        generate_clinic(engine, patients_count=args.patients, seed=1)
        print(f"generated {args.patients} patients in {time.perf_counter() - started:.1f} s")
    with engine.connect() as conn:
        owner = conn.execute(
            sa.select(users.c.id, users.c.clinic_id).where(users.c.role == "owner")
        ).first()
        counts = [
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (episodes, sessions, needling_sites)
        ]
    assert owner is not None
    print(f"{counts[0]} episodes, {counts[1]} sessions, {counts[2]} needling sites")
    actor = Actor(owner.id, owner.clinic_id, source="bench")
    started = time.perf_counter()
    release = export_research(SqlUnitOfWork(engine), actor, ExportResearch())
    read = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_release(release, Path(folder))
        written = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r = release.report
    print(
        f"action (read, de-identify, audit): {read:.1f} s; files: {written:.1f} s; "
        f"{r.records_kept} of {r.records_in} episodes released at k={r.k}; "
        f"{counts[0] / (read + written):.0f} episodes/s; peak memory {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
