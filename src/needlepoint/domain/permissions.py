"""Who may do what: one declarative table, read by the actions and the read side.

The roles (`domain.enums.Role`):

- **owner** — the clinic's lead and administrator: every permission below.
- **clinician** — a licensed practitioner: the whole clinical record, signs and amends
  notes, may open a record in an emergency (break-glass).
- **student** — practises under supervision: documents, but may not sign, amend, open or
  close episodes; the supervisor's co-signature workflow builds on this.
- **assistant** — front desk: demographics and scheduling data, never clinical notes.
- **auditor** — reads the audit trail and the emergency-access log, nothing clinical.
- **patient** — for the patient portal to come. Holds nothing but their own account
  (`USE_ACCOUNT`): reading their own record needs patient-scoped reads, which the portal
  issue adds; until then a patient account sees no clinical or demographic data at all.

Every API route declares the one permission it needs (`web.context.requires`); the
access-matrix test checks each route against this table for every role and tenant."""

from __future__ import annotations

from enum import StrEnum

from needlepoint.domain.enums import Role
from needlepoint.domain.errors import PermissionDenied


class Permission(StrEnum):
    REGISTER_USER = "register_user"
    REVOKE_API_TOKENS = "revoke_api_tokens"
    MANAGE_ACCOUNTS = "manage_accounts"
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
    USE_ACCOUNT = "use_account"
    READ_STAFF = "read_staff"
    MANAGE_SECURITY = "manage_security"
    READ_AUDIT = "read_audit"
    EMERGENCY_ACCESS = "emergency_access"
    REVIEW_EMERGENCY_ACCESS = "review_emergency_access"
    MANAGE_CARE_TEAM = "manage_care_team"
    IMPORT_RECORDS = "import_records"


_CLINICAL_WRITERS = frozenset({Role.OWNER, Role.CLINICIAN, Role.STUDENT})
_LICENSED = frozenset({Role.OWNER, Role.CLINICIAN})
_STAFF = _CLINICAL_WRITERS | {Role.ASSISTANT}

GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.REGISTER_USER: frozenset({Role.OWNER}),
    Permission.REVOKE_API_TOKENS: frozenset({Role.OWNER}),
    Permission.MANAGE_ACCOUNTS: frozenset({Role.OWNER}),
    Permission.REGISTER_PATIENT: _STAFF,
    Permission.UPDATE_PATIENT: _STAFF,
    Permission.READ_DEMOGRAPHICS: _STAFF,
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
    # Bringing another system's records in (docs/import.md): the owner answers for them.
    Permission.IMPORT_RECORDS: frozenset({Role.OWNER}),
    Permission.RECORD_TRAINING: frozenset({Role.OWNER}),
    Permission.READ_CREDENTIALS: _LICENSED,
    Permission.USE_ACCOUNT: frozenset(Role),
    Permission.READ_STAFF: _STAFF | {Role.AUDITOR},
    Permission.MANAGE_SECURITY: frozenset({Role.OWNER}),
    Permission.READ_AUDIT: frozenset({Role.OWNER, Role.AUDITOR}),
    Permission.EMERGENCY_ACCESS: _LICENSED,
    Permission.REVIEW_EMERGENCY_ACCESS: frozenset({Role.OWNER, Role.AUDITOR}),
    Permission.MANAGE_CARE_TEAM: _LICENSED,
}


# Under a clinic's care-team restriction (a security setting), these roles read and write
# a patient's clinical record only when on the patient's care team or holding an unexpired
# emergency access (`domain.care_team`); the owner and roles without clinical access are
# unaffected.
CARE_TEAM_RESTRICTED: frozenset[Role] = frozenset({Role.CLINICIAN, Role.STUDENT})


def allows(role: Role, permission: Permission) -> bool:
    """True when `role` holds `permission`."""
    return role in GRANTS[permission]


def require(role: Role, permission: Permission) -> None:
    """Raise PermissionDenied unless `role` holds `permission`."""
    if not allows(role, permission):
        raise PermissionDenied(f"role '{role}' may not {permission.value.replace('_', ' ')}")
