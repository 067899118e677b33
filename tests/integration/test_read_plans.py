"""The write path's driver-level reads (`adapters.db.statements.ReadPlan`) return exactly
what SQLAlchemy returns, for every table, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.statements import ReadPlan
from needlepoint.adapters.db.unit_of_work import _select_by_columns, _select_by_id
from needlepoint.synthetic.clinic import generate_clinic


def test_plans_read_every_table_as_sqlalchemy_does(engine: sa.Engine) -> None:
    report = generate_clinic(engine, patients_count=6, seed=31, clinic_name="Read plans")
    compared: dict[str, int] = {}
    with engine.connect() as conn:
        for kind, table in t.TABLE_OF.items():
            if "clinic_id" not in table.c:  # the clinic itself
                row = conn.execute(sa.select(table).where(table.c.id == report.clinic_id)).one()
                assert _select_by_id(conn, kind, row.id) == kind(**row._mapping)
                compared[table.name] = 1
                continue
            core = conn.execute(
                sa.select(table).where(table.c.clinic_id == report.clinic_id).limit(50)
            ).all()
            for row in core:
                expected = kind(**row._mapping)
                assert _select_by_id(conn, kind, row.id) == expected, table.name
            listed = _select_by_columns(conn, kind, report.clinic_id, {})
            by_id = {e.id: e for e in listed}
            assert all(by_id[r.id] == kind(**r._mapping) for r in core), table.name
            compared[table.name] = len(core)
    # The generated clinic exercises the tables the write path reads and writes.
    for name in (
        "users",
        "patients",
        "episodes",
        "sessions",
        "needling_sites",
        "measurements",
        "screenings",
        "consents",
        "training_records",
        "audit_events",
    ):
        assert compared.get(name, 0) > 0, f"no {name} rows compared"


def test_a_failing_plan_raises_sqlalchemy_errors(engine: sa.Engine) -> None:
    broken = sa.select(t.users.c.id).where(sa.literal_column("no_such_column") == sa.bindparam("x"))
    plan = ReadPlan.of(broken, engine.dialect)
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        plan.rows(conn, {"x": 1})


def test_plans_bind_through_the_column_types(engine: sa.Engine) -> None:
    """UUIDs, enums and datetimes reach the driver as SQLAlchemy would send them."""
    report = generate_clinic(engine, patients_count=2, seed=32, clinic_name="Binds")
    with engine.connect() as conn:
        user = conn.execute(
            sa.select(t.users).where(t.users.c.clinic_id == report.clinic_id).limit(1)
        ).one()
        plan = ReadPlan.of(
            sa.select(t.users.c.id).where(
                t.users.c.id == sa.bindparam("id"),
                t.users.c.role == sa.bindparam("role"),
                t.users.c.created_at == sa.bindparam("at"),
            ),
            engine.dialect,
        )
        found: list[dict[str, Any]] = plan.rows(
            conn, {"id": user.id, "role": user.role, "at": user.created_at}
        )
    assert found == [{"id": user.id}]
