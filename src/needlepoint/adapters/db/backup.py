"""Backups and restores of the whole database, encrypted and authenticated, with the
databases' own tools.

A backup file is `NEEDLEPOINT-BACKUP` + a JSON header (format, database kind, time, key
derivation) + the database's copy encrypted in 1 MiB chunks with AES-256-GCM
(`cryptography`), each chunk's nonce carrying its number and a last-chunk flag and each
chunk bound to the header (the STREAM construction, as in age and Tink): a changed,
reordered, removed or appended byte anywhere, or a cut-off file, fails authentication.
The file key is derived per backup from the operator's key (HKDF-SHA256 with a random
salt) or passphrase (scrypt). Files are written 0600 and replaced only when complete.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot
while the clinic keeps working; the copy is checked with `PRAGMA integrity_check`, then
encrypted. PostgreSQL: `pg_dump --format=custom` streamed into the encryption (no clear
copy on disk). The client tools must be installed, not older than the server.

A restore replaces nothing until the backup has been decrypted and authenticated into a
new private file, recognised as a Needlepoint database of a known schema, and checked by
the caller (`verify`: the audit chains). SQLite: the checked copy is brought to head
(protective triggers put back) and then swapped in, in one SQLite transaction (the
backup API under the target's write lock: readers see the old or the new database);
PostgreSQL: the dump is first restored into a scratch database and checked there, then
restored into the target with `pg_restore --clean --single-transaction` (all or nothing)
and the target brought to head."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.engine import URL

from needlepoint.adapters.db.engine import SQLITE_COMPANIONS, make_engine, make_private
from needlepoint.adapters.db.engine import normalise_url as normalise_url
from needlepoint.adapters.db.migrate import head_revision, known_revision, upgrade
from needlepoint.adapters.db.tables import metadata
from needlepoint.adapters.sealing import key_id

MAGIC = b"NEEDLEPOINT-BACKUP\n"
FORMAT = 1
CHUNK = 1 << 20
_TAG = 16
_LENGTH = struct.Struct(">I")
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_KEY_ID_PURPOSE = b"needlepoint backup key id"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PGDUMP_MAGIC = b"PGDMP"

Verify = Callable[[sa.Engine], list[str]]
"""Checks a staged copy (the audit chains): the problems found, empty when it is sound."""


class BackupError(RuntimeError):
    """A backup or restore that could not be done (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class BackupKey:
    """What encrypts a backup: a 32-byte key (from the settings or the data directory's
    backup.key), or a passphrase."""

    key: bytes | None = None
    passphrase: str | None = None

    def __post_init__(self) -> None:
        if (self.key is None) == (self.passphrase is None):
            raise ValueError("a backup key is either a key or a passphrase")
        if self.passphrase is not None and not self.passphrase:
            raise BackupError("an empty passphrase cannot protect a backup")

    def describe(self) -> str:
        if self.key is not None:
            return f"key {key_id(self.key, _KEY_ID_PURPOSE)}"
        return "a passphrase"


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    bytes: int
    sha256: str
    encrypted_with: str


@dataclass(frozen=True, slots=True)
class RestoreResult:
    backend: str
    created_at: str | None
    repaired: list[str] = field(default_factory=list)


# -- the encrypted format ----------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise BackupError("the backup's header is damaged")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise BackupError("the backup's header is damaged") from exc


def _new_header(key: BackupKey, backend: str) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    kdf: dict[str, Any]
    if key.key is not None:
        kdf = {"name": "hkdf-sha256", "salt": _b64(salt), "key_id": key.describe()[4:]}
    else:
        kdf = {"name": "scrypt", "salt": _b64(salt), **_SCRYPT}
    return {
        "format": FORMAT,
        "application": "needlepoint",
        "backend": backend,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cipher": "AES-256-GCM",
        "chunk": CHUNK,
        "nonce_prefix": _b64(secrets.token_bytes(7)),
        "kdf": kdf,
    }


def _file_key(key: BackupKey, header: dict[str, Any]) -> bytes:
    kdf = header.get("kdf")
    if not isinstance(kdf, dict):
        raise BackupError("the backup's header is damaged")
    salt = _unb64(kdf.get("salt"))
    if kdf.get("name") == "hkdf-sha256":
        if key.key is None:
            raise BackupError(
                f"this backup was encrypted with a key (key id {kdf.get('key_id')}), "
                "not a passphrase: give the key (NEEDLEPOINT_BACKUP_KEY or backup.key)"
            )
        mine = key.describe()[4:]
        if kdf.get("key_id") != mine:
            raise BackupError(
                f"this backup was encrypted with another key (key id {kdf.get('key_id')}; "
                f"the configured key is {mine}): nothing was changed"
            )
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=salt, info=b"needlepoint backup v1"
        ).derive(key.key)
    if kdf.get("name") == "scrypt":
        if key.passphrase is None:
            raise BackupError(
                "this backup was encrypted with a passphrase: give it (--passphrase-file, "
                "or --passphrase to be asked)"
            )
        try:
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError("the backup's header is damaged") from exc
        if (n, r, p) != (_SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]):
            raise BackupError("the backup's key derivation is not one Needlepoint writes")
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(key.passphrase.encode())
    raise BackupError("the backup's key derivation is not one Needlepoint knows")


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise BackupError("a backup of more than 4 PiB is not supported")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(source: IO[bytes], out: IO[bytes], key: BackupKey, backend: str) -> None:
    """Write `source` to `out` in the encrypted backup format."""
    header = _new_header(key, backend)
    header_bytes = json.dumps(header, sort_keys=True).encode()
    out.write(MAGIC + _LENGTH.pack(len(header_bytes)) + header_bytes)
    aead = AESGCM(_file_key(key, header))
    aad = hashlib.sha256(MAGIC + header_bytes).digest()
    prefix = _unb64(header["nonce_prefix"])
    counter = 0
    current = _read_full(source, CHUNK)
    while True:
        following = _read_full(source, CHUNK) if len(current) == CHUNK else b""
        last = not following
        box = aead.encrypt(_nonce(prefix, counter, last), current, aad)
        out.write(_LENGTH.pack(len(box)) + box)
        if last:
            return
        current, counter = following, counter + 1


