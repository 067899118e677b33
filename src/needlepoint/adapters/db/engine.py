"""Engines for the two supported databases.

SQLite (embedded default): WAL journal, foreign keys on every connection,
`synchronous=FULL`, and write transactions opened with `BEGIN IMMEDIATE` so that a unit of
work holds the write lock from its first read (no lock upgrade, no SQLITE_BUSY mid-action).
PostgreSQL: plain psycopg 3 with a connection pool.

Every wait is bounded (`Limits`): for a pooled connection (`pool_timeout`), and for a lock
held by another writer (SQLite's busy timeout, PostgreSQL's `lock_timeout`). A wait that
runs out raises, and the web layer answers 503 with `Retry-After` (`web/problems.py`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

WRITE_OPTION = "needlepoint_write"
"""Connection execution option marking a write unit of work (see `_begin`)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How many connections a process keeps, and how long anything waits.

    The defaults suit one clinic on a small machine: a request thread never waits for a
    connection longer than `pool_timeout`, nor for another writer's lock longer than
    `lock_timeout` (both in seconds)."""

    pool_size: int = 8
    max_overflow: int = 4
    pool_timeout: float = 10.0
    lock_timeout: float = 5.0

    @property
    def connections(self) -> int:
        """The most connections the pool will open at once."""
        return self.pool_size + self.max_overflow


def normalise_url(url: str | URL) -> URL:
    """Use psycopg 3 for any PostgreSQL URL that does not name a driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, limits: Limits | None = None, **kwargs: Any) -> sa.Engine:
    """An engine for `url`, configured for Needlepoint's durability rules and `limits`."""
    limits = limits or Limits()
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, limits, **kwargs)
    connect_args = {
        # Milliseconds; a statement waiting longer for a row or table lock fails with
        # LockNotAvailable (a 503 to the caller) instead of queueing indefinitely.
        "options": f"-c lock_timeout={int(limits.lock_timeout * 1000)}",
    }
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=limits.pool_size,
        max_overflow=limits.max_overflow,
        pool_timeout=limits.pool_timeout,
        connect_args=connect_args,
        **kwargs,
    )


def refresh_statistics(engine: sa.Engine) -> None:
    """After a bulk load, let PostgreSQL's planner see the new rows (`ANALYZE`): until
    autovacuum gets to it, a table loaded in one go still looks empty, and a query that
    should take an index takes a sequential scan instead (measured: an episode's
    co-interventions took 60 ms instead of 0.06 ms on a freshly generated clinic).
    SQLite's planner needs no statistics to use its indexes: nothing to do there."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database (it gives them the database file's mode)."""


def make_private(path: Path) -> None:
    """Create the SQLite file `path` readable and writable by its owner only (0600), or
    narrow an existing one and its companion files to that: they hold health records."""
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except FileNotFoundError:
            return  # no folder yet: SQLite will say so when it connects
    for file in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue


def _sqlite_engine(url: URL, limits: Limits, **kwargs: Any) -> sa.Engine:
    connect_args = {"timeout": limits.lock_timeout, "check_same_thread": False}
    in_memory = url.database in (None, "", ":memory:")
    if not in_memory and url.database and not url.database.startswith("file:"):
        make_private(Path(url.database))
    pool: dict[str, Any] = (
        {}
        if in_memory
        else {
            "pool_size": limits.pool_size,
            "max_overflow": limits.max_overflow,
            "pool_timeout": limits.pool_timeout,
        }
    )
    engine = sa.create_engine(url, connect_args=connect_args, **pool, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(limits.lock_timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL is a property of the file, kept once set. Setting it again on each new
        # connection is not free: it waits while another connection holds the write
        # lock, so a new pooled connection would queue behind every writer.
        if not in_memory and cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
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


def is_busy(exc: BaseException) -> bool:
    """True when `exc` means the database was too busy to serve in time: no pooled
    connection came free, or another writer's lock was held past the lock timeout."""
    if isinstance(exc, sa.exc.TimeoutError):  # the pool's wait ran out
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    text = str(orig).lower()
    if "database is locked" in text or "database table is locked" in text:  # SQLite
        return True
    # PostgreSQL: 55P03 lock_not_available; 57014 query_canceled (statement timeout)
    return getattr(orig, "sqlstate", None) in ("55P03", "57014")


CLINIC_SETTING = "needlepoint.clinic_id"
"""The PostgreSQL setting row-level security compares each row's clinic_id with."""

_SCOPE = sa.select(sa.func.set_config(CLINIC_SETTING, sa.bindparam("clinic"), True))


def scope_to_clinic(conn: sa.Connection, clinic_id: object) -> None:
    """Limit the rest of this transaction to one clinic's rows (PostgreSQL row-level
    security; `set_config(..., true)` is SET LOCAL: it ends with the transaction, so a
    pooled connection never carries it to the next request). SQLite: nothing to do."""
    if conn.dialect.name != "sqlite":
        conn.execute(_SCOPE, {"clinic": str(clinic_id)})
