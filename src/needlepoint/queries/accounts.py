"""Reads about accounts: one's own sessions, API tokens and notifications; the clinic's
accounts and their tokens (for owners); the clinic's security policy, the
emergency-access log. (The care-team rule is enforced by the reader,
`queries.reader.Reader.require_care_team`, for every query.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from needlepoint.adapters.db.tables import (
    api_tokens,
    emergency_accesses,
    mfa_secrets,
    notifications,
    users,
    web_sessions,
)
from needlepoint.domain.entities import (
    ApiToken,
    EmergencyAccess,
    MfaSecret,
    Notification,
    SecuritySettings,
    User,
    WebSession,
)
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


def my_sessions(reader: Reader) -> list[WebSession]:
    """The reader's own web sessions that are still open, newest first."""
    reader.require(Permission.USE_ACCOUNT)
    return reader.select(
        WebSession,
        web_sessions.c.user_id == reader.user_id,
        web_sessions.c.revoked_at.is_(None),
        order_by=web_sessions.c.created_at.desc(),
    )


def my_tokens(reader: Reader) -> list[ApiToken]:
    """The reader's own API tokens (revoked and expired ones too), newest first."""
    reader.require(Permission.USE_ACCOUNT)
    return reader.select(
        ApiToken, api_tokens.c.user_id == reader.user_id, order_by=api_tokens.c.created_at.desc()
    )


def tokens_of(reader: Reader, user_id: UUID) -> list[ApiToken]:
    """A user's API tokens, for an owner (who may revoke them), newest first."""
    reader.require(Permission.REVOKE_API_TOKENS)
    return reader.select(
        ApiToken, api_tokens.c.user_id == user_id, order_by=api_tokens.c.created_at.desc()
    )


@dataclass(frozen=True, slots=True)
class StaffAccount:
    """One account of the clinic as its owner manages it (never a credential)."""

    user: User
    two_factor: bool
    tokens: list[ApiToken]


def staff_accounts(reader: Reader) -> list[StaffAccount]:
    """Every account of the clinic with whether it has a second factor and its open API
    tokens, for the owner's account management page."""
    reader.require(Permission.MANAGE_ACCOUNTS)
    people = reader.select(User, order_by=(users.c.is_active.desc(), users.c.full_name))
    enrolled = {
        m.user_id for m in reader.select(MfaSecret, mfa_secrets.c.confirmed_at.is_not(None))
    }
    now = datetime.now(UTC)
    tokens: dict[UUID, list[ApiToken]] = {}
    for t in reader.select(
        ApiToken, api_tokens.c.revoked_at.is_(None), order_by=api_tokens.c.created_at.desc()
    ):
        if t.expires_at is not None and t.expires_at > now:
            tokens.setdefault(t.user_id, []).append(t)
    return [StaffAccount(u, u.id in enrolled, tokens.get(u.id, [])) for u in people]


def my_two_factor(reader: Reader) -> bool:
    """Whether the reader's own account has a confirmed second factor."""
    reader.require(Permission.USE_ACCOUNT)
    return bool(
        reader.select(
            MfaSecret,
            mfa_secrets.c.user_id == reader.user_id,
            mfa_secrets.c.confirmed_at.is_not(None),
        )
    )


def my_notifications(reader: Reader) -> list[Notification]:
    """Notifications addressed to the reader, newest first."""
    reader.require(Permission.USE_ACCOUNT)
    return reader.select(
        Notification,
        notifications.c.recipient_id == reader.user_id,
        order_by=notifications.c.created_at.desc(),
    )


def clinic_security(reader: Reader) -> SecuritySettings:
    """The clinic's security policy (the defaults until changed)."""
    reader.require(Permission.MANAGE_SECURITY)
    found = reader.select(SecuritySettings)
    return found[0] if found else SecuritySettings(id=reader.clinic_id, clinic_id=reader.clinic_id)


def emergency_access_log(reader: Reader) -> list[EmergencyAccess]:
    """Every emergency access in the clinic, newest first, for review."""
    reader.require(Permission.REVIEW_EMERGENCY_ACCESS)
    return reader.select(EmergencyAccess, order_by=emergency_accesses.c.granted_at.desc())