def _read_full(source: IO[bytes], size: int) -> bytes:
    parts, wanted = [], size
    while wanted:
        part = source.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


def read_header(path: Path) -> dict[str, Any] | None:
    """The header of a Needlepoint backup file; None for any other file."""
    with path.open("rb") as f:
        return _read_header(f)[0]


def _read_header(f: IO[bytes]) -> tuple[dict[str, Any] | None, bytes]:
    if f.read(len(MAGIC)) != MAGIC:
        return None, b""
    raw_length = f.read(_LENGTH.size)
    if len(raw_length) != _LENGTH.size:
        raise BackupError("the backup is cut off in its header")
    (length,) = _LENGTH.unpack(raw_length)
    if length > 64 * 1024:
        raise BackupError("the backup's header is damaged")
    header_bytes = f.read(length)
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise BackupError("the backup's header is damaged") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("the backup's format is not one this version of Needlepoint reads")
    return header, header_bytes


def decrypt_stream(source: IO[bytes], out: IO[bytes], key: BackupKey) -> dict[str, Any]:
    """Authenticate and decrypt a backup from `source` into `out`; its header. Raises
    BackupError for anything altered, reordered, cut off, appended or another key."""
    header, header_bytes = _read_header(source)
    if header is None:
        raise BackupError("not a Needlepoint backup")
    aead = AESGCM(_file_key(key, header))
    aad = hashlib.sha256(MAGIC + header_bytes).digest()
    prefix = _unb64(header.get("nonce_prefix"))
    if len(prefix) != 7:
        raise BackupError("the backup's header is damaged")
    counter = 0
    while True:
        raw_length = source.read(_LENGTH.size)
        if len(raw_length) != _LENGTH.size:
            raise BackupError("the backup is cut off (its last part is missing)")
        (length,) = _LENGTH.unpack(raw_length)
        if length < _TAG or length > CHUNK + _TAG:
            raise BackupError("the backup was altered (a part has an impossible length)")
        box = _read_full(source, length)
        if len(box) != length:
            raise BackupError("the backup is cut off (its last part is missing)")
        for last in (False, True):
            try:
                plain = aead.decrypt(_nonce(prefix, counter, last), box, aad)
            except InvalidTag:
                continue
            break
        else:
            raise BackupError(
                f"the backup was altered or is damaged (part {counter + 1} does not authenticate)"
                if counter
                else "the backup could not be authenticated: it was altered, or the "
                "key or passphrase is not the one it was made with"
            )
        out.write(plain)
        if last:
            if source.read(1):
                raise BackupError("the backup was altered (data after its last part)")
            return header
        counter += 1


# -- files --------------------------------------------------------------------------------


