"""The sign-in log: every attempt, kept in the database so rate limits and lock-outs
survive a restart. Not a clinical record: an attempt may name no account (no clinic)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import account_codes, login_attempts, users

# Reasons that count as failed guesses (an attempt refused because its key must wait
# does not count, so a delay ends on time even while someone keeps trying).
PASSWORD_FAILURES = ("bad_password", "unknown_account")
CODE_FAILURES = ("bad_code",)
# Reasons after which an account's password failures at an address start again.
PASSWORD_SUCCESSES = ("signed_in", "password_accepted")


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


def _latest(*times: datetime | None) -> datetime | None:
    found = [t for t in times if t is not None]
    return max(found) if found else None


def _failures(conn: sa.Connection, *where: Any) -> tuple[int, datetime | None]:
    t = login_attempts
    row = conn.execute(sa.select(sa.func.count(), sa.func.max(t.c.occurred_at)).where(*where)).one()
    return int(row[0]), row[1]


def _reset_of(conn: sa.Connection, *where: Any) -> datetime | None:
    """The latest owner's unlock of the accounts matching `where`."""
    return conn.execute(sa.select(sa.func.max(users.c.sign_in_reset_at)).where(*where)).scalar()


def password_failures(
    conn: sa.Connection, email: str, address: str, since: datetime
) -> tuple[int, datetime | None]:
    """(failed passwords for `email` from `address`, the last one's time) since `since`,
    counted from the last correct password there or the last owner's unlock."""
    t = login_attempts
    last_ok = conn.execute(
        sa.select(sa.func.max(t.c.occurred_at)).where(
            t.c.email == email, t.c.address == address, t.c.reason.in_(PASSWORD_SUCCESSES)
        )
    ).scalar()
    where = [
        t.c.email == email,
        t.c.address == address,
        t.c.reason.in_(PASSWORD_FAILURES),
        t.c.occurred_at >= since,
    ]
    start = _latest(last_ok, _reset_of(conn, users.c.email == email))
    if start is not None:
        where.append(t.c.occurred_at > start)
    return _failures(conn, *where)


def address_failures(
    conn: sa.Connection, address: str, since: datetime
) -> tuple[int, datetime | None]:
    """(failed passwords from `address` for any account, the last one's time) since `since`."""
    t = login_attempts
    return _failures(
        conn, t.c.address == address, t.c.reason.in_(PASSWORD_FAILURES), t.c.occurred_at >= since
    )


def code_failures(conn: sa.Connection, user_id: UUID) -> tuple[int, datetime | None]:
    """(failed second-factor codes of the account, the last one's time), from any address,
    counted since its last complete sign-in or the last owner's unlock. A correct password
    does not restart the count."""
    t = login_attempts
    last_ok = conn.execute(
        sa.select(sa.func.max(t.c.occurred_at)).where(
            t.c.user_id == user_id, t.c.reason == "signed_in"
        )
    ).scalar()
    start = _latest(last_ok, _reset_of(conn, users.c.id == user_id))
    where = [t.c.user_id == user_id, t.c.reason.in_(CODE_FAILURES)]
    if start is not None:
        where.append(t.c.occurred_at > start)
    return _failures(conn, *where)


@dataclass(frozen=True, slots=True)
class Account:
    """An account that signs in with an email: its ids and stored password hash."""

    user_id: UUID
    clinic_id: UUID
    password_hash: str | None


def accounts_by_email(conn: sa.Connection, email: str) -> list[Account]:
    """The accounts with `email` (at most one per clinic), oldest first. Read outside the
    sign-in's write transaction, so the deliberately slow password check never holds a
    lock."""
    rows = conn.execute(
        sa.select(users.c.id, users.c.clinic_id, users.c.password_hash)
        .where(users.c.email == email)
        .order_by(users.c.created_at, users.c.id)
        .limit(MAX_ACCOUNTS_PER_EMAIL)
    ).all()
    return [Account(r.id, r.clinic_id, r.password_hash) for r in rows]


MAX_ACCOUNTS_PER_EMAIL = 8  # each costs one password hash at sign-in


def code_holder(conn: sa.Connection, code_hash: str) -> tuple[UUID, UUID] | None:
    """(user id, clinic id) of the account a one-time code with this hash was issued to
    (read before anybody is signed in: the password-reset page)."""
    t = account_codes
    row = conn.execute(
        sa.select(t.c.user_id, t.c.clinic_id).where(t.c.code_hash == code_hash)
    ).first()
    return None if row is None else (row.user_id, row.clinic_id)
