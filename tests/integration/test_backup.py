"""Backups restore exactly: every table's content is the same after a round trip, on
SQLite (online backup API) and PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from needlepoint.actions import patients
from needlepoint.adapters.db.backup import table_checksums
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.cli import app
from tests import conftest
from tests.conftest import make_clinic
from tests.factories import patient_cmd

runner = CliRunner()


@pytest.fixture(autouse=True)
def backup_key_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the backup key is made on first use (the operator's data directory)."""
    monkeypatch.setenv("NEEDLEPOINT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NEEDLEPOINT_BACKUP_KEY", raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'clinic.db'}"
        yield url
        return
    admin = conftest._pg_admin()
    if admin is None:
        pytest.skip(f"PostgreSQL cases skipped: {conftest._pg_unreachable}")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed: apt-get install -y postgresql-client")
    name = f"needlepoint_backup_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(conftest.PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_backup_restores_every_table_exactly(database: str, tmp_path: Path) -> None:
    engine = make_engine(database)
    upgrade(engine)
    clinic = make_clinic(engine)
    for _ in range(3):
        patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    before = table_checksums(engine)
    out = tmp_path / "backups" / "clinic.backup"
    made = runner.invoke(app, ["backup", str(out), "--db", database])
    assert made.exit_code == 0, made.output
    assert out.stat().st_size > 0

    # Work goes on after the backup; the restore brings back the moment of the backup.
    patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    assert table_checksums(engine) != before
    engine.dispose()
    restored = runner.invoke(app, ["restore", str(out), "--db", database, "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "audit trail OK" in restored.output
    engine = make_engine(database)
    assert table_checksums(engine) == before
    # …and the restored database takes new work.
    patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())


def test_a_backup_restores_into_an_empty_database(tmp_path: Path) -> None:
    source = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(source)
    make_clinic(source)
    out = tmp_path / "a.backup"
    assert runner.invoke(app, ["backup", str(out), "--db", str(tmp_path / "a.db")]).exit_code == 0
    target = tmp_path / "elsewhere" / "b.db"
    done = runner.invoke(app, ["restore", str(out), "--db", str(target), "--yes"])
    assert done.exit_code == 0, done.output
    assert table_checksums(make_engine(f"sqlite:///{target}")) == table_checksums(source)


def test_a_missing_backup_is_refused_by_name(tmp_path: Path) -> None:
    done = runner.invoke(
        app, ["restore", str(tmp_path / "nope.backup"), "--db", str(tmp_path / "x.db"), "--yes"]
    )
    assert done.exit_code == 2
    assert "no backup at" in done.output
