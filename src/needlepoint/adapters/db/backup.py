"""Backups and restores of the whole database, with the databases' own tools.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot
while the clinic keeps working; the copy is checked with `PRAGMA integrity_check` before
it replaces the output file. PostgreSQL: `pg_dump --format=custom` and `pg_restore
--clean --single-transaction` (the client tools must be installed; their versions must
not be older than the server's)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from needlepoint.adapters.db.engine import normalise_url


class BackupError(RuntimeError):
    """A backup or restore that could not be done (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    bytes: int
    sha256: str


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sqlite_path(url: URL) -> Path:
    if url.database in (None, "", ":memory:"):
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _check_sqlite(conn: sqlite3.Connection) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchall()
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


def backup(url: str | URL, out: Path) -> BackupResult:
    """Write a consistent copy of the database to `out` (replaced only when complete)."""
    parsed = normalise_url(url)
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if parsed.get_backend_name() == "sqlite":
        source = _sqlite_path(parsed)
        if not source.exists():
            raise BackupError(f"no database at {source}")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
            src.backup(dst)
            _check_sqlite(dst)
        src.close()
        dst.close()
    else:
        args, env = _libpq(parsed)
        cmd = [_tool("pg_dump"), "--format=custom", "--file", str(partial), *args]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    os.replace(partial, out)
    return BackupResult(out, out.stat().st_size, _sha256(out))


def restore(url: str | URL, source: Path) -> None:
    """Replace the database's content with the backup at `source`, atomically."""
    parsed = normalise_url(url)
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    if parsed.get_backend_name() == "sqlite":
        target = _sqlite_path(parsed)
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as src:
            _check_sqlite(src)
            # The backup API writes the whole copy under the target's write lock: readers
            # see the old database or the restored one, never a mixture.
            with sqlite3.connect(target, timeout=30) as dst:
                src.backup(dst)
                _check_sqlite(dst)
            dst.close()
        src.close()
        return
    args, env = _libpq(parsed)
    cmd = [
        _tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        *args,
        str(source),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")


def table_checksums(engine: sa.Engine) -> dict[str, str]:
    """SHA-256 of every table's rows in primary-key order (to compare two databases)."""
    from needlepoint.adapters.db.tables import metadata

    sums: dict[str, str] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            h = hashlib.sha256()
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            for row in rows:
                h.update(repr(tuple(row)).encode())
            sums[table.name] = h.hexdigest()
    return sums
