"""PostgreSQL: the application role (as the web server logs in) cannot write audit rows
itself; it appends events only through `needlepoint_append_audit_events`, which computes
each event's place and hash in the chain, for the clinic its transaction is scoped to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest
import sqlalchemy as sa

from needlepoint.actions import patients
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine, scope_to_clinic
from needlepoint.adapters.db.unit_of_work import APPEND_AUDIT_SQL
from needlepoint.domain.entities import AuditEvent
from needlepoint.domain.enums import AuditAction
from needlepoint.queries.audit import verify_chains
from tests.conftest import ClinicFixture, make_clinic
from tests.factories import patient_cmd


@pytest.fixture
def web_role(postgres_engine: sa.Engine) -> Iterator[sa.Engine]:
    """A login role that is a member of needlepoint_app, as the web server's should be."""
    role = f"needlepoint_test_web_{uuid.uuid4().hex[:8]}"
    with postgres_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN IN ROLE needlepoint_app")
        conn.commit()
    engine = make_engine(postgres_engine.url.set(username=role))
    try:
        yield engine
    finally:
        engine.dispose()
        with postgres_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE {role}")
            conn.commit()


@pytest.fixture
def pg_clinic(postgres_engine: sa.Engine) -> ClinicFixture:
    clinic = make_clinic(postgres_engine)
    patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    return clinic


def an_event(clinic_id: UUID, entity_id: UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "clinic_id": str(clinic_id),
        "action": "record.viewed",
        "entity_type": "patient",
        "entity_id": str(entity_id),
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "api",
        "outcome": "success",
        "seq": 0,
        "prev_hash": "",
        "hash": "a" * 64,
        **overrides,
    }


def read_events(*clinics: UUID) -> list[AuditEvent]:
    """One `record.viewed` event, dated now, for each clinic named (in that order)."""
    now = datetime.now(UTC)
    return [
        AuditEvent(
            id=uuid.uuid4(),
            clinic_id=clinic,
            action=AuditAction.RECORD_VIEWED,
            entity_type="patient",
            entity_id=uuid.uuid4(),
            occurred_at=now,
            source="web",
        )
        for clinic in clinics
    ]


def append_raw(engine: sa.Engine, scope: UUID | None, events: str) -> None:
    with engine.begin() as conn:
        if scope is not None:
            scope_to_clinic(conn, scope)
        conn.exec_driver_sql(APPEND_AUDIT_SQL, {"events": events})


def append(engine: sa.Engine, scope: UUID | None, *events: dict[str, Any]) -> None:
    append_raw(engine, scope, orjson.dumps(list(events)).decode())


def run_scoped(engine: sa.Engine, scope: UUID, statement: sa.Executable) -> None:
    with engine.begin() as conn:
        scope_to_clinic(conn, scope)
        conn.execute(statement)


def test_the_web_role_cannot_insert_audit_rows_or_chain_heads_directly(
    web_role: sa.Engine, pg_clinic: ClinicFixture
) -> None:
    clinic_id = pg_clinic.owner.clinic_id
    with pg_clinic.engine.connect() as conn:
        row = dict(
            conn.execute(sa.select(t.audit_events).where(t.audit_events.c.clinic_id == clinic_id))
            .mappings()
            .first()  # type: ignore[arg-type]
        )
    head = sa.insert(t.audit_chain_heads).values(
        clinic_id=clinic_id, last_seq=1, last_hash="0" * 64
    )
    for statement in (
        sa.insert(t.audit_events).values({**row, "id": uuid.uuid4(), "seq": 10**6}),
        head,
        sa.update(t.audit_events).where(t.audit_events.c.id == row["id"]).values(source="x"),
        sa.delete(t.audit_events).where(t.audit_events.c.id == row["id"]),
    ):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            run_scoped(web_role, clinic_id, statement)
    with (
        web_role.begin() as conn,
        pytest.raises(sa.exc.DatabaseError, match=r"permission denied|append-only"),
    ):
        conn.exec_driver_sql("TRUNCATE audit_events CASCADE")


def test_the_function_computes_the_chain_whatever_the_caller_sends(
    web_role: sa.Engine, pg_clinic: ClinicFixture
) -> None:
    clinic_id = pg_clinic.owner.clinic_id
    with pg_clinic.engine.connect() as conn:
        before = verify_chains(conn, clinic_id).heads[clinic_id]
    forged = an_event(clinic_id, clinic_id, seq=before[0] + 50, prev_hash="b" * 64)
    append(web_role, clinic_id, forged)
    with pg_clinic.engine.connect() as conn:
        stored = conn.execute(
            sa.select(t.audit_events).where(t.audit_events.c.id == UUID(forged["id"]))
        ).one()
        report = verify_chains(conn, clinic_id)
    assert stored.seq == before[0] + 1  # not the 50 asked for
    assert stored.prev_hash == before[1]
    # The caller's content digest ("a" * 64) does not fit the content: verify says so.
    assert [b.event_id for b in report.breaks] == [stored.id]
    assert "altered" in report.breaks[0].reason


