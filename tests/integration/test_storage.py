"""Storage: migrations build exactly the schema of the code, on an empty database of
either kind; SQLite runs with the durability settings the design promises."""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import current_revision, head_revision, upgrade
from needlepoint.adapters.db.tables import metadata, patients
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.queries.patients import _search_statements
from tests.conftest import make_clinic

PG_ONLY_INDEXES = {"ix_patients_search_trgm"}
"""Expression indexes the migrations make on PostgreSQL only (not in `metadata`, which
holds what both databases share); checked by the test below instead."""


def _not_pg_only(obj: object, name: str | None, kind: str, reflected: bool, _: object) -> bool:
    return not (kind == "index" and name in PG_ONLY_INDEXES)


def test_migrations_build_exactly_the_schema_of_the_code(engine: sa.Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _not_pg_only}
            ),
            metadata,
        )
    assert diff == []


def test_postgresql_searches_patients_through_one_trigram_index(engine: sa.Engine) -> None:
    """The search's joined string (queries.patients) is what the index holds; SQLite has
    no such index (its covering index of revision 0014 answers the search)."""
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            assert "ix_patients_search_trgm" not in {
                i["name"] for i in sa.inspect(conn).get_indexes("patients")
            }
            return
        definition = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_patients_search_trgm'"
        ).scalar_one()
    assert "USING gin" in definition
    assert "gin_trgm_ops" in definition
    for column in ("given_name", "family_name", "mrn"):
        assert column in definition


def test_upgrading_an_up_to_date_database_changes_nothing(engine: sa.Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_upgrade_brings_an_empty_database_to_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(sa.inspect(engine).get_table_names()) >= {t.name for t in metadata.sorted_tables}


def test_sqlite_runs_with_wal_foreign_keys_and_full_sync(sqlite_engine: sa.Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_sqlite_enforces_foreign_keys(sqlite_engine: sa.Engine) -> None:
    import uuid

    import pytest

    with pytest.raises(sa.exc.IntegrityError), sqlite_engine.begin() as conn:
        conn.execute(
            sa.insert(metadata.tables["plan_items"]).values(
                id=uuid.uuid4(),
                clinic_id=uuid.uuid4(),
                episode_id=uuid.uuid4(),
                modality="exercise",
                description="",
                created_at=sa.func.now(),
            )
        )


def test_sqlite_write_transactions_take_the_write_lock_at_once(sqlite_engine: sa.Engine) -> None:
    """A unit of work starts with BEGIN IMMEDIATE: a second writer waits (or fails) at its
    BEGIN, never halfway through an action."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(sqlite_engine, "before_cursor_execute", record)
    try:
        with SqlUnitOfWork(sqlite_engine) as uow:
            uow.rollback()
    finally:
        sa.event.remove(sqlite_engine, "before_cursor_execute", record)
    assert statements[0] == "BEGIN IMMEDIATE"


def test_postgresql_patient_search_uses_its_index_right_after_patients_arrive(
    engine: sa.Engine,
) -> None:
    """New patients go straight into the trigram index (no pending list waiting for a
    vacuum), so a search right after a generation or an import reads the index, not
    every patient of the clinic (revision 0024)."""
    if engine.dialect.name != "postgresql":
        return  # SQLite: the covering index of revision 0014, checked by the schema test
    clinic = make_clinic(engine)
    now = datetime.now(UTC)
    rng = random.Random(24)
    rows = [
        {
            "id": uuid.uuid4(),
            "clinic_id": clinic.owner.clinic_id,
            "mrn": f"IDX-{i:05d}",
            "given_name": "".join(rng.choices(string.ascii_lowercase, k=7)).title(),
            "family_name": "".join(rng.choices(string.ascii_lowercase, k=9)).title(),
            "birth_date": date(1970, 1, 1),
            "sex": "female",
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for i in range(3000)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(patients), rows)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE patients")  # what autovacuum does soon after
        options = conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'ix_patients_search_trgm'"
        ).scalar_one()
        _count, page = _search_statements(1, sqlite=False)
        sql = str(page.compile(dialect=conn.dialect))
        plan = "\n".join(
            r[0]
            for r in conn.exec_driver_sql(
                f"EXPLAIN {sql}",
                {"clinic_id": clinic.owner.clinic_id, "w0": "%qzx%", "limit": 25, "offset": 0},
            )
        )
    assert options == ["fastupdate=off"]
    assert "ix_patients_search_trgm" in plan
