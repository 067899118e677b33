"""The audit trail is tamper-evident: every clinic's events form one SHA-256 chain that
`needlepoint audit verify` recomputes; the database refuses edits and deletions; refused
attempts and reads of health information are on the trail too."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from needlepoint.actions import patients
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.cli import app
from needlepoint.domain.audit import GENESIS
from needlepoint.domain.enums import AuditAction, AuditOutcome
from needlepoint.domain.errors import PermissionDenied
from needlepoint.queries.audit import verify_chains
from needlepoint.synthetic.clinic import generate_clinic
from tests.conftest import Api, ClinicFixture, make_clinic
from tests.factories import patient_cmd

runner = CliRunner()


@contextmanager
def tampering(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that can change audit rows, as an attacker with the database owner's
    (or a superuser's) rights could: the append-only triggers are switched off."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('audit_events', 'audit_chain_heads')"
            ).all()
            for name, _ in triggers:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
            yield conn
            for _, sql in triggers:
                conn.exec_driver_sql(sql)
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            yield conn


def chain_of(engine: sa.Engine, clinic_id: UUID) -> list[sa.Row[tuple[int, UUID, str, str]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    t.audit_events.c.seq,
                    t.audit_events.c.id,
                    t.audit_events.c.prev_hash,
                    t.audit_events.c.hash,
                )
                .where(t.audit_events.c.clinic_id == clinic_id)
                .order_by(t.audit_events.c.seq)
            )
        )


def verify(engine: sa.Engine, clinic_id: UUID):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return verify_chains(conn, clinic_id)


def with_patients(clinic: ClinicFixture, n: int = 3) -> UUID:
    for _ in range(n):
        patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    return clinic.owner.clinic_id


def test_every_action_extends_its_clinics_chain_and_the_chain_verifies(
    clinic: ClinicFixture,
) -> None:
    clinic_id = with_patients(clinic)
    chain = chain_of(clinic.engine, clinic_id)
    assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    report = verify(clinic.engine, clinic_id)
    assert report.ok, report.breaks
    assert report.events == len(chain) >= 6
    assert report.heads[clinic_id] == (chain[-1].seq, chain[-1].hash)


def test_editing_an_audit_row_breaks_the_chain_at_that_event(clinic: ClinicFixture) -> None:
    clinic_id = with_patients(clinic)
    victim = chain_of(clinic.engine, clinic_id)[3]
    with tampering(clinic.engine) as conn:
        conn.execute(
            sa.update(t.audit_events)
            .where(t.audit_events.c.id == victim.id)
            .values(actor_user_id=clinic.owner.id)
        )
    report = verify(clinic.engine, clinic_id)
    assert not report.ok
    assert report.breaks[0].event_id == victim.id
    assert "altered" in report.breaks[0].reason


def test_rehashing_an_edited_event_breaks_the_chain_at_the_next_one(
    clinic: ClinicFixture,
) -> None:
    clinic_id = with_patients(clinic)
    chain = chain_of(clinic.engine, clinic_id)
    with tampering(clinic.engine) as conn:  # a careful forger also fixes the event's hash
        conn.execute(
            sa.update(t.audit_events)
            .where(t.audit_events.c.id == chain[2].id)
            .values(hash="f" * 64)
        )
    breaks = verify(clinic.engine, clinic_id).breaks
    assert breaks[0].event_id == chain[2].id  # its own hash no longer fits its content


def test_deleting_an_audit_row_is_detected_at_the_gap(clinic: ClinicFixture) -> None:
    clinic_id = with_patients(clinic)
    chain = chain_of(clinic.engine, clinic_id)
    with tampering(clinic.engine) as conn:
        conn.execute(sa.delete(t.audit_events).where(t.audit_events.c.id == chain[2].id))
    breaks = verify(clinic.engine, clinic_id).breaks
    assert breaks[0].event_id == chain[3].id
    assert "missing" in breaks[0].reason


def test_deleting_the_newest_events_is_detected_by_the_chain_head(
    clinic: ClinicFixture,
) -> None:
    clinic_id = with_patients(clinic)
    chain = chain_of(clinic.engine, clinic_id)
    with tampering(clinic.engine) as conn:
        conn.execute(sa.delete(t.audit_events).where(t.audit_events.c.id == chain[-1].id))
    breaks = verify(clinic.engine, clinic_id).breaks
    assert breaks
    assert breaks[0].seq == chain[-1].seq
    assert "head" in breaks[0].reason


def test_an_inserted_event_is_detected(clinic: ClinicFixture) -> None:
    clinic_id = with_patients(clinic)
    chain = chain_of(clinic.engine, clinic_id)
    with tampering(clinic.engine) as conn:
        row = conn.execute(
            sa.select(t.audit_events).where(t.audit_events.c.id == chain[1].id)
        ).one()
        # Make room after event 2 and slip a copy in, pointing at event 2.
        for r in reversed(chain[2:]):
            conn.execute(
                sa.update(t.audit_events).where(t.audit_events.c.id == r.id).values(seq=r.seq + 1)
            )
        forged = {**row._mapping, "id": uuid4(), "seq": 3, "prev_hash": chain[1].hash}
        conn.execute(sa.insert(t.audit_events).values(forged))
    breaks = verify(clinic.engine, clinic_id).breaks
    assert breaks[0].seq == 3


def test_the_application_cannot_update_or_delete_audit_events(clinic: ClinicFixture) -> None:
    clinic_id = with_patients(clinic, 1)
    first = chain_of(clinic.engine, clinic_id)[0]
    for statement in (
        sa.update(t.audit_events).where(t.audit_events.c.id == first.id).values(source="x"),
        sa.delete(t.audit_events).where(t.audit_events.c.id == first.id),
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            clinic.engine.begin() as conn,
        ):
            conn.execute(statement)
    if clinic.engine.dialect.name == "postgresql":
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            clinic.engine.begin() as conn,
        ):
            conn.exec_driver_sql("TRUNCATE audit_events CASCADE")
    heads = t.audit_chain_heads
    mine = heads.c.clinic_id == clinic_id
    for head_change in (
        sa.update(heads).where(mine).values(last_seq=1),
        sa.update(heads).where(mine).values(last_seq=heads.c.last_seq + 1),
        sa.delete(heads).where(mine),
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="move only with the chain"),
            clinic.engine.begin() as conn,
        ):
            conn.execute(head_change)
    assert verify(clinic.engine, clinic_id).ok


def first_event_row(engine: sa.Engine, clinic_id: UUID) -> dict[str, object]:
    """The clinic's first audit event as a row, to copy into forged inserts."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(t.audit_events).where(t.audit_events.c.clinic_id == clinic_id)
        ).first()
    assert found is not None
    return dict(found._mapping)


