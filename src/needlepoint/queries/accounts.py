"""Reads about accounts: one's own sessions and notifications, the clinic's security
policy, the emergency-access log, and a patient's care team. (The care-team rule itself
is enforced by the reader, `queries.reader.Reader.require_care_team`, for every query.)"""

from __future__ import annotations

from needlepoint.adapters.db.tables import (
    emergency_accesses,
    notifications,
    web_sessions,
)
from needlepoint.domain.entities import (
    EmergencyAccess,
    Notification,
    SecuritySettings,
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
