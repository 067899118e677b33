"""Settings, from the environment (prefix `NEEDLEPOINT_`) or explicit values."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic_settings import BaseSettings, SettingsConfigDict

from needlepoint.adapters import sealing
from needlepoint.adapters.db.engine import Limits


def default_data_dir() -> Path:
    """Where the embedded database and demo files live unless told otherwise."""
    return Path(user_data_dir("needlepoint", appauthor=False))


POSTGRESQL_THREADS = 4
"""Request threads per serving process on PostgreSQL (see `Settings.resolved_threads`)."""


class Settings(BaseSettings):
    """Runtime settings. `database_url` picks SQLite (default) or PostgreSQL."""

    model_config = SettingsConfigDict(env_prefix="NEEDLEPOINT_")

    data_dir: Path = default_data_dir()
    database_url: str | None = None
    secret_key: str | None = None
    # Keys kept outside the database (docs/operator-guide.md, "Keys"): the one sealing
    # TOTP secrets in the database (several, comma-separated: the first seals, any
    # opens), and the one encrypting backups. Unset: a key file in the data directory.
    sealing_key: str | None = None
    backup_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    secure_cookies: bool = False
    # A demonstration server (`needlepoint demo`): every page says its data are synthetic.
    demo: bool = False
    # Serving (docs/operator-guide.md): processes, and per process its connection pool,
    # its bounded waits (seconds) and how many requests it admits before answering 503.
    workers: int | None = None  # None: the number of cores
    pool_size: int = 8
    pool_overflow: int = 4
    pool_timeout: float = 10.0
    lock_timeout: float = 5.0
    max_in_flight: int = 256
    threads: int | None = None  # None: 2 on SQLite, else pool size + overflow − 1
    # Requests (web/limits.py): the largest body, and the API rate per caller (requests a
    # second, in bursts of `rate_burst`; 0 turns it off), kept per process.
    max_body_bytes: int = 1_048_576
    rate_limit: float = 20.0
    rate_burst: int = 200
    # The reverse proxies whose X-Forwarded-For / -Proto uvicorn believes (comma-separated
    # addresses or networks, "*" for any). Unset: none, the client is the socket's peer.
    forwarded_allow_ips: str | None = None
    # uvicorn's per-request access log line. Off by default: it cost about a tenth of a
    # serving process's interpreter time under load (bench/clinic_day.py profile), the
    # reverse proxy in front logs every request, and the audit trail records who did what.
    access_log: bool = False
    # E-mail to patients (issue 16, docs/operator-guide.md "E-mail"): the SMTP server the
    # outbox worker sends through (smtp://, smtp+starttls://user:pass@host:587 or
    # smtps://…; unset: nothing is sent, messages wait in the outbox), the sender, and
    # the address patients reach the server at (the links in reminders).
    smtp_url: str | None = None
    mail_from: str = "Needlepoint <no-reply@needlepoint.invalid>"
    public_url: str | None = None

    def limits(self) -> Limits:
        """The database limits of one serving process."""
        return Limits(
            pool_size=self.pool_size,
            max_overflow=self.pool_overflow,
            pool_timeout=self.pool_timeout,
            lock_timeout=self.lock_timeout,
        )

    def resolved_public_url(self) -> str:
        """The address patients reach the server at, which every link e-mailed to them
        starts with: `public_url`, else the address this server listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def server_options(self) -> dict[str, Any]:
        """uvicorn's options for these settings. `X-Forwarded-For` is believed only from
        the proxies named in `forwarded_allow_ips`: otherwise any client could claim any
        address (and so escape the per-address sign-in limits and rate limit, and write
        a false address into the audit trail). uvicorn's own default trusts 127.0.0.1."""
        trusted = (self.forwarded_allow_ips or "").strip()
        return {
            "host": self.host,
            "port": self.port,
            "proxy_headers": bool(trusted),
            "forwarded_allow_ips": trusted or None,
            "server_header": False,
            "access_log": self.access_log,
            "log_level": "info",
        }

    def resolved_threads(self) -> int:
        """Requests doing database work at once in one process. SQLite runs in the
        process, under its one write lock: beyond two threads they only contend for the
        interpreter and the lock (measured with bench/clinic_day.py: 149 req/s at 20
        clients with 2 threads, 107 with 11). PostgreSQL: four, fewer than the pool
        allows (one connection is always left for the background writer). A thread
        waiting on PostgreSQL costs nothing, but a process runs Python on one core at a
        time: with a thread per connection, a dozen requests shared the interpreter and
        each took longer; with four, the rest wait their turn in the event loop's queue.
        Measured with bench/clinic_day.py --db postgresql on 2 cores: p95 at 20 clients
        161-211 ms with 2-4 threads against 231-278 ms with 11, at 100 clients 787-955
        against 1,055-1,157 ms, throughput the same or higher."""
        if self.threads:
            return self.threads
        if self.resolved_database_url().startswith("sqlite"):
            return 2
        return max(1, min(POSTGRESQL_THREADS, self.limits().connections - 1))

    def resolved_workers(self) -> int:
        """How many serving processes: as configured, else one per core, on either
        database. SQLite too: its writers queue on one file lock (safe across processes,
        `tests/integration/test_workers.py`), but most requests read, and a process is
        bound to one core by the interpreter's lock. Measured with bench/clinic_day.py
        on 2 cores at 20 clients: 154 requests/s with one process, 306 with two."""
        if self.workers:
            return self.workers
        return os.cpu_count() or 1

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'needlepoint.db'}"

    def resolved_secret_key(self) -> str:
        """The configured key, or one kept in the data directory (made on first use)."""
        if self.secret_key:
            return self.secret_key
        return key_file(self.data_dir / "secret.key", lambda: secrets.token_urlsafe(48))

    def resolved_sealing_key_text(self) -> str:
        """The keys sealing secrets in the database, as configured (comma-separated), or
        the data directory's `sealing.key` (made on first use, readable by its owner
        only). Without them the TOTP secrets cannot be read: keep a copy."""
        return self.sealing_key or key_file(self.data_dir / "sealing.key", sealing.new_key_text)

    def resolved_sealing_keys(self) -> list[bytes]:
        text = self.resolved_sealing_key_text()
        return [sealing.parse_key(part) for part in text.split(",") if part.strip()]

    def resolved_backup_key(self) -> bytes:
        """The key encrypting backups: configured, or the data directory's `backup.key`
        (made on first use). Keep a copy away from the backups: without it they cannot
        be restored."""
        text = self.backup_key or key_file(self.data_dir / "backup.key", sealing.new_key_text)
        return sealing.parse_key(text)


def key_file(path: Path, make: Callable[[], str]) -> str:
    """The text of a key file, made with `make` on first use: created readable and
    writable by its owner only (0600, never wider even for an instant), in a directory
    made 0700."""
    if not path.exists():
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(make())
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()
