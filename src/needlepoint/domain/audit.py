"""Digests of records for the audit trail: what a record looked like before and after,
and the hash chain that makes the trail tamper-evident."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson

from needlepoint.domain.entities import AuditEvent, Entity

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


def signed_note(session: Entity, children: Iterable[Entity]) -> list[Entity]:
    """What a signature covers, in a fixed order: the note, then everything recorded in it
    (needling sites, co-interventions, adverse events, measurements) by kind and id. The
    signing event's `after_digest` is the digest of this list, so that `audit verify` can
    recompute it from the rows and see a signed note changed in the database."""
    return [session, *sorted(children, key=lambda r: (type(r).__name__, str(r.id)))]


# -- the audit trail's hash chain ----------------------------------------------------------
#
# Each clinic's audit events form one chain, numbered 1, 2, 3 … by `seq`. An event's hash
# covers its own content and the previous event's hash, so changing, inserting or deleting
# any event breaks every link after it. The hash is computed in two steps so that the
# expensive part (the canonical form of the content) can be done where the event is made,
# even in a worker process, and only the cheap link in the order events are written:
#
#     content = SHA-256(canonical JSON of every field except seq, prev_hash and hash)
#     hash    = SHA-256("{prev_hash}:{seq}:{content}")
#
# The first event of a clinic links to GENESIS.

GENESIS = "0" * 64
"""The `prev_hash` of a clinic's first audit event."""

CHAIN_FIELDS = frozenset({"seq", "prev_hash", "hash"})


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def event_content(values: Mapping[Any, Any]) -> bytes:
    """The canonical form of an audit event's content (every field but the chain's).

    orjson writes UUIDs, enum values and RFC 3339 times itself; times are first brought
    to UTC, so that a database round trip (which may change the zone, not the moment)
    keeps the digest."""
    return orjson.dumps(
        {
            str(k): v.astimezone(UTC) if isinstance(v, datetime) else v
            for k, v in values.items()
            if k not in CHAIN_FIELDS
        },
        option=_CANONICAL,
    )


def content_digest(event: AuditEvent) -> str:
    """SHA-256 of the event's canonical content."""
    return hashlib.sha256(
        event_content({n: getattr(event, n) for n in _content_fields()})
    ).hexdigest()


def _content_fields() -> tuple[str, ...]:
    return tuple(n for n in _fields(AuditEvent) if n not in CHAIN_FIELDS)


def link_hash(prev_hash: str, seq: int, content: str) -> str:
    """The chain hash of the event numbered `seq` with content digest `content`."""
    return hashlib.sha256(f"{prev_hash}:{seq}:{content}".encode()).hexdigest()


def row_hash(values: Mapping[Any, Any]) -> str:
    """The chain hash an event stored with these column values must carry."""
    content = hashlib.sha256(event_content(values)).hexdigest()
    return link_hash(values["prev_hash"], values["seq"], content)