def test_an_event_that_does_not_extend_the_chain_is_refused(clinic: ClinicFixture) -> None:
    clinic_id = with_patients(clinic, 1)
    row = first_event_row(clinic.engine, clinic_id)
    with pytest.raises(sa.exc.DatabaseError, match="chain"), clinic.engine.begin() as conn:
        conn.execute(sa.insert(t.audit_events).values({**row, "id": uuid4(), "seq": 99}))


def test_one_statement_extends_the_chain_by_several_events_or_not_at_all(
    clinic: ClinicFixture,
) -> None:
    """A multi-row INSERT is checked as a whole (PostgreSQL: once per statement, over the
    rows it added; SQLite: row by row): rows that continue the chain move the head to the
    last of them; one row that does not refuses them all and the head stays put."""
    clinic_id = with_patients(clinic, 1)
    row = first_event_row(clinic.engine, clinic_id)
    with clinic.engine.connect() as conn:
        seq, last = verify_chains(conn, clinic_id).heads[clinic_id]
    first = {**row, "id": uuid4(), "seq": seq + 1, "prev_hash": last, "hash": "a" * 64}
    second = {**row, "id": uuid4(), "seq": seq + 2, "prev_hash": "a" * 64, "hash": "b" * 64}
    astray = {**second, "id": uuid4(), "prev_hash": "c" * 64}
    with pytest.raises(sa.exc.DatabaseError, match="chain"), clinic.engine.begin() as conn:
        conn.execute(sa.insert(t.audit_events).values([first, astray]))
    with clinic.engine.connect() as conn:
        assert verify_chains(conn, clinic_id).heads[clinic_id] == (seq, last)
    with clinic.engine.begin() as conn:
        conn.execute(sa.insert(t.audit_events).values([first, second]))
    heads = t.audit_chain_heads
    with clinic.engine.connect() as conn:
        head = conn.execute(
            sa.select(heads.c.last_seq, heads.c.last_hash).where(heads.c.clinic_id == clinic_id)
        ).one()
    assert tuple(head) == (seq + 2, "b" * 64)


def test_two_writers_of_one_clinic_do_not_fork_the_chain(clinic: ClinicFixture) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(8):
                patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    report = verify(clinic.engine, clinic.owner.clinic_id)
    assert report.ok, report.breaks
    assert report.heads[clinic.owner.clinic_id][0] == len(
        chain_of(clinic.engine, clinic.owner.clinic_id)
    )


