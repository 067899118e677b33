"""Digests of records for the audit trail: what a record looked like before and after."""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Any

import orjson

from needlepoint.domain.entities import Entity

_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _fields(kind: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(kind))
    return names


def canonical_json(records: list[Entity]) -> bytes:
    """A stable text form of records: same content, same text, on every machine."""
    # Shallow field access, not dataclasses.asdict: asdict deep-copies every value.
    payload = [
        {"type": type(r).__name__, **{n: getattr(r, n) for n in _fields(type(r))}} for r in records
    ]
    # orjson writes UUIDs, enums and ISO-8601 datetimes itself, identically everywhere.
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def digest(records: list[Entity]) -> str | None:
    """SHA-256 of the canonical form, or None when there is nothing (a creation's 'before')."""
    if not records:
        return None
    return hashlib.sha256(canonical_json(records)).hexdigest()
