"""Bring a database to the newest schema with Alembic (`needlepoint db upgrade`)."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from needlepoint.adapters.db import protections


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migration scripts."""
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("needlepoint.adapters.db").joinpath("migrations"))
    )
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> list[str]:
    """Apply every migration up to `revision` in one transaction. At head, the audit
    trail's and the tenants' protections (triggers, policies, privileges) are then
    checked and any missing, disabled or altered one is put back (a database restored
    from an old backup, or tampered with): returns what was repaired.

    On SQLite the migrations run with foreign-key enforcement off, SQLite's documented
    procedure for rebuilding a table that others refer to (Alembic's batch mode copies
    the table, drops the old one and renames the copy: with enforcement on, dropping
    `users` would fail for every row referring to it), and every reference is checked
    before the commit: a broken one rolls the whole upgrade back."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:  # outside any transaction: inside one, SQLite ignores it
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                command.upgrade(alembic_config(conn), revision)
                if raw is not None:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"the upgrade would leave {len(broken)} broken references "
                            f"(first: {tuple(broken[0])}); nothing was changed"
                        )
                if revision != "head":
                    return []
                return protections.ensure(conn)
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of Needlepoint."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revision(revision: str) -> bool:
    """True when `revision` is one of this version's migrations."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False