def test_the_web_role_appends_only_to_the_clinic_its_transaction_is_scoped_to(
    web_role: sa.Engine, postgres_engine: sa.Engine, pg_clinic: ClinicFixture
) -> None:
    mine = pg_clinic.owner.clinic_id
    theirs = make_clinic(postgres_engine, "Theirs").owner.clinic_id
    with pytest.raises(sa.exc.DatabaseError, match="cannot be written"):
        append(web_role, mine, an_event(theirs, theirs))
    with pytest.raises(sa.exc.DatabaseError, match="cannot be written"):
        append(web_role, None, an_event(theirs, theirs))  # no clinic chosen: nothing
    with pytest.raises(sa.exc.DatabaseError, match="content digest"):
        append(web_role, mine, an_event(mine, mine, hash="not a digest"))
    with pytest.raises(sa.exc.DatabaseError, match="events of now"):
        append(web_role, mine, an_event(mine, mine, occurred_at="2020-01-01T00:00:00+00:00"))
    with pytest.raises(sa.exc.DatabaseError, match="events of now"):
        append(web_role, mine, an_event(mine, mine, occurred_at="2999-01-01T00:00:00+00:00"))
    append(web_role, mine)  # an empty array is fine, an object is not:
    with pytest.raises(sa.exc.DatabaseError, match="JSON array"):
        append_raw(web_role, mine, "{}")
    with postgres_engine.connect() as conn:
        assert verify_chains(conn, theirs).ok
        assert verify_chains(conn, mine).ok


def test_the_application_writes_a_verifying_chain_as_the_web_role(
    web_role: sa.Engine, pg_clinic: ClinicFixture
) -> None:
    from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork

    clinic_id = pg_clinic.owner.clinic_id
    for _ in range(3):
        patients.register_patient(SqlUnitOfWork(web_role), pg_clinic.as_clinician, patient_cmd())
    with pg_clinic.engine.connect() as conn:
        report = verify_chains(conn, clinic_id)
    assert report.ok, report.breaks
    assert report.heads[clinic_id][0] == report.events >= 7


def test_only_the_owner_and_the_application_role_may_run_the_function(
    postgres_engine: sa.Engine,
) -> None:
    with postgres_engine.connect() as conn:
        granted = set(
            conn.exec_driver_sql(
                "SELECT grantee FROM information_schema.routine_privileges "
                "WHERE routine_name = 'needlepoint_append_audit_events'"
            ).scalars()
        )
        definer = conn.exec_driver_sql(
            "SELECT prosecdef FROM pg_proc WHERE proname = 'needlepoint_append_audit_events'"
        ).scalar_one()
    assert "PUBLIC" not in granted
    assert "needlepoint_app" in granted
    assert definer is True


def test_read_events_of_several_clinics_queued_together_are_written_as_the_web_role(
    web_role: sa.Engine, postgres_engine: sa.Engine, pg_clinic: ClinicFixture
) -> None:
    """The background writer's batch mixes clinics; each clinic's events are appended in a
    transaction scoped to that clinic."""
    from needlepoint.web.deferred_writes import DeferredWrites

    mine = pg_clinic.owner.clinic_id
    theirs = make_clinic(postgres_engine, "Theirs").owner.clinic_id
    events = read_events(mine, theirs, mine)
    DeferredWrites(web_role).put(events)
    with postgres_engine.connect() as conn:
        stored = set(
            conn.execute(
                sa.select(t.audit_events.c.id).where(
                    t.audit_events.c.id.in_([e.id for e in events])
                )
            ).scalars()
        )
        assert verify_chains(conn, mine).ok
        assert verify_chains(conn, theirs).ok
    assert stored == {e.id for e in events}


def test_one_call_appends_the_events_of_several_clinics_each_to_its_own_chain(
    postgres_engine: sa.Engine, pg_clinic: ClinicFixture
) -> None:
    """The owner (trusted, no clinic scope) may append a batch mixing clinics: each
    clinic's events are linked in order from its own head, and both chains verify."""
    from dataclasses import replace

    from needlepoint.adapters.db.unit_of_work import prepare_inserts, write_prepared
    from needlepoint.domain.audit import content_digest

    mine = pg_clinic.owner.clinic_id
    theirs = make_clinic(postgres_engine, "Theirs").owner.clinic_id
    events = read_events(mine, theirs, theirs, mine, theirs, mine)
    with postgres_engine.connect() as conn:
        before = {c: verify_chains(conn, c).heads[c][0] for c in (mine, theirs)}
    with postgres_engine.begin() as conn:
        ready = [replace(e, hash=content_digest(e)) for e in events]
        write_prepared(conn, prepare_inserts(conn.dialect, list(ready)))
    with postgres_engine.connect() as conn:
        for clinic in (mine, theirs):
            report = verify_chains(conn, clinic)
            assert report.ok, report.breaks
            assert report.heads[clinic][0] == before[clinic] + 3
