"""Looking a questionnaire link up by its token's hash, before its clinic is known (the
patient opening it). `questionnaire_links` is outside row-level security for this one
read, like `account_codes`; everything the link then opens is read scoped to its clinic.

Also the outbox worker's one read across clinics: which clinics have messages to send
(each clinic's messages are then read and claimed scoped to it)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import clinics, questionnaire_links
from needlepoint.domain.entities import QuestionnaireLink

_BY_HASH = sa.select(questionnaire_links).where(
    questionnaire_links.c.token_hash == sa.bindparam("token_hash")
)


def find_link(conn: sa.Connection, token_hash: str) -> QuestionnaireLink | None:
    """The link whose token has this hash, or None."""
    row = conn.execute(_BY_HASH, {"token_hash": token_hash}).mappings().first()
    return QuestionnaireLink(**row) if row is not None else None


def clinic_ids(conn: sa.Connection) -> list[UUID]:
    """Every clinic's id (the worker reads each clinic's outbox in turn)."""
    return list(conn.execute(sa.select(clinics.c.id).order_by(clinics.c.id)).scalars())


def open_links_issued_before(conn: sa.Connection, moment: datetime) -> list[tuple[UUID, UUID]]:
    """(clinic id, link id) of links still open that were issued before `moment`: the
    candidates for a reminder."""
    q = questionnaire_links
    rows = conn.execute(
        sa.select(q.c.clinic_id, q.c.id).where(q.c.ended_at.is_(None), q.c.created_at <= moment)
    )
    return [(r.clinic_id, r.id) for r in rows]


def due_messages(
    conn: sa.Connection, clinic_id: UUID, now: datetime, stale_before: datetime, limit: int
) -> list[tuple[UUID, UUID]]:
    """(clinic id, message id) of the clinic's messages a worker may claim now: pending
    and due, or `sending` under a claim older than `stale_before` — oldest first."""
    from needlepoint.adapters.db.engine import scope_to_clinic
    from needlepoint.adapters.db.tables import outbox_messages as o

    scope_to_clinic(conn, clinic_id)
    rows = conn.execute(
        sa.select(o.c.id)
        .where(
            o.c.clinic_id == clinic_id,
            sa.or_(
                sa.and_(o.c.state == "pending", o.c.next_attempt_at <= now),
                sa.and_(o.c.state == "sending", o.c.claimed_at <= stale_before),
            ),
        )
        .order_by(o.c.next_attempt_at, o.c.id)
        .limit(limit)
    )
    return [(clinic_id, r.id) for r in rows]


def episodes_on_a_plan(conn: sa.Connection, clinic_id: UUID, closed_since: date) -> list[UUID]:
    """The clinic's episodes whose condition has a questionnaire plan: open, or closed on
    or after `closed_since` (their follow-ups may still fall due)."""
    from needlepoint.adapters.db.engine import scope_to_clinic
    from needlepoint.adapters.db.tables import episodes as e
    from needlepoint.adapters.db.tables import questionnaire_plans as p

    scope_to_clinic(conn, clinic_id)
    rows = conn.execute(
        sa.select(e.c.id)
        .join(p, sa.and_(p.c.clinic_id == e.c.clinic_id, p.c.condition == e.c.condition))
        .where(
            e.c.clinic_id == clinic_id,
            sa.or_(e.c.status == "open", e.c.closed_on >= closed_since),
        )
        .order_by(e.c.id)
    )
    return [r.id for r in rows]
