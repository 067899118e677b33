"""Written overrides of site-level safety refusals, listed for the clinic owner's review.

Every needling site recorded with an override: when, which patient and clinician, the
muscle and side, the rules it overrode in clinical words, the structured reason and the
written one. Owners and auditors read it (permission READ_AUDIT); each listed note is
noted on the audit trail as viewed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import needling_sites, patients, sessions, users
from needlepoint.domain.catalogue import muscles
from needlepoint.domain.enums import AuditAction, OverrideCode, Side
from needlepoint.domain.permissions import Permission
from needlepoint.domain.site_safety import site_rules
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class OverrideItem:
    session_id: UUID
    patient_id: UUID
    patient: str
    chart_number: str
    clinician_id: UUID
    clinician: str
    started_at: datetime
    signed: bool
    muscle: str
    side: Side
    overridden: list[str]
    """The refusals overridden at this site, in clinical words."""
    override_code: OverrideCode | None
    override_code_label: str | None
    override_reason: str


def override_review(
    reader: Reader,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[OverrideItem]:
    """Overridden needling sites of the reader's clinic, newest first."""
    reader.require(Permission.READ_AUDIT)
    s, n, p, u = sessions, needling_sites, patients, users
    where = [n.c.clinic_id == reader.clinic_id, n.c.override_reason.is_not(None)]
    if since is not None:
        where.append(s.c.started_at >= since)
    if until is not None:
        where.append(s.c.started_at < until)
    stmt = (
        sa.select(
            s.c.id.label("session_id"),
            s.c.patient_id,
            s.c.clinician_id,
            s.c.started_at,
            s.c.status,
            s.c.safety_flags,
            p.c.given_name,
            p.c.family_name,
            p.c.mrn,
            u.c.full_name,
            n.c.position,
            n.c.muscle_id,
            n.c.side,
            n.c.override_code,
            n.c.override_reason,
        )
        .select_from(
            n.join(s, s.c.id == n.c.session_id)
            .join(p, p.c.id == s.c.patient_id)
            .join(u, u.c.id == s.c.clinician_id)
        )
        .where(*where, s.c.clinic_id == reader.clinic_id)
        .order_by(s.c.started_at.desc(), s.c.id, n.c.position)
        .limit(limit)
    )
    catalogue = muscles()
    labels = site_rules().override_reasons.codes
    out = []
    for row in reader.conn.execute(stmt).mappings():
        flags = row["safety_flags"] or []
        overridden = [
            str(f.get("message") or str(f["rule"]).replace("_", " ").capitalize())
            for f in flags
            if f.get("action") == "overridden" and f.get("site") == row["position"]
        ]
        muscle = catalogue.get(row["muscle_id"])
        code = row["override_code"]
        reader.note(AuditAction.RECORD_VIEWED, "session", row["session_id"], row["patient_id"])
        out.append(
            OverrideItem(
                session_id=row["session_id"],
                patient_id=row["patient_id"],
                patient=f"{row['family_name']}, {row['given_name']}",
                chart_number=row["mrn"],
                clinician_id=row["clinician_id"],
                clinician=row["full_name"],
                started_at=row["started_at"],
                signed=str(row["status"]) == "signed",
                muscle=muscle.name if muscle else row["muscle_id"],
                side=Side(row["side"]),
                overridden=overridden,
                override_code=OverrideCode(code) if code else None,
                override_code_label=labels[OverrideCode(code)] if code else None,
                override_reason=row["override_reason"],
            )
        )
    return out
