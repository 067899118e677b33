"""Backups and the database at rest (issue 14, items 1 and 2), on SQLite and PostgreSQL:

* the SQLite file, its WAL and shared-memory files, backups and key files are readable by
  their owner only; backups are encrypted and authenticated; TOTP secrets are sealed
  with a key that is neither in the database nor in its backups;
* a restore replaces nothing until the backup is authenticated, recognised as a
  Needlepoint database of a known schema and its audit trail verified in a staged copy;
  anything else is refused with the reason and the database is left exactly as it was
  (the backup tamper suite below, with its detected/total figure);
* the audit trail's protections (triggers, PostgreSQL policies and privileges) missing,
  disabled or altered are reported by `audit verify` and put back by `db upgrade` and
  by a restore."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from needlepoint.actions import accounts, patients
from needlepoint.adapters import sealing
from needlepoint.adapters.db import protections
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.backup import (
    MAGIC,
    BackupKey,
    decrypt_stream,
    encrypt_stream,
    table_checksums,
)
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import alembic_config, upgrade
from needlepoint.adapters.totp import code_at
from needlepoint.cli import app
from needlepoint.config import Settings
from needlepoint.domain.commands import MfaCode
from tests.conftest import ClinicFixture, make_clinic
from tests.factories import patient_cmd
from tests.integration.test_backup import database  # noqa: F401 - a fixture

runner = CliRunner()
_LEN = struct.Struct(">I")


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The operator's data directory (where backup.key is made on first use)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("NEEDLEPOINT_DATA_DIR", str(folder))
    monkeypatch.delenv("NEEDLEPOINT_BACKUP_KEY", raising=False)
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def clinic_with_records(url: str) -> tuple[sa.Engine, ClinicFixture]:
    engine = make_engine(url)
    upgrade(engine)
    clinic = make_clinic(engine)
    for _ in range(3):
        patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    return engine, clinic


def make_backup(url: str, out: Path, *extra: str) -> None:
    done = runner.invoke(app, ["backup", str(out), "--db", url, *extra])
    assert done.exit_code == 0, done.output


def restore(url: str, source: Path, *extra: str) -> tuple[int, str]:
    done = runner.invoke(app, ["restore", str(source), "--db", url, "--yes", *extra])
    return done.exit_code, " ".join(done.output.split())  # unwrapped


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def clear_copy(backup_file: Path) -> bytes:
    """The backup's content decrypted with the operator's key."""
    out = io.BytesIO()
    with backup_file.open("rb") as f:
        decrypt_stream(f, out, BackupKey(key=Settings().resolved_backup_key()))
    return out.getvalue()


def reencrypt(url: str, content: bytes, out: Path) -> None:
    """A backup made with the operator's key from `content` (what an insider holding the
    key could forge): authenticated, so only the checks after decryption can refuse it."""
    with out.open("wb") as f:
        encrypt_stream(
            io.BytesIO(content), f, BackupKey(key=Settings().resolved_backup_key()), backend_of(url)
        )


# -- files at rest ---------------------------------------------------------------------------


def test_the_sqlite_file_and_its_companions_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a typical umask would make them 0644
    try:
        db = tmp_path / "clinic.db"
        engine, _clinic = clinic_with_records(f"sqlite:///{db}")
        with engine.connect() as conn:  # the WAL and shared-memory files exist while open
            conn.exec_driver_sql("SELECT count(*) FROM patients").scalar()
            companions = [p for p in tmp_path.iterdir() if p.name.startswith("clinic.db-")]
            assert {p.name for p in companions} >= {"clinic.db-wal", "clinic.db-shm"}
            for path in [db, *companions]:
                assert mode(path) == 0o600, path
        engine.dispose()
    finally:
        os.umask(old)


def test_a_world_readable_database_is_narrowed_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o600


def test_cli_made_databases_and_key_files_are_owner_only(data_dir: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "new" / "clinic.db"
        assert runner.invoke(app, ["db", "upgrade", "--db", str(db)]).exit_code == 0
        assert mode(db) == 0o600
        assert mode(db.parent) == 0o700
        settings = Settings()
        settings.resolved_backup_key()
        settings.resolved_sealing_keys()
        settings.resolved_secret_key()
        for name in ("backup.key", "sealing.key", "secret.key"):
            assert mode(data_dir / name) == 0o600, name
        assert mode(data_dir) == 0o700
    finally:
        os.umask(old)


def test_a_backup_is_owner_only_encrypted_and_holds_nothing_in_clear(
    database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    _engine, clinic = clinic_with_records(database)
    chart = patients.register_patient(
        clinic.uow(), clinic.as_clinician, patient_cmd(family_name="Quixotewhistle")
    )
    secret, _ = accounts.begin_mfa_enrolment(clinic.uow(), clinic.as_clinician)
    old = os.umask(0o022)
    try:
        out = tmp_path / "backups" / "clinic.backup"
        make_backup(database, out)
    finally:
        os.umask(old)
    assert mode(out) == 0o600
    raw = out.read_bytes()
    assert raw.startswith(MAGIC)
    for clear in (b"Quixotewhistle", b"SQLite format 3", b"PGDMP", secret.encode()):
        assert clear not in raw
    # Decrypted with the backup key, the copy holds the patient but not the TOTP secret:
    # that one is sealed with a key kept neither in the database nor in the backup.
    content = clear_copy(out)
    assert content.startswith(b"SQLite format 3" if "sqlite" in database else b"PGDMP")
    if "sqlite" in database:  # (pg_dump compresses its copy)
        assert b"Quixotewhistle" in content
    assert secret.encode() not in content
    assert chart.family_name == "Quixotewhistle"


# -- TOTP secrets sealed ---------------------------------------------------------------------


def raw_secret(engine: sa.Engine, user_id: object) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT secret FROM mfa_secrets WHERE user_id = :u"),
                {"u": user_id if engine.dialect.name != "sqlite" else user_id.hex},  # type: ignore[attr-defined]
            ).scalar_one()
        )


def test_totp_secrets_are_sealed_in_the_database_and_still_check_codes(
    clinic: ClinicFixture,
) -> None:
    from datetime import UTC, datetime

    secret, _ = accounts.begin_mfa_enrolment(clinic.uow(), clinic.as_clinician)
    stored = raw_secret(clinic.engine, clinic.clinician.id)
    assert stored.startswith(sealing.PREFIX)
    assert secret not in stored
    codes = accounts.confirm_mfa_enrolment(
        clinic.uow(), clinic.as_clinician, MfaCode(code=code_at(secret, datetime.now(UTC)))
    )
    assert len(codes) == 10
    # Sealed again on every write (a fresh nonce), never written back in clear.
    assert raw_secret(clinic.engine, clinic.clinician.id).startswith(sealing.PREFIX)
    # Without the key, the stored value gives nothing away.
    with pytest.raises(sealing.SealingError):
        sealing.Sealer([b"z" * 32]).open(stored, "mfa_secrets.secret")


def test_a_secret_planted_in_clear_is_not_accepted(clinic: ClinicFixture) -> None:
    """Someone who can write the database but lacks the key cannot plant a secret they
    know: a value that is not sealed with the key is refused, not used."""
    accounts.begin_mfa_enrolment(clinic.uow(), clinic.as_clinician)
    with clinic.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE mfa_secrets SET secret = :s WHERE clinic_id = :c"),
            {
                "s": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                "c": clinic.clinician.clinic_id
                if clinic.engine.dialect.name != "sqlite"
                else clinic.clinician.clinic_id.hex,
            },
        )
    with pytest.raises(sealing.SealingError, match="not sealed"):
        accounts.begin_mfa_enrolment(clinic.uow(), clinic.as_clinician)


def test_upgrading_seals_secrets_stored_in_clear_by_older_versions(
    database: str,  # noqa: F811
) -> None:
    engine, clinic = clinic_with_records(database)
    secret, _ = accounts.begin_mfa_enrolment(clinic.uow(), clinic.as_clinician)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:  # 0011's downgrade rebuilds users, which other tables refer to
            raw.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            command.downgrade(alembic_config(conn), "0008")
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
    assert raw_secret(engine, clinic.clinician.id) == secret  # as 0008 stored it
    upgrade(engine)
    stored = raw_secret(engine, clinic.clinician.id)
    assert stored.startswith(sealing.PREFIX)
    assert secret not in stored
    engine.dispose()


# -- the backup tamper suite -----------------------------------------------------------------


def _flip(blob: bytes, at: int) -> bytes:
    changed = bytearray(blob)
    changed[at] ^= 0x01
    return bytes(changed)


def _header_end(blob: bytes) -> int:
    (hlen,) = _LEN.unpack(blob[len(MAGIC) : len(MAGIC) + 4])
    return len(MAGIC) + 4 + hlen


def _header_edit(blob: bytes, **changes: object) -> bytes:
    end = _header_end(blob)
    header = json.loads(blob[len(MAGIC) + 4 : end])
    header.update(changes)
    raw = json.dumps(header, sort_keys=True).encode()
    return MAGIC + _LEN.pack(len(raw)) + raw + blob[end:]


def _sqlite_edit(content: bytes, tmp: Path, statements: list[str]) -> bytes:
    path = tmp / "edit.db"
    path.write_bytes(content)
    conn = sqlite3.connect(path)
    conn.executescript(";\n".join(statements))
    conn.commit()
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    return path.read_bytes()


def _drop_sqlite_audit_triggers() -> list[str]:
    return [f"DROP TRIGGER {name}" for name in protections.SQLITE_TRIGGERS]


FileTamper = Callable[[bytes], bytes]

FILE_TAMPERS: dict[str, FileTamper] = {
    "a byte of the header changed": lambda b: _flip(b, len(MAGIC) + 8),
    "the header says another time": lambda b: _header_edit(b, created_at="2001-01-01T00:00:00"),
    "a byte of the content changed": lambda b: _flip(b, _header_end(b) + 40),
    "the authentication tag changed": lambda b: _flip(b, len(b) - 1),
    "cut off at half": lambda b: b[: len(b) // 2],
    "cut off by one byte": lambda b: b[:-1],
    "only the header left": lambda b: b[: _header_end(b)],
    "bytes appended": lambda b: b + b"needlepoint",
    "an empty file": lambda b: b"",
    "random bytes": lambda b: os.urandom(len(b)),
    "the magic changed": lambda b: b"X" + b[1:],
}


def _foreign_database(content: bytes, tmp: Path) -> bytes:
    path = tmp / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    return path.read_bytes()


# Changes made by someone holding the backup key (so the file authenticates): only the
# checks after decryption can refuse these. SQLite copies are edited directly.
CONTENT_TAMPERS: dict[str, list[str]] = {
    "an audit event rewritten": [
        *_drop_sqlite_audit_triggers(),
        "UPDATE audit_events SET request_id = 'forged' WHERE seq = 2",
    ],
    "the audit trail's tail truncated": [
        *_drop_sqlite_audit_triggers(),
        "DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)",
    ],
    "an audit event deleted in the middle": [
        *_drop_sqlite_audit_triggers(),
        "DELETE FROM audit_events WHERE seq = 2",
    ],
    "a clinic's whole chain deleted": [
        *_drop_sqlite_audit_triggers(),
        "DELETE FROM audit_events",
    ],
    "an audit event fabricated": [
        *_drop_sqlite_audit_triggers(),
        "INSERT INTO audit_events (id, clinic_id, action, entity_type, entity_id,"
        " occurred_at, source, outcome, seq, prev_hash, hash)"
        " SELECT lower(hex(randomblob(16))), clinic_id, action, entity_type, entity_id,"
        " occurred_at, source, outcome, seq + 1000, prev_hash, hash"
        " FROM audit_events WHERE seq = 1",
    ],
    "the schema revision from the future": ["UPDATE alembic_version SET version_num = '9999'"],
    "not Needlepoint's tables": ["DROP TABLE IF EXISTS audit_chain_heads"],
}


def _apply_content_tamper(name: str, content: bytes, tmp: Path) -> bytes:
    return _sqlite_edit(content, tmp, CONTENT_TAMPERS[name])


@pytest.mark.parametrize(
    "tamper",
    [
        *FILE_TAMPERS,
        "another key",
        "a passphrase backup restored with the key",
        "an unencrypted copy of the database",
        "a backup of another kind of database",
    ],
)
def test_a_tampered_or_foreign_backup_file_is_refused_and_changes_nothing(
    database: str,  # noqa: F811
    tmp_path: Path,
    tamper: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, _ = clinic_with_records(database)
    good = tmp_path / "good.backup"
    if tamper == "a passphrase backup restored with the key":
        phrase = tmp_path / "phrase"
        phrase.write_text("a long clinic passphrase\n")
        make_backup(database, good, "--passphrase-file", str(phrase))
    else:
        make_backup(database, good)
    before = table_checksums(engine)
    bad = tmp_path / "bad.backup"
    if tamper in FILE_TAMPERS:
        bad.write_bytes(FILE_TAMPERS[tamper](good.read_bytes()))
    elif tamper == "another key":
        bad = good
        monkeypatch.setenv("NEEDLEPOINT_BACKUP_KEY", sealing.new_key_text())
    elif tamper == "a passphrase backup restored with the key":
        bad = good
    elif tamper == "an unencrypted copy of the database":
        bad.write_bytes(clear_copy(good))
    else:  # the other kind of database
        other = "postgresql" if backend_of(database) == "sqlite" else "sqlite"
        with bad.open("wb") as f:
            encrypt_stream(
                io.BytesIO(clear_copy(good)),
                f,
                BackupKey(key=Settings().resolved_backup_key()),
                other,
            )
    code, output = restore(database, bad)
    assert code == 2, output
    assert "error:" in output
    assert table_checksums(engine) == before
    # No staged copy left behind (it would hold the backup's content in clear).
    assert not [p for p in tmp_path.rglob("*.tmp")]
    engine.dispose()


@pytest.mark.parametrize("tamper", [*CONTENT_TAMPERS, "a foreign SQLite database"])
def test_an_authenticated_backup_of_a_bad_database_is_refused_and_changes_nothing(
    tmp_path: Path, tamper: str
) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine, _ = clinic_with_records(url)
    good = tmp_path / "good.backup"
    make_backup(url, good)
    before = table_checksums(engine)
    content = clear_copy(good)
    if tamper == "a foreign SQLite database":
        edited = _foreign_database(content, tmp_path)
    else:
        edited = _apply_content_tamper(tamper, content, tmp_path)
    bad = tmp_path / "bad.backup"
    reencrypt(url, edited, bad)
    code, output = restore(url, bad)
    assert code == 2, output
    assert "Nothing was changed" in output or "nothing was changed" in output
    assert table_checksums(engine) == before
    engine.dispose()


@pytest.fixture
def pg_database() -> Iterator[str]:
    yield from _pg_database()


def test_a_postgresql_backup_with_a_rewritten_audit_trail_is_refused_before_anything_changes(
    pg_database: str, tmp_path: Path
) -> None:
    """PostgreSQL: the dump is restored into a scratch database and checked there; the
    target is not touched when the check fails (the SQLite variants are above)."""
    url = pg_database
    engine, _ = clinic_with_records(url)
    with engine.begin() as conn:  # an owner rewrites an event, then backs up
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("UPDATE audit_events SET request_id = 'forged' WHERE seq = 2")
    bad = tmp_path / "bad.backup"
    make_backup(url, bad)
    make_clinic(engine)  # the database moves on
    before = table_checksums(engine)
    code, output = restore(url, bad)
    assert code == 2, output
    assert "audit trail does not verify" in output
    assert table_checksums(engine) == before
    with engine.connect() as conn:  # no scratch database left behind
        left = conn.execute(
            sa.text("SELECT count(*) FROM pg_database WHERE datname LIKE :scratch"),
            {"scratch": f"{engine.url.database}_restore_%"},
        ).scalar_one()
    assert left == 0
    engine.dispose()


def test_unencrypted_backups_of_older_versions_restore_only_when_asked(
    database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    engine, _ = clinic_with_records(database)
    good = tmp_path / "good.backup"
    make_backup(database, good)
    expected = table_checksums(engine)
    legacy = tmp_path / "legacy.backup"
    legacy.write_bytes(clear_copy(good))
    make_clinic(engine)  # the database moves on
    engine.dispose()
    code, output = restore(database, legacy)
    assert code == 2
    assert "not encrypted" in output
    code, output = restore(database, legacy, "--unencrypted")
    assert code == 0, output
    engine = make_engine(database)
    assert table_checksums(engine) == expected
    engine.dispose()


def test_a_passphrase_backup_round_trips(
    database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    engine, clinic = clinic_with_records(database)
    expected = table_checksums(engine)
    phrase = tmp_path / "phrase"
    phrase.write_text("a long clinic passphrase\n")
    out = tmp_path / "clinic.backup"
    make_backup(database, out, "--passphrase-file", str(phrase))
    patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    engine.dispose()
    code, output = restore(database, out)
    assert code == 2
    assert "passphrase" in output
    code, output = restore(database, out, "--passphrase-file", str(phrase))
    assert code == 0, output
    assert "audit trail OK" in output
    engine = make_engine(database)
    assert table_checksums(engine) == expected
    engine.dispose()


# -- protections ------------------------------------------------------------------------------

SqlTamper = list[str]

SQLITE_PROTECTION_TAMPERS: dict[str, SqlTamper] = {
    "an append-only trigger dropped": ["DROP TRIGGER audit_events_no_delete"],
    "every audit trigger dropped": _drop_sqlite_audit_triggers(),
    "an append-only trigger replaced by one that does nothing": [
        "DROP TRIGGER audit_events_no_update",
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "WHEN 0 BEGIN SELECT 1; END",
    ],
    "the chain head guard dropped": ["DROP TRIGGER audit_chain_heads_follow"],
}

PG_PROTECTION_TAMPERS: dict[str, SqlTamper] = {
    "an append-only trigger dropped": ["DROP TRIGGER audit_events_append_only ON audit_events"],
    "the truncate guard dropped": ["DROP TRIGGER audit_events_no_truncate ON audit_events"],
    "an append-only trigger disabled": [
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"
    ],
    "the chain trigger disabled": ["ALTER TABLE audit_events DISABLE TRIGGER audit_events_chain"],
    "a trigger function replaced by one that lets changes through": [
        "CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
    ],
    "a trigger narrowed to DELETE only": [
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "CREATE TRIGGER audit_events_append_only BEFORE DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()",
    ],
    "row-level security switched off": ["ALTER TABLE patients DISABLE ROW LEVEL SECURITY"],
    "a tenant policy dropped": ["DROP POLICY clinic_isolation ON sessions"],
    "a tenant policy opened to every clinic": [
        "DROP POLICY clinic_isolation ON episodes",
        "CREATE POLICY clinic_isolation ON episodes TO needlepoint_app USING (true)",
    ],
    "the application role allowed to rewrite the audit trail": [
        "GRANT UPDATE, DELETE ON audit_events TO needlepoint_app"
    ],
}


def _tamper_protections(engine: sa.Engine, statements: SqlTamper) -> None:
    with engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)


def _protection_cases() -> list[tuple[str, str]]:
    return [("sqlite", name) for name in SQLITE_PROTECTION_TAMPERS] + [
        ("postgresql", name) for name in PG_PROTECTION_TAMPERS
    ]


@pytest.fixture
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the kind the case names (its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'clinic.db'}"
        return
    yield from _pg_database()


def _pg_database() -> Iterator[str]:
    import uuid

    from tests import conftest

    admin = conftest._pg_admin()
    if admin is None:
        pytest.skip(f"PostgreSQL cases skipped: {conftest._pg_unreachable}")
    name = f"needlepoint_protect_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(conftest.PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize(
    ("own_database", "tamper"),
    _protection_cases(),
    indirect=["own_database"],
    ids=[f"{k}-{n}" for k, n in _protection_cases()],
)
def test_a_missing_or_altered_protection_is_reported_and_put_back_by_upgrade(
    own_database: str, tamper: str
) -> None:
    engine, _clinic = clinic_with_records(own_database)
    statements = (
        SQLITE_PROTECTION_TAMPERS if engine.dialect.name == "sqlite" else PG_PROTECTION_TAMPERS
    )[tamper]
    _tamper_protections(engine, statements)
    with engine.connect() as conn:
        assert protections.inspect(conn), tamper
    verify = runner.invoke(app, ["audit", "verify", "--db", own_database])
    assert verify.exit_code == 1, verify.output
    assert "UNPROTECTED" in verify.output
    upgraded = runner.invoke(app, ["db", "upgrade", "--db", own_database])
    assert upgraded.exit_code == 0, upgraded.output
    assert "put back" in upgraded.output
    with engine.connect() as conn:
        assert protections.inspect(conn) == []
    verify = runner.invoke(app, ["audit", "verify", "--db", own_database])
    assert verify.exit_code == 0, verify.output
    # …and the put-back protection works: an audit event cannot be rewritten.
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(sa.update(t.audit_events).values(request_id="forged"))
    engine.dispose()


def test_a_fresh_database_needs_no_repair(engine: sa.Engine) -> None:
    """The definitions in protections.py are those the migrations make (change both)."""
    with engine.connect() as conn:
        assert protections.inspect(conn) == []
    assert upgrade(engine) == []


def test_a_backup_without_the_protective_triggers_restores_with_them(
    database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    engine, _ = clinic_with_records(database)
    if engine.dialect.name == "sqlite":
        _tamper_protections(engine, _drop_sqlite_audit_triggers())
    else:
        _tamper_protections(
            engine,
            [
                f"DROP TRIGGER {name} ON {table}"
                for name, (table, _) in protections.PG_TRIGGERS.items()
            ]
            + ["ALTER TABLE patients DISABLE ROW LEVEL SECURITY"],
        )
    with engine.connect() as conn:
        assert protections.inspect(conn)
    out = tmp_path / "unprotected.backup"
    make_backup(database, out)
    expected = table_checksums(engine)
    engine.dispose()
    code, output = restore(database, out)
    assert code == 0, output
    assert "put back" in output
    engine = make_engine(database)
    assert table_checksums(engine) == expected
    with engine.connect() as conn:
        assert protections.inspect(conn) == []
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(sa.delete(t.audit_events))
    engine.dispose()
