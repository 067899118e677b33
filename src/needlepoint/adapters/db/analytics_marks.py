"""Each clinic's version of the records the analytics read, kept in the database.

The clinic analytics (`analytics.dataset.load`) read a few tables and, of two more, a
few columns. A write that changes any of them moves the clinic's row in
`analytics_versions` forward, in the same transaction (`mark_changes`, called by the
unit of work just before it commits); a chart view, a sign-in or any other write leaves
it alone. Every server process compares the version it computed its analytics from with
this row (`read_mark`: one primary-key read) — the invalidation is shared through the
database, never kept in one process.

`ANALYSED` must name every column `analytics.dataset.load` reads; a test compares it with
the SQL the loader sends."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from needlepoint.adapters.db.tables import TABLE_OF, analytics_versions
from needlepoint.domain.entities import Clinic, Entity

ANALYSED: dict[str, frozenset[str]] = {
    # Tables whose rows the analytics count: adding or deleting any row changes them.
    "episodes": frozenset(
        {"id", "clinic_id", "patient_id", "clinician_id", "condition", "onset_date"}
        | {"opened_on", "closed_on", "status"}
    ),
    "plan_items": frozenset({"id", "clinic_id", "episode_id", "modality"}),
    "sessions": frozenset({"id", "clinic_id", "episode_id", "started_at", "status"}),
    "needling_sites": frozenset({"id", "clinic_id", "session_id", "trigger_point", "technique"}),
    "measurements": frozenset(
        {"id", "clinic_id", "episode_id", "session_id", "instrument_id", "score"}
        | {"taken_at", "context"}
    ),
    "medication_uses": frozenset(
        {"id", "clinic_id", "episode_id", "drug", "drug_class", "days_per_week"}
        | {"recorded_on", "created_at"}
    ),
    "adverse_events": frozenset({"id", "clinic_id", "session_id", "kind", "severity"}),
    # Tables only looked up through an episode: a new row changes nothing by itself
    # (its episode's insert does), only a change of these columns does.
    "patients": frozenset({"id", "birth_date", "sex"}),
    "users": frozenset({"id", "full_name"}),
    # A score's provenance (patient-reported): set in the transaction that adds the
    # measurement; answers saved along the way change nothing the analytics read.
    "questionnaire_responses": frozenset({"clinic_id", "measurement_id"}),
}
"""Per table, the columns the analytics read."""

LOOKED_UP = frozenset({"patients", "users", "questionnaire_responses"})
"""Tables of `ANALYSED` whose new or deleted rows matter only through another table's."""

Mark = tuple[int, datetime] | None
"""A clinic's version and when it last moved; None before its first analysed write."""


def _table(entity: Entity) -> str:
    return TABLE_OF[type(entity)].name


def _clinic(entity: Entity) -> UUID:
    return entity.id if isinstance(entity, Clinic) else entity.clinic_id


def changed_clinics(
    deletes: Iterable[Entity],
    adds: Iterable[Entity],
    replaces: Iterable[tuple[Entity, Entity]],
) -> set[UUID]:
    """The clinics whose analysed records these staged changes alter."""
    out: set[UUID] = set()
    for ent in (*deletes, *adds):
        name = _table(ent)
        if name in ANALYSED and name not in LOOKED_UP:
            out.add(_clinic(ent))
    for old, new in replaces:
        columns = ANALYSED.get(_table(new))
        if columns and any(getattr(old, c) != getattr(new, c) for c in columns):
            out.add(_clinic(new))
    return out


@functools.cache
def _bump(dialect_name: str) -> Any:
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(analytics_versions).values(
        clinic_id=sa.bindparam("clinic_id"), version=1, changed_at=sa.bindparam("now")
    )
    return stmt.on_conflict_do_update(
        index_elements=[analytics_versions.c.clinic_id],
        set_={
            "version": analytics_versions.c.version + 1,
            "changed_at": stmt.excluded.changed_at,
        },
    )


def bump(conn: sa.Connection, clinics: Iterable[UUID]) -> None:
    """Move these clinics' versions forward (one upsert each), in the open transaction.
    On PostgreSQL the row stays locked until commit: writers of one clinic already append
    to its audit chain in turn, and take that lock first."""
    now = datetime.now(UTC)  # a technical marker, not a clinical time: no injected clock
    for clinic in sorted(clinics):
        conn.execute(_bump(conn.dialect.name), {"clinic_id": clinic, "now": now})


def mark_changes(
    conn: sa.Connection,
    deletes: Iterable[Entity],
    adds: Iterable[Entity],
    replaces: Iterable[tuple[Entity, Entity]],
) -> None:
    """The unit of work's hook: move the versions of the clinics whose analysed records
    these changes alter (nothing at all for a write that alters none)."""
    clinics = changed_clinics(deletes, adds, replaces)
    if clinics:
        bump(conn, clinics)


def read_mark(conn: sa.Connection, clinic_id: UUID) -> Mark:
    """The clinic's current version (a primary-key read; on PostgreSQL the connection's
    transaction must be scoped to the clinic)."""
    row = conn.execute(
        sa.select(analytics_versions.c.version, analytics_versions.c.changed_at).where(
            analytics_versions.c.clinic_id == clinic_id
        )
    ).first()
    return None if row is None else (int(row[0]), row[1])