def _private_file(path: Path) -> IO[bytes]:
    """A new file readable and writable by its owner only (0600 from its creation)."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _private_dir(path: Path) -> None:
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextmanager
def _scratch_file(folder: Path, label: str) -> Iterator[Path]:
    """A private (0600) temporary file in `folder`, removed with its SQLite companions."""
    _private_dir(folder)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{label}-", suffix=".tmp")
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        for file in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
            file.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sqlite_path(url: URL) -> Path:
    if url.database in (None, "", ":memory:"):
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database).expanduser().resolve()


def _check_sqlite(conn: sqlite3.Connection) -> None:
    try:
        result = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"not an SQLite database ({exc})") from exc
    if result != [("ok",)]:
        raise BackupError(f"integrity check failed: {result[:5]}")


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for the PostgreSQL client tools (password via environment,
    never on the command line)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    args = ["--dbname", url.database or "postgres"]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    return args, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed (Debian/Ubuntu: apt-get install postgresql-client)"
        )
    return found


# -- backup --------------------------------------------------------------------------------


def backup(url: str | URL, out: Path, key: BackupKey) -> BackupResult:
    """Write an encrypted, consistent copy of the database to `out` (0600; replaced only
    when complete)."""
    parsed = normalise_url(url)
    out = out.expanduser().resolve()
    _private_dir(out.parent)
    partial = out.with_name(out.name + ".partial")
    try:
        if parsed.get_backend_name() == "sqlite":
            _backup_sqlite(_sqlite_path(parsed), partial, key)
        else:
            _backup_postgresql(parsed, partial, key)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    return BackupResult(out, out.stat().st_size, _sha256(out), key.describe())


def _backup_sqlite(source: Path, partial: Path, key: BackupKey) -> None:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    # The clear copy lives, 0600, beside the database it copies (which holds the same).
    with _scratch_file(source.parent, source.name + ".backup") as copy:
        src = sqlite3.connect(source)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
            _check_sqlite(dst)
        finally:
            dst.close()
            src.close()
        with copy.open("rb") as plain, _private_file(partial) as sealed:
            encrypt_stream(plain, sealed, key, "sqlite")
            sealed.flush()
            os.fsync(sealed.fileno())


def _backup_postgresql(url: URL, partial: Path, key: BackupKey) -> None:
    args, env = _libpq(url)
    cmd = [_tool("pg_dump"), "--format=custom", *args]
    with (
        _private_file(partial) as sealed,
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=errors) as dump,  # noqa: S603
    ):
        assert dump.stdout is not None
        encrypt_stream(dump.stdout, sealed, key, "postgresql")
        code = dump.wait()
        sealed.flush()
        os.fsync(sealed.fileno())
        if code != 0:
            errors.seek(0)
            raise BackupError(f"pg_dump failed: {errors.read().decode(errors='replace').strip()}")


# -- restore -------------------------------------------------------------------------------


def restore(
    url: str | URL,
    source: Path,
    key: BackupKey | None,
    verify: Verify,
    *,
    unencrypted: bool = False,
) -> RestoreResult:
    """Replace the database's content with the backup at `source`, once it has been
    authenticated, recognised and verified (`verify`) in a staged copy; anything else is
    refused with the reason, and the database is left as it was."""
    parsed = normalise_url(url)
    source = source.expanduser()
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    backend = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
    header = read_header(source)
    if header is None:
        with source.open("rb") as f:
            start = f.read(len(_SQLITE_MAGIC))
        legacy = start == _SQLITE_MAGIC or start.startswith(_PGDUMP_MAGIC)
        if not legacy:
            raise BackupError(f"{source} is not a Needlepoint backup: nothing was changed")
        if not unencrypted:
            raise BackupError(
                f"{source} is not encrypted (a backup made before backups were encrypted, "
                "or a copy of a database): its integrity cannot be checked, so it is "
                "refused; nothing was changed. If you know where it has been, restore it "
                "with --unencrypted (it is still checked as a Needlepoint database with "
                "an intact audit trail)"
            )
        kind = "sqlite" if start == _SQLITE_MAGIC else "postgresql"
    else:
        kind = str(header.get("backend"))
        if key is None:
            raise BackupError("this backup is encrypted: a key or passphrase is needed")
    if kind != backend:
        raise BackupError(
            f"this is a backup of {'an SQLite' if kind == 'sqlite' else 'a PostgreSQL'} "
            f"database; the target is {backend}: nothing was changed"
        )
    created = str(header["created_at"]) if header else None
    if backend == "sqlite":
        target = _sqlite_path(parsed)
        with _scratch_file(target.parent, target.name + ".restore") as staged:
            _stage(source, staged, key if header else None)
            repaired = _restore_sqlite(staged, target, verify)
        return RestoreResult(backend, created, repaired)
    folder = Path(tempfile.mkdtemp(prefix="needlepoint-restore-"))
    try:
        with _scratch_file(folder, "dump") as staged:
            _stage(source, staged, key if header else None)
            repaired = _restore_postgresql(parsed, staged, verify)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return RestoreResult(backend, created, repaired)


def _stage(source: Path, staged: Path, key: BackupKey | None) -> None:
    """The backup's clear content in `staged` (0600), authenticated when encrypted."""
    with source.open("rb") as src, staged.open("wb") as out:
        if key is None:
            shutil.copyfileobj(src, out)
        else:
            decrypt_stream(src, out, key)


