"""Engines for the two supported databases.

SQLite (embedded default): WAL journal, foreign keys on every connection,
`synchronous=FULL`, and write transactions opened with `BEGIN IMMEDIATE` so that a unit of
work holds the write lock from its first read (no lock upgrade, no SQLITE_BUSY mid-action).
PostgreSQL: plain psycopg 3 with a connection pool."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

WRITE_OPTION = "needlepoint_write"
"""Connection execution option marking a write unit of work (see `_begin`)."""


def normalise_url(url: str | URL) -> URL:
    """Use psycopg 3 for any PostgreSQL URL that does not name a driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> sa.Engine:
    """An engine for `url`, configured for Needlepoint's durability rules."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)


def _sqlite_engine(url: URL, **kwargs: Any) -> sa.Engine:
    connect_args = {"timeout": 30, "check_same_thread": False}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def is_sqlite(engine: sa.Engine) -> bool:
    """True for the embedded database."""
    return engine.dialect.name == "sqlite"


CLINIC_SETTING = "needlepoint.clinic_id"
"""The PostgreSQL setting row-level security compares each row's clinic_id with."""

_SCOPE = sa.select(sa.func.set_config(CLINIC_SETTING, sa.bindparam("clinic"), True))


def scope_to_clinic(conn: sa.Connection, clinic_id: object) -> None:
    """Limit the rest of this transaction to one clinic's rows (PostgreSQL row-level
    security; `set_config(..., true)` is SET LOCAL: it ends with the transaction, so a
    pooled connection never carries it to the next request). SQLite: nothing to do."""
    if conn.dialect.name != "sqlite":
        conn.execute(_SCOPE, {"clinic": str(clinic_id)})
