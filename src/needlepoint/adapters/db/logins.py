"""The sign-in log: every attempt, kept in the database so rate limits and lock-outs
survive a restart. Not a clinical record: an attempt may name no account (no clinic)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import login_attempts, users

# Reasons that count towards a lock-out (a refused attempt while locked does not, so a
# lock-out ends on time even while someone keeps trying).
FAILURES = ("bad_password", "unknown_account", "bad_code")


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    occurred_at: datetime
    email: str
    address: str
    succeeded: bool
    reason: str
    clinic_id: UUID | None = None
    user_id: UUID | None = None
    request_id: str | None = None


def record_attempt(conn: sa.Connection, attempt: LoginAttempt) -> None:
    """Log one attempt (in the caller's transaction)."""
    conn.execute(
        sa.insert(login_attempts).values(
            id=uuid.uuid4(),
            occurred_at=attempt.occurred_at,
            email=attempt.email[:254],
            address=attempt.address[:64],
            succeeded=attempt.succeeded,
            reason=attempt.reason,
            clinic_id=attempt.clinic_id,
            user_id=attempt.user_id,
            request_id=attempt.request_id,
        )
    )


def recent_failures(
    conn: sa.Connection, email: str, address: str, since: datetime
) -> tuple[int, int]:
    """(failures for this account, failures from this address) since `since`; an account's
    count restarts at its last successful sign-in."""
    t = login_attempts
    last_success = (
        sa.select(sa.func.max(t.c.occurred_at))
        .where(t.c.email == email, t.c.succeeded.is_(True))
        .scalar_subquery()
    )
    by_email = conn.execute(
        sa.select(sa.func.count()).where(
            t.c.email == email,
            t.c.reason.in_(FAILURES),
            t.c.occurred_at >= since,
            t.c.occurred_at > sa.func.coalesce(last_success, since),
        )
    ).scalar_one()
    by_address = conn.execute(
        sa.select(sa.func.count()).where(
            t.c.address == address, t.c.reason.in_(FAILURES), t.c.occurred_at >= since
        )
    ).scalar_one()
    return int(by_email), int(by_address)


def password_hash_of(conn: sa.Connection, email: str) -> str | None:
    """The stored password hash of the account with `email`, if any (read outside the
    sign-in's write transaction, so the deliberately slow check never holds a lock)."""
    row = conn.execute(sa.select(users.c.password_hash).where(users.c.email == email)).first()
    return None if row is None else row.password_hash


def account_by_email(conn: sa.Connection, email: str) -> tuple[UUID, UUID] | None:
    """(user id, clinic id) of the account with `email` (unique across clinics)."""
    row = conn.execute(
        sa.select(users.c.id, users.c.clinic_id).where(users.c.email == email)
    ).first()
    return None if row is None else (row.id, row.clinic_id)
