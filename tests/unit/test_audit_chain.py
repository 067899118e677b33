"""The audit chain's hash: every field counts, and only the meaning of a value does."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.audit import CHAIN_FIELDS, GENESIS, content_digest, link_hash, row_hash
from needlepoint.domain.entities import AuditEvent
from needlepoint.domain.enums import AuditAction, AuditOutcome


def an_event(**overrides: object) -> AuditEvent:
    data: dict[str, object] = {
        "id": uuid4(),
        "clinic_id": uuid4(),
        "action": AuditAction.SESSION_SIGNED,
        "entity_type": "session",
        "entity_id": uuid4(),
        "occurred_at": datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "source": "api",
        "actor_user_id": uuid4(),
        "patient_id": uuid4(),
        "request_id": "r1",
        "source_address": "10.0.0.7",
    }
    return AuditEvent(**{**data, **overrides})  # type: ignore[arg-type]


def test_changing_any_field_of_an_event_changes_its_digest() -> None:
    event = an_event()
    changed = {
        "id": uuid4(),
        "clinic_id": uuid4(),
        "action": AuditAction.SESSION_AMENDED,
        "entity_type": "patient",
        "entity_id": uuid4(),
        "occurred_at": event.occurred_at + timedelta(microseconds=1),
        "source": "web",
        "actor_user_id": None,
        "patient_id": None,
        "before_digest": "a" * 64,
        "after_digest": "b" * 64,
        "request_id": None,
        "outcome": AuditOutcome.DENIED,
        "source_address": None,
    }
    assert set(changed) == {f.name for f in fields(AuditEvent)} - CHAIN_FIELDS
    for name, value in changed.items():
        assert content_digest(replace(event, **{name: value})) != content_digest(event), name


def test_the_same_moment_in_another_time_zone_hashes_the_same() -> None:
    event = an_event()
    elsewhere = event.occurred_at.astimezone(timezone(timedelta(hours=-5)))
    assert content_digest(replace(event, occurred_at=elsewhere)) == content_digest(event)


@given(seq=st.integers(min_value=1, max_value=10**12))
def test_a_stored_row_carries_the_hash_of_its_content_and_link(seq: int) -> None:
    event = an_event()
    chained = link_hash(GENESIS, seq, content_digest(event))
    row = {f.name: getattr(event, f.name) for f in fields(AuditEvent)}
    row.update(seq=seq, prev_hash=GENESIS, hash=chained)
    assert row_hash(row) == chained
    assert row_hash({**row, "seq": seq + 1}) != chained
    assert row_hash({**row, "prev_hash": "1" * 64}) != chained


def test_the_audit_csv_cannot_smuggle_a_spreadsheet_formula() -> None:
    from needlepoint.queries.audit import audit_csv

    text = audit_csv([an_event(request_id="=HYPERLINK(1)", source_address="@evil")])
    assert "'=HYPERLINK(1)" in text
    assert "'@evil" in text
