"""`needlepoint export-research`: the de-identified research release, written to a folder
(each table as Parquet and CSV, the data dictionary, the k-anonymity report).

It runs as the clinic's owner (the only role allowed): the database's one active owner, or
the one named with `--owner`. The export is recorded on the audit trail as a disclosure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from uuid import UUID

import typer
from rich.console import Console

from needlepoint.domain.enums import Role

if TYPE_CHECKING:
    import sqlalchemy as sa

console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _owner(engine: sa.Engine, email: str | None) -> tuple[UUID, UUID]:
    """The (user id, clinic id) of the owner the export runs as."""
    import sqlalchemy as sa

    from needlepoint.adapters.db.tables import users

    query = sa.select(users.c.id, users.c.clinic_id, users.c.email).where(
        users.c.role == Role.OWNER, users.c.is_active.is_(True)
    )
    if email is not None:
        query = query.where(sa.func.lower(users.c.email) == email.strip().lower())
    with engine.connect() as conn:
        found = conn.execute(query).all()
    if not found:
        _fail(f"no active owner with the e-mail {email}" if email else "no active owner")
    if len(found) > 1:
        _fail("several clinics' owners in this database: name one with --owner EMAIL")
    return found[0].id, found[0].clinic_id


def export_research(
    out: Annotated[
        Path, typer.Option("--out", help="The folder to write the release into (made 0700)")
    ],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL or SQLite file path (default: NEEDLEPOINT_DATABASE_URL "
            "or the data directory's needlepoint.db).",
        ),
    ] = None,
    k: Annotated[
        int,
        typer.Option(min=2, max=1000, help="Suppress episodes in classes of fewer than k patients"),
    ] = 5,
    dates: Annotated[
        str,
        typer.Option(
            help="year (Safe Harbor to the letter): dates reduced to the year; shift: every "
            "date of a patient moved by one random offset (intervals kept; needs an expert "
            "determination or a data use agreement)"
        ),
    ] = "year",
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="The owner's e-mail (when the database has several)"),
    ] = None,
) -> None:
    """Write a de-identified research release (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)):
    Parquet and CSV tables, a data dictionary and a k-anonymity report on age band, sex,
    condition and region. Audited as a disclosure."""
    from needlepoint.actions.context import Actor
    from needlepoint.actions.research import export_research as export
    from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
    from needlepoint.adapters.research_files import REPORT, write_release
    from needlepoint.bootstrap import database_url, open_database
    from needlepoint.config import Settings
    from needlepoint.domain.errors import DomainError
    from needlepoint.domain.research import ExportResearch

    if dates not in ("shift", "year"):
        _fail(f"--dates: '{dates}' is neither 'shift' nor 'year'")
    mode: Literal["shift", "year"] = "year" if dates == "year" else "shift"
    url = database_url(db) if db else Settings().resolved_database_url()
    engine = open_database(url, migrate=False)
    user_id, clinic_id = _owner(engine, owner)
    actor = Actor(user_id, clinic_id, source="cli")
    try:
        release = export(SqlUnitOfWork(engine), actor, ExportResearch(k=k, dates=mode))
    except DomainError as exc:
        _fail(str(exc))
        return
    written = write_release(release, out)
    r = release.report
    console.print(
        f"research release written to {out} ({len(written)} files): "
        f"{r.records_kept} episodes of {r.patients_in - r.patients_suppressed} patients "
        f"released; {r.records_suppressed} episodes ({r.patients_suppressed} "
        f"patients) suppressed below k={r.k}; see {out / REPORT}"
    )
