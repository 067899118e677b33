"""Who may do what: one declarative table, read by the actions and the read side.

Roles are refined by the security issue (co-signature for students, patients); the
table stays the single place where a permission is granted."""

from __future__ import annotations

from enum import StrEnum

from needlepoint.domain.enums import Role
from needlepoint.domain.errors import PermissionDenied


class Permission(StrEnum):
    REGISTER_USER = "register_user"
    ISSUE_API_TOKEN = "issue_api_token"  # noqa: S105 - a permission name
    REGISTER_PATIENT = "register_patient"
    UPDATE_PATIENT = "update_patient"
    READ_DEMOGRAPHICS = "read_demographics"
    READ_CLINICAL = "read_clinical"
    OPEN_EPISODE = "open_episode"
    CLOSE_EPISODE = "close_episode"
    RECORD_SESSION = "record_session"
    SIGN_SESSION = "sign_session"
    AMEND_SESSION = "amend_session"
    RECORD_MEASUREMENT = "record_measurement"
    RECORD_MEDICATION = "record_medication"
    SCREEN_PATIENT = "screen_patient"
    RECORD_CONSENT = "record_consent"
    MANAGE_CLINIC = "manage_clinic"
    RECORD_TRAINING = "record_training"
    READ_CREDENTIALS = "read_credentials"
    READ_AUDIT = "read_audit"


_CLINICAL_WRITERS = frozenset({Role.OWNER, Role.CLINICIAN, Role.STUDENT})
_LICENSED = frozenset({Role.OWNER, Role.CLINICIAN})

GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.REGISTER_USER: frozenset({Role.OWNER}),
    Permission.ISSUE_API_TOKEN: frozenset({Role.OWNER}),
    Permission.REGISTER_PATIENT: _CLINICAL_WRITERS | {Role.ASSISTANT},
    Permission.UPDATE_PATIENT: _CLINICAL_WRITERS | {Role.ASSISTANT},
    Permission.READ_DEMOGRAPHICS: _CLINICAL_WRITERS | {Role.ASSISTANT},
    Permission.READ_CLINICAL: _CLINICAL_WRITERS,
    Permission.OPEN_EPISODE: _LICENSED,
    Permission.CLOSE_EPISODE: _LICENSED,
    Permission.RECORD_SESSION: _CLINICAL_WRITERS,
    Permission.SIGN_SESSION: _LICENSED,
    Permission.AMEND_SESSION: _LICENSED,
    Permission.RECORD_MEASUREMENT: _CLINICAL_WRITERS,
    Permission.RECORD_MEDICATION: _CLINICAL_WRITERS,
    Permission.SCREEN_PATIENT: _CLINICAL_WRITERS,
    Permission.RECORD_CONSENT: _CLINICAL_WRITERS,
    Permission.MANAGE_CLINIC: frozenset({Role.OWNER}),
    Permission.RECORD_TRAINING: frozenset({Role.OWNER}),
    Permission.READ_CREDENTIALS: _LICENSED,
    Permission.READ_AUDIT: frozenset({Role.OWNER, Role.AUDITOR}),
}


def allows(role: Role, permission: Permission) -> bool:
    """True when `role` holds `permission`."""
    return role in GRANTS[permission]


def require(role: Role, permission: Permission) -> None:
    """Raise PermissionDenied unless `role` holds `permission`."""
    if not allows(role, permission):
        raise PermissionDenied(f"role '{role}' may not {permission.value.replace('_', ' ')}")
