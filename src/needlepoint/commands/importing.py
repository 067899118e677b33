"""`needlepoint import`: bring another system's records in (docs/import.md)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated
from uuid import UUID

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from needlepoint.domain.errors import DomainError

console = Console()
err = Console(stderr=True)


def import_records(
    path: Annotated[
        Path,
        typer.Argument(
            help="The export: a folder of CSV files (docs/import.md), or FHIR NDJSON files "
            "or Bundles (a folder or one file; docs/fhir.md)"
        ),
    ],
    owner_email: Annotated[
        str,
        typer.Option("--owner-email", help="The importing clinic's owner (acts for the import)"),
    ],
    clinic: Annotated[
        str | None,
        typer.Option(help="The clinic's id, when the owner's e-mail is in several clinics"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="The export's format: csv or fhir")] = "csv",
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check everything and report every problem; write nothing"),
    ] = False,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Patients written per transaction")
    ] = 100,
    report: Annotated[
        Path | None, typer.Option(help="Also write the report (JSON) to this file")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL or SQLite file path (default: the configured one)"),
    ] = None,
) -> None:
    """Import patients, episodes, signed notes and measurements from another system,
    through the actions. A patient is imported whole or not at all; a re-run skips the
    patients already imported."""
    from needlepoint.actions.context import Actor
    from needlepoint.adapters.db.tables import users
    from needlepoint.bootstrap import database_url, open_database
    from needlepoint.config import Settings
    from needlepoint.importing.engine import run_import
    from needlepoint.importing.readers import READERS

    reader = READERS.get(fmt)
    if reader is None:
        err.print(f"[bold red]error:[/] unknown format {fmt!r} (known: {', '.join(READERS)})")
        raise typer.Exit(2)
    if not path.exists():
        err.print(f"[bold red]error:[/] {path} does not exist")
        raise typer.Exit(2)
    engine = open_database(database_url(db) if db else Settings().resolved_database_url())
    with engine.connect() as conn:
        stmt = sa.select(users.c.id, users.c.clinic_id).where(
            sa.func.lower(users.c.email) == owner_email.lower()
        )
        if clinic:
            stmt = stmt.where(users.c.clinic_id == UUID(clinic))
        found = conn.execute(stmt).all()
    if len(found) != 1:
        err.print(
            "[bold red]error:[/] "
            + (
                f"no user {owner_email}"
                if not found
                else f"{owner_email} is in {len(found)} clinics: name one with --clinic"
            )
        )
        raise typer.Exit(2)
    actor = Actor(found[0].id, found[0].clinic_id, source="import")
    with err.status(f"reading {path}"):
        read = reader(path)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("checking" if dry_run else "importing", total=len(read.patients))
        try:
            result = run_import(
                engine,
                actor,
                read.patients,
                source=fmt,
                dry_run=dry_run,
                problems=read.problems,
                on_patient=lambda _p: progress.advance(task),
                batch_patients=batch,
            )
        except DomainError as exc:
            err.print(f"[bold red]error:[/] {exc.detail}")
            raise typer.Exit(2) from None
    for p in result.problems:
        err.print(f"[red]problem[/] {p.origin}, {p.field}: {p.reason}")
    verb = "would import" if dry_run else "imported"
    console.print(
        f"{verb} {result.patients_imported} patients ({result.sessions_imported} sessions, "
        f"{result.measurements_imported} measurements); skipped {result.patients_skipped} "
        f"already imported; {result.patients_failed} not imported; "
        f"{len(result.problems)} problems; {result.seconds:.1f} s"
    )
    if report is not None:  # names patients (their ids there): readable by its owner only
        fd = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(result.as_dict(), indent=1))
        report.chmod(0o600)
    if result.problems:
        raise typer.Exit(1)
