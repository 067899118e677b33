"""The audit trail, read: checking its hash chains, and the audit report.

`verify_chains` recomputes every clinic's chain (see `domain/audit.py`) and names the
first event that does not fit; checks the chains against a signed checkpoint kept outside
the database (`adapters/checkpoints.py`), and signed notes and amendments against the
digests recorded on the trail when they were signed and written; `audit_report` is the
filtered, sorted listing behind `GET /api/v1/audit` (and its CSV export)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.checkpoints import Checkpoint
from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.db.tables import (
    adverse_events,
    amendments,
    audit_chain_heads,
    audit_events,
    co_interventions,
    measurements,
    needling_sites,
    sessions,
)
from needlepoint.adapters.db.tables import (
    clinics as clinics_table,
)
from needlepoint.adapters.spreadsheets import csv_text
from needlepoint.domain.audit import GENESIS, digest, row_hash, signed_note
from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    AuditEvent,
    CoIntervention,
    Entity,
    Measurement,
    NeedlingSite,
    Session,
)
from needlepoint.domain.enums import AuditAction, AuditOutcome, SessionStatus
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first event of a clinic's chain that does not verify, and why."""

    clinic_id: UUID
    seq: int
    event_id: UUID | None
    reason: str


@dataclass(frozen=True, slots=True)
class RecordBreak:
    """A signed note (or an amendment) that no longer matches the digest its audit event
    recorded when it was signed (written)."""

    clinic_id: UUID
    record_id: UUID
    reason: str


@dataclass
class ChainReport:
    clinics: int = 0
    events: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    heads: dict[UUID, tuple[int, str]] = field(default_factory=dict)
    records: list[RecordBreak] = field(default_factory=list)
    """Signed notes and amendments changed since they were signed (written)."""
    notes_checked: int = 0
    notes_unsealed: int = 0
    """Notes signed before signing digests covered what was recorded in them (their note
    row is checked, their sites and measurements cannot be)."""
    anchor: Checkpoint | None = None
    """The checkpoint the chains were checked against, if one was given."""
    unanchored_events: int = 0
    """Events written since that checkpoint (not yet protected by one)."""

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.records


def _verify_clinic(
    rows: Iterable[sa.RowMapping], head: tuple[int, str] | None
) -> tuple[int, ChainBreak | None]:
    expected, prev, clinic = 1, GENESIS, None
    count = 0
    for row in rows:
        clinic = row["clinic_id"]
        count += 1
        if row["seq"] != expected:
            return count, ChainBreak(
                clinic,
                row["seq"],
                row["id"],
                f"events {expected}..{row['seq'] - 1} are missing before this one (deleted)",
            )
        if row["prev_hash"] != prev:
            return count, ChainBreak(
                clinic,
                row["seq"],
                row["id"],
                "does not link to the event before it (that event was altered, or this one "
                "was inserted)",
            )
        if row_hash(row) != row["hash"]:
            return count, ChainBreak(
                clinic, row["seq"], row["id"], "its content does not match its hash (altered)"
            )
        expected, prev = expected + 1, row["hash"]
    if clinic is not None and (head is None or head != (expected - 1, prev)):
        at = head[0] if head else "missing"
        return count, ChainBreak(
            clinic,
            expected,
            None,
            f"the chain head is at {at} but the events end at {expected - 1} "
            "(events at the end were deleted, or the head was moved)",
        )
    return count, None


