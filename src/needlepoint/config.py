"""Settings, from the environment (prefix `NEEDLEPOINT_`) or explicit values."""

from __future__ import annotations

import secrets
from pathlib import Path

from platformdirs import user_data_dir
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where the embedded database and demo files live unless told otherwise."""
    return Path(user_data_dir("needlepoint", appauthor=False))


class Settings(BaseSettings):
    """Runtime settings. `database_url` picks SQLite (default) or PostgreSQL."""

    model_config = SettingsConfigDict(env_prefix="NEEDLEPOINT_")

    data_dir: Path = default_data_dir()
    database_url: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    secure_cookies: bool = False

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'needlepoint.db'}"

    def resolved_secret_key(self) -> str:
        """The configured key, or one kept in the data directory (made on first use)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
