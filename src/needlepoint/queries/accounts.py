"""Reads about accounts: one's own sessions, API tokens and notifications; the clinic's
accounts and their tokens (for owners); the clinic's security policy, the
emergency-access log, and the care-team check that emergency access lifts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import (
    api_tokens,
    emergency_accesses,
    episodes,
    mfa_secrets,
    notifications,
    security_settings,
    sessions,
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
from needlepoint.domain.errors import PermissionDenied
from needlepoint.domain.permissions import CARE_TEAM_RESTRICTED, Permission
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


def require_patient_access(
    reader: Reader, patient_id: UUID, *, now: datetime | None = None
) -> None:
    """PermissionDenied when the clinic restricts clinical records to the care team and
    the reader is neither on this patient's care team (the clinician of one of the
    patient's episodes or sessions) nor holding an unexpired emergency access to them.
    One small query when the restriction is off, two when it is on."""
    if reader.role not in CARE_TEAM_RESTRICTED:
        return
    restricted = reader.conn.execute(
        sa.select(security_settings.c.care_team_restriction).where(
            security_settings.c.clinic_id == reader.clinic_id
        )
    ).scalar()
    if not restricted:
        return
    when = now or datetime.now(UTC)
    on_team = sa.or_(
        sa.exists().where(
            episodes.c.clinic_id == reader.clinic_id,
            episodes.c.patient_id == patient_id,
            episodes.c.clinician_id == reader.user_id,
        ),
        sa.exists().where(
            sessions.c.clinic_id == reader.clinic_id,
            sessions.c.patient_id == patient_id,
            sessions.c.clinician_id == reader.user_id,
        ),
        sa.exists().where(
            emergency_accesses.c.clinic_id == reader.clinic_id,
            emergency_accesses.c.patient_id == patient_id,
            emergency_accesses.c.user_id == reader.user_id,
            emergency_accesses.c.expires_at > when,
        ),
    )
    if not reader.conn.execute(sa.select(on_team)).scalar():
        raise PermissionDenied(
            "this patient is not in your care; use emergency access if you must open the record",
            field="patient_id",
        )