def verify_chains(
    conn: sa.Connection,
    clinic_id: UUID | None = None,
    *,
    checkpoint: Checkpoint | None = None,
    records: bool = True,
) -> ChainReport:
    """Check every clinic's audit chain (or one clinic's); report the first bad event of
    each broken chain, the number of events checked and each chain's head.

    With a `checkpoint` (from the signed log kept outside the database), each chain must
    still contain the event the checkpoint recorded, with the same hash: a chain cut
    short, recomputed from an altered event, or deleted shows even when it is consistent
    in itself. With `records`, every signed note and amendment must still match the
    digest its audit event recorded.

    All clinics: run as the maintenance (owner) role — under row-level security the
    application role sees no chain unless a clinic is given."""
    heads_q = sa.select(audit_chain_heads)
    clinics_q = sa.select(audit_events.c.clinic_id).distinct()
    if clinic_id is not None:
        scope_to_clinic(conn, clinic_id)  # so that the application role may verify too
        heads_q = heads_q.where(audit_chain_heads.c.clinic_id == clinic_id)
        clinics_q = clinics_q.where(audit_events.c.clinic_id == clinic_id)
    registered_q = sa.select(clinics_table.c.id)
    if clinic_id is not None:
        registered_q = registered_q.where(clinics_table.c.id == clinic_id)
    heads = {r.clinic_id: (r.last_seq, r.last_hash) for r in conn.execute(heads_q)}
    chained = set(conn.execute(clinics_q).scalars()) | set(heads)
    report = ChainReport()
    # Registering a clinic is its chain's first event: a clinic without one lost it.
    for missing in sorted(set(conn.execute(registered_q).scalars()) - chained, key=str):
        report.clinics += 1
        report.breaks.append(
            ChainBreak(missing, 1, None, "the clinic has no audit trail at all (deleted)")
        )
    clinics = sorted(chained, key=str)
    for clinic in clinics:
        rows = conn.execution_options(yield_per=2000).execute(
            sa.select(audit_events)
            .where(audit_events.c.clinic_id == clinic)
            .order_by(audit_events.c.seq)
        )
        count, broken = _verify_clinic(rows.mappings(), heads.get(clinic))
        if count == 0 and clinic in heads:
            broken = ChainBreak(clinic, 1, None, "the chain head exists but every event is gone")
        rows.close()
        report.clinics += 1
        report.events += count
        if broken is not None:
            report.breaks.append(broken)
        elif clinic in heads:
            report.heads[clinic] = heads[clinic]
    if checkpoint is not None:
        report.anchor = checkpoint
        report.breaks.extend(_against_checkpoint(conn, checkpoint, clinic_id, report))
    if records:
        _check_signed_records(conn, clinic_id, report)
    return report


def _against_checkpoint(
    conn: sa.Connection, checkpoint: Checkpoint, clinic_id: UUID | None, report: ChainReport
) -> list[ChainBreak]:
    """Each chain the checkpoint recorded must still hold its event at the recorded place
    with the recorded hash."""
    ae = audit_events
    taken = f"the checkpoint of {checkpoint.written_at:%Y-%m-%d %H:%M} UTC"
    found: list[ChainBreak] = []
    anchored_events = 0
    for clinic, (seq, expected) in sorted(checkpoint.chains.items(), key=lambda kv: str(kv[0])):
        if clinic_id is not None and clinic != clinic_id:
            continue
        anchored_events += seq
        row = conn.execute(
            sa.select(ae.c.id, ae.c.hash).where(ae.c.clinic_id == clinic, ae.c.seq == seq)
        ).first()
        if row is not None and row.hash == expected:
            continue
        newest = conn.execute(
            sa.select(sa.func.max(ae.c.seq), sa.func.count()).where(ae.c.clinic_id == clinic)
        ).one()
        if not newest[1]:
            reason = f"the whole chain is gone: {taken} recorded {seq} events (deleted)"
        elif row is None:
            reason = (
                f"the chain ends at {newest[0]} but {taken} recorded {seq} events "
                "(events at the end were deleted: truncated)"
            )
        else:
            reason = (
                f"event {seq} is not the one {taken} recorded: the chain was rewritten "
                "(recomputed) up to here"
            )
        found.append(ChainBreak(clinic, seq, row.id if row is not None else None, reason))
    in_scope = [c for c in report.heads if clinic_id is None or c == clinic_id]
    report.unanchored_events = max(0, sum(report.heads[c][0] for c in in_scope) - anchored_events)
    return found


