"""Prebuilt reads for the write path, run on the driver's own cursor.

Every API write authenticates a token and reads the records its rules need (the acting
user, the episode, the clinic's settings, the clinician's training, the patient's
screenings and consents) before it inserts anything. Through SQLAlchemy's
`Connection.execute` each such read costs more in result bookkeeping than in the
database: it rebuilds the cursor's column description (psycopg makes an object per
column per query) and a result object around it. A `ReadPlan` compiles the statement
once per dialect, with each bind and result column's own type processors, and runs it on
the raw DBAPI cursor of the same connection, inside the same transaction: the values are
exactly what SQLAlchemy would return (a test compares the two for every table on both
databases), at about a third of the cost.

Reads elsewhere (queries, pages, analytics) keep SQLAlchemy's full result API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

Processor = Callable[[Any], Any] | None


@dataclass(slots=True)
class ReadPlan:
    """One SELECT compiled for one dialect: driver SQL, bind order, type processors.

    The result processors are set from the cursor's description on the first run, as
    SQLAlchemy sets them (some depend on the type the server reports)."""

    sql: str
    positional: bool
    binds: tuple[tuple[str, Processor], ...]
    types: tuple[sa.types.TypeEngine[Any], ...]
    columns: tuple[str, ...]
    constants: dict[str, Any]
    results: tuple[Processor, ...] | None = None

    @classmethod
    def of(cls, stmt: sa.Select[Any], dialect: sa.Dialect) -> ReadPlan:
        """Compile `stmt` for `dialect`: its named `bindparam`s are given to `rows()`,
        its literal values are kept."""
        compiled = stmt.compile(dialect=dialect)
        names: tuple[str, ...] = (
            tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        )
        return cls(
            sql=str(compiled),
            positional=bool(compiled.positional),
            binds=tuple(
                (n, compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect))
                for n in names
            ),
            types=tuple(c.type.dialect_impl(dialect) for c in stmt.selected_columns),
            # Literal values in the statement (e.g. a function's constant arguments).
            constants={n: b.value for n, b in compiled.binds.items() if not b.required},
            columns=tuple(str(c.key) for c in stmt.selected_columns),
        )

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The result rows as column → value mappings, read on `conn`'s transaction."""
        given = {**self.constants, **params}
        values = [proc(given[n]) if proc else given[n] for n, proc in self.binds]
        names = (n for n, _ in self.binds)
        args: Sequence[Any] | dict[str, Any] = (
            values if self.positional else dict(zip(names, values, strict=True))
        )
        fetched, description = driver_rows(conn, self.sql, args, describe=self.results is None)
        if self.results is None:
            self.results = tuple(
                t.result_processor(conn.dialect, d[1])
                for t, d in zip(self.types, description, strict=True)
            )
        pairs = tuple(zip(self.columns, self.results or (), strict=True))
        return [
            {col: (proc(v) if proc else v) for (col, proc), v in zip(pairs, row, strict=True)}
            for row in fetched
        ]


@contextmanager
def _driver_cursor(conn: sa.Connection, sql: str, args: Any) -> Iterator[Any]:
    """`conn`'s own DBAPI cursor (inside its transaction), closed afterwards; driver
    errors are raised as SQLAlchemy's, as `Connection.execute` would raise them (an
    `IntegrityError` stays one, for the unique-field messages)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(
            sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()


def driver_rows(
    conn: sa.Connection,
    sql: str,
    args: Sequence[Any] | Mapping[str, Any],
    *,
    describe: bool = False,
) -> tuple[Sequence[Any], Sequence[Any]]:
    """Run driver-ready SQL and arguments on `conn`'s cursor: the rows as the driver
    returns them, and (`describe`) the cursor's description."""
    with _driver_cursor(conn, sql, args) as cursor:
        cursor.execute(sql, args)
        # psycopg builds the description's column objects anew on each access: only
        # when asked (a plan's first run).
        return cursor.fetchall(), (cursor.description or ()) if describe else ()


def driver_write(conn: sa.Connection, sql: str, args: Any, *, many: bool = False) -> None:
    """Run a driver-ready INSERT on `conn`'s cursor, once or (`many`) for each of `args`."""
    with _driver_cursor(conn, sql, args) as cursor:
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)


_PLANS: dict[tuple[str, Any], ReadPlan] = {}


def plan(dialect: sa.Dialect, key: Any, build: Callable[[], sa.Select[Any]]) -> ReadPlan:
    """The plan cached under (dialect, key), compiled from `build()` on first use."""
    found = _PLANS.get((dialect.name, key))
    if found is None:
        found = _PLANS[(dialect.name, key)] = ReadPlan.of(build(), dialect)
    return found
