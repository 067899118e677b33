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
    from an old backup, or tampered with): returns what was repaired."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
        if revision != "head":
            return []
        return protections.ensure(conn)


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