def _check_signed_records(conn: sa.Connection, clinic_id: UUID | None, report: ChainReport) -> None:
    """Signed notes (with their sites, co-interventions, adverse events and measurements)
    and amendments against the `after_digest` of the audit event that signed (wrote)
    them. The events themselves are protected by the chain."""
    ae, s = audit_events, sessions
    where_events = [
        ae.c.action.in_(
            [AuditAction.SESSION_SIGNED, AuditAction.SESSION_AMENDED, AuditAction.SESSION_IMPORTED]
        ),
        ae.c.outcome == AuditOutcome.SUCCESS,
    ]
    if clinic_id is not None:
        where_events.append(ae.c.clinic_id == clinic_id)
    recorded: dict[UUID, tuple[UUID, AuditAction, str | None]] = {}
    for ev in conn.execute(
        sa.select(ae.c.entity_id, ae.c.clinic_id, ae.c.action, ae.c.after_digest)
        .where(*where_events)
        .order_by(ae.c.clinic_id, ae.c.seq)
    ):
        recorded[ev.entity_id] = (ev.clinic_id, ev.action, ev.after_digest)

    signed_where = [s.c.status == SessionStatus.SIGNED]
    if clinic_id is not None:
        signed_where.append(s.c.clinic_id == clinic_id)
    notes = {
        row["id"]: Session(**row)
        for row in conn.execute(sa.select(s).where(*signed_where)).mappings()
    }
    children: dict[UUID, list[Entity]] = {}
    for kind, table in _NOTE_CHILDREN:
        stmt = sa.select(table).join(s, s.c.id == table.c.session_id).where(*signed_where)
        for row in conn.execute(stmt).mappings():
            children.setdefault(row["session_id"], []).append(kind(**row))
    amended = {
        row["id"]: Amendment(**row)
        for row in conn.execute(
            sa.select(amendments).where(
                *([amendments.c.clinic_id == clinic_id] if clinic_id is not None else [])
            )
        ).mappings()
    }

    def broken(clinic: UUID, record: UUID, reason: str) -> None:
        report.records.append(RecordBreak(clinic, record, reason))

    for note_id, note in notes.items():
        report.notes_checked += 1
        event = recorded.get(note_id)
        # An imported signed note (docs/import.md) was written signed: its import event
        # holds the digest of the note as signed.
        if event is None or event[1] not in (
            AuditAction.SESSION_SIGNED,
            AuditAction.SESSION_IMPORTED,
        ):
            broken(note.clinic_id, note_id, "signed note with no signing event on the trail")
            continue
        kids = children.get(note_id, [])
        if digest(signed_note(note, kids)) == event[2]:
            continue
        if kids and digest([note]) == event[2]:
            report.notes_unsealed += 1  # signed before the digest covered its contents
            continue
        broken(
            note.clinic_id,
            note_id,
            "signed note changed since it was signed (its text, sites, co-interventions, "
            "adverse events or measurements do not match the digest recorded at signing)",
        )
    for amendment_id, amendment in amended.items():
        event = recorded.get(amendment_id)
        if event is None or event[1] != AuditAction.SESSION_AMENDED:
            broken(amendment.clinic_id, amendment_id, "amendment with no event on the trail")
        elif digest([amendment]) != event[2]:
            broken(amendment.clinic_id, amendment_id, "amendment changed since it was written")
    for record_id, (clinic, action, _) in recorded.items():
        if action == AuditAction.SESSION_SIGNED and record_id not in notes:
            broken(
                clinic,
                record_id,
                "the trail records this note as signed, but it is no longer a signed note "
                "(deleted, or turned back into a draft)",
            )
        elif action == AuditAction.SESSION_AMENDED and record_id not in amended:
            broken(clinic, record_id, "the trail records this amendment, but it is gone")


_NOTE_CHILDREN: tuple[tuple[type[Any], sa.Table], ...] = (
    (NeedlingSite, needling_sites),
    (CoIntervention, co_interventions),
    (AdverseEvent, adverse_events),
    (Measurement, measurements),
)


# -- the audit report -------------------------------------------------------------------------

Sort = Literal["occurred_at", "-occurred_at"]


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEvent]
    total: int
    limit: int
    offset: int


def audit_report(
    reader: Reader,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user_id: UUID | None = None,
    patient_id: UUID | None = None,
    action: AuditAction | None = None,
    sort: Sort = "-occurred_at",
    limit: int = 100,
    offset: int = 0,
) -> AuditPage:
    """The clinic's audit events in a period (`since` inclusive, `until` exclusive),
    optionally of one user, patient or action; newest first unless `sort` says so."""
    reader.require(Permission.READ_AUDIT)
    ae = audit_events
    where = [ae.c.clinic_id == reader.clinic_id]
    if since is not None:
        where.append(ae.c.occurred_at >= since)
    if until is not None:
        where.append(ae.c.occurred_at < until)
    if user_id is not None:
        where.append(ae.c.actor_user_id == user_id)
    if patient_id is not None:
        where.append(ae.c.patient_id == patient_id)
    if action is not None:
        where.append(ae.c.action == action)
    order = (
        (ae.c.occurred_at, ae.c.seq)
        if sort == "occurred_at"
        else (ae.c.occurred_at.desc(), ae.c.seq.desc())
    )
    total = reader.conn.execute(
        sa.select(sa.func.count()).select_from(ae).where(*where)
    ).scalar_one()
    rows = reader.conn.execute(
        sa.select(ae).where(*where).order_by(*order).limit(limit).offset(offset)
    )
    return AuditPage([AuditEvent(**r._mapping) for r in rows], total, limit, offset)


CSV_COLUMNS = tuple(f.name for f in fields(AuditEvent))


def audit_csv(events: Iterable[AuditEvent]) -> str:
    """The events as CSV, one row each, every field (times in ISO 8601 UTC); text cells
    escaped against formula injection (`adapters/spreadsheets.py`)."""
    rows = ([getattr(ev, c) for c in CSV_COLUMNS] for ev in events)
    return csv_text(CSV_COLUMNS, rows, lineterminator="\r\n")
