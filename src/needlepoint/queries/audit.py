"""The audit trail, read: checking its hash chains, and the audit report.

`verify_chains` recomputes every clinic's chain (see `domain/audit.py`) and names the
first event that does not fit; `audit_report` is the filtered, sorted listing behind
`GET /api/v1/audit` (and its CSV export)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Literal
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.db.tables import audit_chain_heads, audit_events
from needlepoint.adapters.spreadsheets import csv_text
from needlepoint.domain.audit import GENESIS, row_hash
from needlepoint.domain.entities import AuditEvent
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first event of a clinic's chain that does not verify, and why."""

    clinic_id: UUID
    seq: int
    event_id: UUID | None
    reason: str


@dataclass
class ChainReport:
    clinics: int = 0
    events: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    heads: dict[UUID, tuple[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaks


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


def verify_chains(conn: sa.Connection, clinic_id: UUID | None = None) -> ChainReport:
    """Check every clinic's audit chain (or one clinic's); report the first bad event of
    each broken chain, the number of events checked and each chain's head.

    All clinics: run as the maintenance (owner) role — under row-level security the
    application role sees no chain unless a clinic is given."""
    heads_q = sa.select(audit_chain_heads)
    clinics_q = sa.select(audit_events.c.clinic_id).distinct()
    if clinic_id is not None:
        scope_to_clinic(conn, clinic_id)  # so that the application role may verify too
        heads_q = heads_q.where(audit_chain_heads.c.clinic_id == clinic_id)
        clinics_q = clinics_q.where(audit_events.c.clinic_id == clinic_id)
    heads = {r.clinic_id: (r.last_seq, r.last_hash) for r in conn.execute(heads_q)}
    clinics = sorted(set(conn.execute(clinics_q).scalars()) | set(heads), key=str)
    report = ChainReport()
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
    return report


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