def _check_needlepoint(engine: sa.Engine) -> None:
    """Refuse a database that is not Needlepoint's, or of a schema this version does not
    know (a newer one)."""
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names())
    if not {"alembic_version", "clinics", "users", "audit_events"} <= tables:
        raise BackupError("the backup is not of a Needlepoint database: nothing was changed")
    with engine.connect() as conn:
        revisions = [r for (r,) in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    if len(revisions) != 1 or not known_revision(revisions[0]):
        raise BackupError(
            f"the backup's schema ({', '.join(revisions) or 'none'}) is not one this version "
            "of Needlepoint knows (a newer version made it?): nothing was changed"
        )
    if revisions[0] == head_revision():
        missing = sorted({table.name for table in metadata.sorted_tables} - tables)
        if missing:
            raise BackupError(
                f"the backup's database lacks tables ({', '.join(missing)}): nothing was changed"
            )


def _checked(engine: sa.Engine, verify: Verify) -> None:
    _check_needlepoint(engine)
    try:
        problems = verify(engine)
    except (sa.exc.DBAPIError, ValueError, LookupError, TypeError) as exc:
        raise BackupError(
            f"the backup's database is damaged or not Needlepoint's ({exc}): nothing was changed"
        ) from exc
    if problems:
        listed = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise BackupError(
            f"the backup's audit trail does not verify: {listed}{more}. Nothing was changed"
        )


def _restore_sqlite(staged: Path, target: Path, verify: Verify) -> list[str]:
    check = sqlite3.connect(staged)
    try:
        _check_sqlite(check)
    finally:
        check.close()
    engine = make_engine(f"sqlite:///{staged}")
    try:
        _checked(engine, verify)
        repaired = upgrade(engine)  # to head, protections put back
    except sa.exc.DatabaseError as exc:
        raise BackupError(f"the backup is not a usable database ({exc.orig})") from exc
    finally:
        engine.dispose()
    _private_dir(target.parent)
    make_private(target)
    try:
        src = sqlite3.connect(staged)
        dst = sqlite3.connect(target, timeout=30)
        try:
            # One SQLite transaction under the target's write lock: readers see the old
            # database or the restored one, never a mixture, and never a half copy.
            src.backup(dst)
            _check_sqlite(dst)
        finally:
            dst.close()
            src.close()
    except (sqlite3.DatabaseError, BackupError):
        # The target is not a database SQLite can open (damaged): swap the file itself.
        for suffix in SQLITE_COMPANIONS:
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(staged, target)
    make_private(target)
    return repaired


def _admin_url(url: URL) -> URL:
    return url.set(database=url.database or "postgres")


def _restore_postgresql(url: URL, staged: Path, verify: Verify) -> list[str]:
    listed = subprocess.run(  # noqa: S603
        [_tool("pg_restore"), "--list", str(staged)], capture_output=True, check=False
    )
    if listed.returncode != 0:
        raise BackupError("the backup is not a PostgreSQL dump: nothing was changed")
    scratch = f"{(url.database or 'postgres')[:40]}_restore_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            _ensure_app_role(conn)
            try:
                conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
            except sa.exc.DBAPIError as exc:
                raise BackupError(
                    "checking a backup before restoring it needs a role that may create a "
                    f"scratch database (CREATEDB): {exc.orig}"
                ) from exc
        try:
            _pg_restore(url.set(database=scratch), staged, clean=False)
            engine = make_engine(url.set(database=scratch))
            try:
                _checked(engine, verify)
            finally:
                engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    finally:
        admin.dispose()
    _pg_restore(url, staged, clean=True)
    target = make_engine(url)
    try:
        return upgrade(target)
    finally:
        target.dispose()


def _ensure_app_role(conn: sa.Connection) -> None:
    """The application role the dump's privileges name (a new server may lack it)."""
    with suppress(sa.exc.DBAPIError):
        conn.execute(
            sa.text(
                """DO $$ BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'needlepoint_app') THEN
                        CREATE ROLE needlepoint_app NOLOGIN;
                    END IF;
                END $$"""
            )
        )


def _pg_restore(url: URL, dump: Path, *, clean: bool) -> None:
    args, env = _libpq(url)
    cmd = [
        _tool("pg_restore"),
        *(["--clean", "--if-exists"] if clean else []),
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        *args,
        str(dump),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        where = "the database" if clean else "a scratch database (the target is untouched)"
        raise BackupError(f"pg_restore into {where} failed: {done.stderr.strip()}")


def table_checksums(engine: sa.Engine) -> dict[str, str]:
    """SHA-256 of every table's rows in primary-key order (to compare two databases)."""
    sums: dict[str, str] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            h = hashlib.sha256()
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            for row in rows:
                h.update(repr(tuple(row)).encode())
            sums[table.name] = h.hexdigest()
    return sums