def test_a_refused_action_is_on_the_trail_as_denied(clinic: ClinicFixture) -> None:
    from tests.factories import episode_cmd

    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    from needlepoint.actions import episodes

    with pytest.raises(PermissionDenied):
        episodes.open_episode(clinic.uow(), clinic.as_assistant, episode_cmd(patient.id))
    with clinic.engine.connect() as conn:
        last = conn.execute(
            sa.select(t.audit_events)
            .where(t.audit_events.c.clinic_id == clinic.owner.clinic_id)
            .order_by(t.audit_events.c.seq.desc())
        ).first()
    assert last is not None
    assert last.action == AuditAction.ACCESS_DENIED
    assert last.outcome == AuditOutcome.DENIED
    assert last.actor_user_id == clinic.assistant.id
    assert last.entity_type == "open_episode"
    assert verify(clinic.engine, clinic.owner.clinic_id).ok


def test_the_generator_writes_a_valid_chain_from_its_worker_processes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gen.db'}")
    upgrade(engine)
    report = generate_clinic(engine, patients_count=40, seed=3, chunk_size=8, workers=2)
    with engine.connect() as conn:
        checked = verify_chains(conn, report.clinic_id)
    assert checked.ok, checked.breaks
    assert checked.events >= report.actions


def test_the_generator_writes_a_valid_chain_on_postgresql(postgres_engine: sa.Engine) -> None:
    report = generate_clinic(postgres_engine, patients_count=30, seed=5, chunk_size=6, workers=2)
    with postgres_engine.connect() as conn:
        checked = verify_chains(conn, report.clinic_id)
    assert checked.ok, checked.breaks


def test_audit_verify_says_ok_then_names_the_first_bad_event(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    clinic = make_clinic(engine)
    other = make_clinic(engine, "Other")
    with_patients(clinic)
    ok = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    assert "2 chains" in ok.output
    victim = chain_of(engine, clinic.owner.clinic_id)[4]
    with tampering(engine) as conn:
        conn.execute(
            sa.update(t.audit_events)
            .where(t.audit_events.c.id == victim.id)
            .values(occurred_at=sa.func.datetime("now"))
        )
    bad = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert bad.exit_code == 1, bad.output
    assert str(victim.id) in bad.output
    only_other = runner.invoke(
        app, ["audit", "verify", "--db", str(db), "--clinic", str(other.owner.clinic_id)]
    )
    assert only_other.exit_code == 0, only_other.output
    _ = SqlUnitOfWork  # the CLI and the app share the same engine rules


def test_upgrading_chains_the_events_written_before_the_chain_existed(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    clinic_id, start = uuid4(), datetime(2025, 1, 1, tzinfo=UTC)
    old_events = sa.table(
        "audit_events",
        *(sa.column(c.name, c.type) for c in t.audit_events.c if c.name in _V1_COLUMNS),
    )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(t.clinics).values(id=clinic_id, name="Old", created_at=start, version=1)
        )
        conn.execute(
            sa.insert(old_events),
            [
                {
                    "id": uuid4(),
                    "clinic_id": clinic_id,
                    "action": "clinic.registered",
                    "entity_type": "clinic",
                    "entity_id": clinic_id,
                    "occurred_at": start + timedelta(minutes=i),
                    "source": "cli",
                }
                for i in range(5)
            ],
        )
    upgrade(engine)
    with engine.connect() as conn:
        report = verify_chains(conn)
    assert report.ok, report.breaks
    assert report.events == 5
    assert report.heads[clinic_id][0] == 5


_V1_COLUMNS = {
    "id",
    "clinic_id",
    "action",
    "entity_type",
    "entity_id",
    "occurred_at",
    "source",
    "actor_user_id",
    "patient_id",
    "before_digest",
    "after_digest",
    "request_id",
}


def test_the_security_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    from alembic import command

    from needlepoint.adapters.db.migrate import alembic_config, current_revision, head_revision

    engine = make_engine(f"sqlite:///{tmp_path / 'dg.db'}")
    upgrade(engine)
    with_patients(make_clinic(engine), 2)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "-1")
    assert current_revision(engine) != head_revision()
    upgrade(engine)  # the events are chained again, in the order they happened
    with engine.connect() as conn:
        report = verify_chains(conn)
    assert report.ok, report.breaks
    assert report.events >= 5


def test_an_export_filtered_by_an_unknown_patient_is_a_disclosure_naming_nobody(
    api: Api,
) -> None:
    """Found by the fuzzer: the disclosure event named a patient that does not exist."""
    r = api.client.get(
        "/api/v1/audit",
        params={"format": "csv", "patient_id": str(uuid4())},
        headers=api.headers("owner"),
    )
    assert r.status_code == 200
    assert r.text.splitlines()[1:] == []
