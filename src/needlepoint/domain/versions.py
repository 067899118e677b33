"""Optimistic concurrency: an update names the version it was based on."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from needlepoint.domain.errors import StaleVersion


class Versioned(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def version(self) -> int: ...


def check_version(record: Versioned, expected: int) -> None:
    """Refuse an update based on another version than the record's current one."""
    if record.version != expected:
        raise StaleVersion(
            f"{type(record).__name__.lower()} {record.id} is at version {record.version}, "
            f"not {expected}: someone changed it since you read it; reload and try again",
            field="version",
        )
