"""The database tamper suite: every way below of altering the database (as someone with
the owner's or a superuser's rights, triggers switched off) or the checkpoint log must be
caught by `audit verify` with the signed checkpoint log — on SQLite and PostgreSQL.

Each case starts from the same story: a clinic registers patients, a note with needling
sites, a co-intervention and measurements is signed and amended, a checkpoint is signed
after each part, and the clinic keeps working afterwards (events not yet anchored)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from needlepoint.actions import episodes, patients, sessions
from needlepoint.adapters.checkpoints import (
    CheckpointError,
    append_checkpoint,
    generate_key,
    latest_checkpoint,
    load_private_key,
    load_public_key,
)
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.domain.audit import row_hash
from needlepoint.domain.commands import AmendSession, SignSession
from needlepoint.domain.entities import Session
from needlepoint.queries.audit import ChainReport, verify_chains
from tests.conftest import PG_ADMIN_URL, _pg_admin, make_clinic
from tests.factories import episode_cmd, patient_cmd, session_cmd
from tests.integration.test_audit_trail import tampering

# -- the databases: fresh ones for this module (tampering leaves broken chains behind) ---------


@pytest.fixture(scope="module")
def tamper_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('tamper') / 'tamper.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def tamper_postgresql() -> Iterator[sa.Engine]:
    admin = _pg_admin()
    if admin is None:
        pytest.skip("PostgreSQL not reachable")
    name = f"needlepoint_tamper_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(sa.engine.make_url(PG_ADMIN_URL).set(database=name))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def operator_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    private, _ = generate_key(tmp_path_factory.mktemp("keys") / "audit-checkpoint.key")
    return private


@dataclass
class Scene:
    engine: sa.Engine
    clinic_id: UUID
    note_id: UUID
    amendment_id: UUID
    log: Path
    key: Ed25519PrivateKey
    public: Ed25519PublicKey

    def checkpoint(self) -> None:
        with self.engine.connect() as conn:
            report = verify_chains(conn, self.clinic_id)
        assert report.ok, (report.breaks, report.records)
        append_checkpoint(self.log, self.key, report.heads, events=report.events)

    def verify(self) -> ChainReport:
        anchor = latest_checkpoint(self.log, self.public)
        with self.engine.connect() as conn:
            return verify_chains(conn, self.clinic_id, checkpoint=anchor)

    def chain(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    sa.select(t.audit_events)
                    .where(t.audit_events.c.clinic_id == self.clinic_id)
                    .order_by(t.audit_events.c.seq)
                ).mappings()
            ]

    def anchored_seq(self) -> int:
        anchor = latest_checkpoint(self.log, self.public)
        assert anchor is not None
        return anchor.chains[self.clinic_id][0]


@pytest.fixture(params=["sqlite", "postgresql"])
def scene(request: pytest.FixtureRequest, operator_key: Path, tmp_path: Path) -> Scene:
    engine: sa.Engine = request.getfixturevalue(f"tamper_{request.param}")
    clinic = make_clinic(engine)
    key = load_private_key(operator_key)
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    clinic.prepare_needling(patient.id)
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    note = sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    s = Scene(
        engine,
        clinic.owner.clinic_id,
        note.id,
        note.id,
        tmp_path / "np.ckpt",
        key,
        key.public_key(),
    )
    s.checkpoint()
    sessions.sign_session(
        clinic.uow(), clinic.as_clinician, SignSession(session_id=note.id, expected_version=1)
    )
    amendment = sessions.amend_session(
        clinic.uow(),
        clinic.as_clinician,
        AmendSession(session_id=note.id, reason="Wrong side", text="Levator was right."),
    )
    s.amendment_id = amendment.id
    s.checkpoint()
    for _ in range(2):  # the clinic keeps working: events after the newest checkpoint
        patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    report = s.verify()
    assert report.ok, (report.breaks, report.records)
    assert report.notes_checked == 1
    assert report.unanchored_events == 2
    return s


# -- the attacker's tools ----------------------------------------------------------------------


def rechain(conn: sa.Connection, clinic_id: UUID) -> None:
    """Recompute the clinic's whole chain from its first event, renumbered in order, and
    move its head: the chain verifies on its own again."""
    ae = t.audit_events
    rows = [
        dict(r)
        for r in conn.execute(
            sa.select(ae).where(ae.c.clinic_id == clinic_id).order_by(ae.c.seq)
        ).mappings()
    ]
    conn.execute(sa.update(ae).where(ae.c.clinic_id == clinic_id).values(seq=-ae.c.seq))
    prev = "0" * 64
    for seq, row in enumerate(rows, start=1):
        values = {**row, "seq": seq, "prev_hash": prev}
        values["hash"] = prev = row_hash(values)
        conn.execute(
            sa.update(ae)
            .where(ae.c.id == row["id"])
            .values(seq=seq, prev_hash=values["prev_hash"], hash=prev)
        )
    heads = t.audit_chain_heads
    conn.execute(sa.delete(heads).where(heads.c.clinic_id == clinic_id))
    if rows:
        conn.execute(
            sa.insert(heads).values(clinic_id=clinic_id, last_seq=len(rows), last_hash=prev)
        )


def event_where(s: Scene, seq: int) -> Any:
    ae = t.audit_events
    return sa.and_(ae.c.clinic_id == s.clinic_id, ae.c.seq == seq)


def set_event(s: Scene, seq: int, **values: Any) -> Callable[[sa.Connection], None]:
    def change(conn: sa.Connection) -> None:
        conn.execute(sa.update(t.audit_events).where(event_where(s, seq)).values(**values))

    return change


def delete_events(conn: sa.Connection, s: Scene, from_seq: int, to_seq: int) -> None:
    ae = t.audit_events
    conn.execute(
        sa.delete(ae).where(ae.c.clinic_id == s.clinic_id, ae.c.seq.between(from_seq, to_seq))
    )


def move_head(conn: sa.Connection, s: Scene) -> None:
    """Point the head at the newest remaining event, as a careful attacker would."""
    ae, heads = t.audit_events, t.audit_chain_heads
    last = conn.execute(
        sa.select(ae.c.seq, ae.c.hash)
        .where(ae.c.clinic_id == s.clinic_id)
        .order_by(ae.c.seq.desc())
        .limit(1)
    ).first()
    conn.execute(sa.delete(heads).where(heads.c.clinic_id == s.clinic_id))
    if last is not None:
        conn.execute(
            sa.insert(heads).values(clinic_id=s.clinic_id, last_seq=last[0], last_hash=last[1])
        )


def note_child(s: Scene, table: sa.Table) -> sa.ColumnElement[bool]:
    return table.c.session_id == s.note_id


# -- the tampers: each alters the database (or the log); every one must be detected ------------


def edit_event(s: Scene, conn: sa.Connection) -> None:
    set_event(s, 3, source="cli")(conn)


def edit_event_and_rechain(s: Scene, conn: sa.Connection) -> None:
    set_event(s, 3, source="cli")(conn)
    rechain(conn, s.clinic_id)


def backdate_event_and_rechain(s: Scene, conn: sa.Connection) -> None:
    ev = s.chain()[4]
    set_event(s, 5, occurred_at=ev["occurred_at"].replace(year=2020))(conn)
    rechain(conn, s.clinic_id)


def blame_another_user_and_rechain(s: Scene, conn: sa.Connection) -> None:
    owner = s.chain()[0]["actor_user_id"]
    set_event(s, s.anchored_seq() - 1, actor_user_id=owner)(conn)
    rechain(conn, s.clinic_id)


def delete_a_middle_event(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, 4, 4)


def delete_a_middle_event_and_rechain(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, 4, 4)
    rechain(conn, s.clinic_id)


def delete_two_events_and_rechain(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, 2, 3)
    rechain(conn, s.clinic_id)


def truncate_the_tail(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, s.anchored_seq() - 2, 10**6)


def truncate_the_tail_and_move_the_head(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, s.anchored_seq() - 2, 10**6)
    move_head(conn, s)


def truncate_to_the_checkpoint_less_one(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, s.anchored_seq(), 10**6)
    move_head(conn, s)


def delete_the_clinics_whole_chain(s: Scene, conn: sa.Connection) -> None:
    delete_events(conn, s, 1, 10**6)
    move_head(conn, s)


def move_the_chain_to_another_clinic(s: Scene, conn: sa.Connection) -> None:
    other = conn.execute(
        sa.select(t.clinics.c.id).where(t.clinics.c.id != s.clinic_id).limit(1)
    ).scalar_one_or_none()
    if other is None:  # pragma: no cover - the module's databases hold earlier clinics
        other = s.clinic_id
    conn.execute(
        sa.update(t.audit_events)
        .where(t.audit_events.c.clinic_id == s.clinic_id, t.audit_events.c.seq > 5)
        .values(clinic_id=other, seq=t.audit_events.c.seq + 10**7)
    )
    move_head(conn, s)


def insert_a_fabricated_event_and_rechain(s: Scene, conn: sa.Connection) -> None:
    ae = t.audit_events
    forged = {**s.chain()[2], "id": uuid.uuid4(), "source": "api"}
    conn.execute(
        sa.update(ae)
        .where(ae.c.clinic_id == s.clinic_id, ae.c.seq >= 3)
        .values(seq=ae.c.seq + 10**6)
    )
    conn.execute(sa.insert(ae).values(forged))  # at seq 3, before the shifted rest
    rechain(conn, s.clinic_id)


def replace_an_anchored_event_by_a_fabricated_one(s: Scene, conn: sa.Connection) -> None:
    seq = s.anchored_seq()
    original = s.chain()[seq - 1]
    delete_events(conn, s, seq, seq)
    conn.execute(
        sa.insert(t.audit_events).values(
            {**original, "id": uuid.uuid4(), "entity_type": "patient", "action": "record.viewed"}
        )
    )
    rechain(conn, s.clinic_id)


def swap_two_events_and_rechain(s: Scene, conn: sa.Connection) -> None:
    a, b = s.chain()[2], s.chain()[3]
    conn.execute(sa.update(t.audit_events).where(t.audit_events.c.id == a["id"]).values(seq=-1))
    conn.execute(
        sa.update(t.audit_events).where(t.audit_events.c.id == b["id"]).values(seq=a["seq"])
    )
    conn.execute(
        sa.update(t.audit_events).where(t.audit_events.c.id == a["id"]).values(seq=b["seq"])
    )
    rechain(conn, s.clinic_id)


def move_the_head_back(s: Scene, conn: sa.Connection) -> None:
    ev = s.chain()[5]
    conn.execute(
        sa.update(t.audit_chain_heads)
        .where(t.audit_chain_heads.c.clinic_id == s.clinic_id)
        .values(last_seq=ev["seq"], last_hash=ev["hash"])
    )


def rewrite_the_signed_notes_text(s: Scene, conn: sa.Connection) -> None:
    conn.execute(
        sa.update(t.sessions).where(t.sessions.c.id == s.note_id).values(subjective="No pain.")
    )


def change_who_signed_the_note(s: Scene, conn: sa.Connection) -> None:
    owner = s.chain()[0]["actor_user_id"]
    conn.execute(sa.update(t.sessions).where(t.sessions.c.id == s.note_id).values(signed_by=owner))


def change_a_needling_sites_depth(s: Scene, conn: sa.Connection) -> None:
    site = conn.execute(
        sa.select(t.needling_sites.c.id).where(note_child(s, t.needling_sites)).limit(1)
    ).scalar_one()
    conn.execute(
        sa.update(t.needling_sites).where(t.needling_sites.c.id == site).values(depth_mm=29)
    )


def delete_a_needling_site(s: Scene, conn: sa.Connection) -> None:
    site = conn.execute(
        sa.select(t.needling_sites.c.id).where(note_child(s, t.needling_sites)).limit(1)
    ).scalar_one()
    conn.execute(sa.delete(t.needling_sites).where(t.needling_sites.c.id == site))


def add_a_needling_site(s: Scene, conn: sa.Connection) -> None:
    row = dict(
        conn.execute(sa.select(t.needling_sites).where(note_child(s, t.needling_sites)).limit(1))
        .mappings()
        .one()
    )
    conn.execute(sa.insert(t.needling_sites).values({**row, "id": uuid.uuid4(), "position": 99}))


def change_a_measurement_in_the_note(s: Scene, conn: sa.Connection) -> None:
    conn.execute(
        sa.update(t.measurements)
        .where(note_child(s, t.measurements))
        .values(score=1, answers={"item1": 1})
    )


def delete_the_notes_co_intervention(s: Scene, conn: sa.Connection) -> None:
    conn.execute(sa.delete(t.co_interventions).where(note_child(s, t.co_interventions)))


def turn_the_signed_note_back_into_a_draft(s: Scene, conn: sa.Connection) -> None:
    conn.execute(
        sa.update(t.sessions)
        .where(t.sessions.c.id == s.note_id)
        .values(status="draft", signed_at=None, signed_by=None)
    )


def delete_the_signed_note(s: Scene, conn: sa.Connection) -> None:
    for table in (t.needling_sites, t.co_interventions, t.measurements, t.amendments):
        conn.execute(sa.delete(table).where(table.c.session_id == s.note_id))
    conn.execute(sa.delete(t.adverse_events).where(t.adverse_events.c.session_id == s.note_id))
    conn.execute(sa.delete(t.sessions).where(t.sessions.c.id == s.note_id))


def rewrite_the_amendment(s: Scene, conn: sa.Connection) -> None:
    conn.execute(
        sa.update(t.amendments).where(t.amendments.c.id == s.amendment_id).values(text="Nothing.")
    )


def delete_the_amendment(s: Scene, conn: sa.Connection) -> None:
    conn.execute(sa.delete(t.amendments).where(t.amendments.c.id == s.amendment_id))


def rewrite_the_note_and_its_signing_digest_and_rechain(s: Scene, conn: sa.Connection) -> None:
    """The full forgery: change the note, record the matching digest on its signing event,
    recompute the chain. Only the checkpoint can tell."""
    from needlepoint.domain.audit import digest, signed_note
    from needlepoint.domain.entities import CoIntervention, Measurement, NeedlingSite

    conn.execute(
        sa.update(t.sessions).where(t.sessions.c.id == s.note_id).values(subjective="No pain.")
    )
    note = Session(
        **conn.execute(sa.select(t.sessions).where(t.sessions.c.id == s.note_id)).mappings().one()
    )
    kids: list[Any] = []
    for kind, table in (
        (NeedlingSite, t.needling_sites),
        (CoIntervention, t.co_interventions),
        (Measurement, t.measurements),
    ):
        kids += [
            kind(**r) for r in conn.execute(sa.select(table).where(note_child(s, table))).mappings()
        ]
    conn.execute(
        sa.update(t.audit_events)
        .where(t.audit_events.c.entity_id == s.note_id, t.audit_events.c.action == "session.signed")
        .values(after_digest=digest(signed_note(note, kids)))
    )
    rechain(conn, s.clinic_id)


TAMPERS: dict[str, Callable[[Scene, sa.Connection], None]] = {
    f.__name__: f
    for f in (
        edit_event,
        edit_event_and_rechain,
        backdate_event_and_rechain,
        blame_another_user_and_rechain,
        delete_a_middle_event,
        delete_a_middle_event_and_rechain,
        delete_two_events_and_rechain,
        truncate_the_tail,
        truncate_the_tail_and_move_the_head,
        truncate_to_the_checkpoint_less_one,
        delete_the_clinics_whole_chain,
        move_the_chain_to_another_clinic,
        insert_a_fabricated_event_and_rechain,
        replace_an_anchored_event_by_a_fabricated_one,
        swap_two_events_and_rechain,
        move_the_head_back,
        rewrite_the_signed_notes_text,
        change_who_signed_the_note,
        change_a_needling_sites_depth,
        delete_a_needling_site,
        add_a_needling_site,
        change_a_measurement_in_the_note,
        delete_the_notes_co_intervention,
        turn_the_signed_note_back_into_a_draft,
        delete_the_signed_note,
        rewrite_the_amendment,
        delete_the_amendment,
        rewrite_the_note_and_its_signing_digest_and_rechain,
    )
}


@pytest.mark.parametrize("how", list(TAMPERS))
def test_the_tamper_is_detected(scene: Scene, how: str) -> None:
    with tampering(scene.engine) as conn:
        TAMPERS[how](scene, conn)
    report = scene.verify()
    assert not report.ok, f"{how} went unnoticed"


# -- the checkpoint log itself -----------------------------------------------------------------


def _rewrite_line(log: Path, index: int, change: Callable[[dict[str, Any]], None]) -> None:
    import orjson

    lines = log.read_bytes().splitlines()
    payload = orjson.loads(lines[index])
    change(payload)
    lines[index] = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    log.write_bytes(b"\n".join(lines) + b"\n")


def _newest_seq_back(payload: dict[str, Any]) -> None:
    for head in payload["chains"].values():
        head["seq"] -= 1


def edit_the_newest_checkpoint(s: Scene, log: Path) -> None:
    _rewrite_line(log, -1, _newest_seq_back)


def remove_the_first_checkpoint(s: Scene, log: Path) -> None:
    log.write_bytes(b"\n".join(log.read_bytes().splitlines()[1:]) + b"\n")


def append_a_checkpoint_signed_with_another_key(s: Scene, log: Path) -> None:
    forged = log.with_suffix(".forged")
    append_checkpoint(forged, Ed25519PrivateKey.generate(), {s.clinic_id: (1, "0" * 64)}, events=1)
    log.write_bytes(log.read_bytes() + forged.read_bytes())


def replace_the_log_with_one_signed_by_another_key(s: Scene, log: Path) -> None:
    log.unlink()
    append_checkpoint(log, Ed25519PrivateKey.generate(), {s.clinic_id: (1, "0" * 64)}, events=1)


LOG_TAMPERS: dict[str, Callable[[Scene, Path], None]] = {
    f.__name__: f
    for f in (
        edit_the_newest_checkpoint,
        remove_the_first_checkpoint,
        append_a_checkpoint_signed_with_another_key,
        replace_the_log_with_one_signed_by_another_key,
    )
}


@pytest.mark.parametrize("how", list(LOG_TAMPERS))
def test_a_tampered_checkpoint_log_is_refused(scene: Scene, how: str) -> None:
    LOG_TAMPERS[how](scene, scene.log)
    with pytest.raises(CheckpointError):
        scene.verify()


def test_the_suite_tries_at_least_twenty_ways() -> None:
    assert len(TAMPERS) + len(LOG_TAMPERS) >= 20


def test_a_rechained_database_verifies_on_its_own_but_not_against_the_checkpoint(
    scene: Scene,
) -> None:
    """Why the anchor is needed: a recomputed chain is consistent in itself."""
    anchored = scene.anchored_seq()
    with tampering(scene.engine) as conn:
        edit_event_and_rechain(scene, conn)
    with scene.engine.connect() as conn:
        alone = verify_chains(conn, scene.clinic_id)
    assert alone.ok, (alone.breaks, alone.records)
    report = scene.verify()
    assert [(b.seq, b.reason) for b in report.breaks] == [
        (
            anchored,
            f"event {anchored} is not the one the checkpoint of "
            f"{report.anchor.written_at:%Y-%m-%d %H:%M} UTC recorded: the chain was "  # type: ignore[union-attr]
            "rewritten (recomputed) up to here",
        )
    ]


def test_a_truncated_chain_names_the_truncation(scene: Scene) -> None:
    anchored = scene.anchored_seq()
    with tampering(scene.engine) as conn:
        truncate_the_tail_and_move_the_head(scene, conn)
    report = scene.verify()
    assert report.breaks[0].reason == (
        f"the chain ends at {anchored - 3} but the checkpoint of "
        f"{report.anchor.written_at:%Y-%m-%d %H:%M} UTC "  # type: ignore[union-attr]
        f"recorded {anchored} events (events at the end were deleted: truncated)"
    )


def test_a_deleted_chain_is_named_as_gone(scene: Scene) -> None:
    with tampering(scene.engine) as conn:
        delete_the_clinics_whole_chain(scene, conn)
    report = scene.verify()
    assert [b.reason for b in report.breaks][-1].startswith("the whole chain is gone")


def test_a_perfect_forgery_of_a_signed_note_is_seen_only_through_the_checkpoint(
    scene: Scene,
) -> None:
    with tampering(scene.engine) as conn:
        rewrite_the_note_and_its_signing_digest_and_rechain(scene, conn)
    with scene.engine.connect() as conn:
        alone = verify_chains(conn, scene.clinic_id)
    assert alone.ok, (alone.breaks, alone.records)
    report = scene.verify()
    assert not report.ok
    assert "rewritten" in report.breaks[0].reason


def test_the_public_key_alone_verifies(scene: Scene, operator_key: Path) -> None:
    public = load_public_key(operator_key.with_name(operator_key.name + ".pub"))
    anchor = latest_checkpoint(scene.log, public)
    assert anchor is not None
    assert anchor.line == 2
    assert scene.clinic_id in anchor.chains
    assert oct(scene.log.stat().st_mode & 0o777) == oct(0o600)
    assert oct(operator_key.stat().st_mode & 0o777) == oct(0o600)


def test_a_clinic_whose_whole_chain_was_deleted_is_reported_even_without_a_checkpoint(
    scene: Scene,
) -> None:
    with tampering(scene.engine) as conn:
        delete_the_clinics_whole_chain(scene, conn)
    with scene.engine.connect() as conn:
        report = verify_chains(conn, scene.clinic_id)
    assert [(b.clinic_id, b.reason) for b in report.breaks] == [
        (scene.clinic_id, "the clinic has no audit trail at all (deleted)")
    ]
