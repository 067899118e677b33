"""The one place where adapters are chosen and wired: database, migrations, the unit of
work behind the actions, web app."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI

from needlepoint.adapters import sealing
from needlepoint.adapters.db.engine import Limits, make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import BulkUnitOfWork, SqlUnitOfWork
from needlepoint.config import Settings
from needlepoint.ports import UnitOfWork, UnitOfWorkFactory
from needlepoint.web.app import create_app

unit_of_work: UnitOfWorkFactory = SqlUnitOfWork
"""The unit of work every entrypoint hands to the actions: one database transaction per
action. Declared with the interface's type, so mypy checks here that the implementation
in `adapters/db/unit_of_work.py` satisfies `ports.UnitOfWork`."""

# The generator's batching unit of work satisfies the same interface (checked by mypy).
_BULK: type[UnitOfWork] = BulkUnitOfWork


def database_url(value: str) -> str:
    """Accept a SQLAlchemy URL, or a plain file path meaning an SQLite database."""
    if "://" in value:
        return value
    path = Path(value).expanduser().resolve()
    return f"sqlite:///{path}"


def configure_sealing(settings: Settings | None = None) -> None:
    """Choose the process's key for secrets sealed in the database (TOTP secrets), from
    the settings; the first configuration of a process wins (it serves one deployment)."""
    if not sealing.is_configured():
        sealing.configure((settings or Settings()).resolved_sealing_keys())


def open_database(url: str, *, migrate: bool = True, limits: Limits | None = None) -> sa.Engine:
    """An engine for `url`; with `migrate`, the schema is first brought to head (and
    the audit trail's protections put back if missing). An SQLite file is created
    readable by its owner only."""
    configure_sealing()
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(url, limits)
    if migrate:
        upgrade(engine)
    return engine


def build_app(settings: Settings | None = None, engine: sa.Engine | None = None) -> FastAPI:
    """The web application for these settings (used by `needlepoint serve` and uvicorn)."""
    settings = settings or Settings()
    configure_sealing(settings)
    limits = settings.limits()
    engine = engine or open_database(settings.resolved_database_url(), limits=limits)
    app = create_app(
        engine,
        secret_key=settings.resolved_secret_key(),
        secure_cookies=settings.secure_cookies,
        threads=min(settings.resolved_threads(), max(1, limits.connections - 1)),
        max_in_flight=settings.max_in_flight,
        max_body_bytes=settings.max_body_bytes,
        rate_limit=settings.rate_limit or None,
        rate_burst=settings.rate_burst,
        processes=settings.resolved_workers(),
        demo=settings.demo,
        public_url=settings.resolved_public_url(),
    )
    # The demo's caught e-mails (`needlepoint demo` runs a local SMTP server): /demo/mail.
    app.state.demo_mail_dir = settings.data_dir / "mail" if settings.demo else None
    return app


def app_from_environment() -> FastAPI:
    """The app of one serving process, from `NEEDLEPOINT_*` environment settings: the
    factory each of `needlepoint serve --workers N`'s processes calls. The parent has
    already migrated the database."""
    settings = Settings()
    engine = open_database(
        settings.resolved_database_url(), migrate=False, limits=settings.limits()
    )
    return build_app(settings, engine)
