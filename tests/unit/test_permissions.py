"""The permission table, role by role, as the clinic would describe it."""

from __future__ import annotations

from needlepoint.domain.enums import Role
from needlepoint.domain.permissions import GRANTS, Permission, allows

CLINICAL = {
    Permission.READ_CLINICAL,
    Permission.OPEN_EPISODE,
    Permission.CLOSE_EPISODE,
    Permission.RECORD_SESSION,
    Permission.SIGN_SESSION,
    Permission.AMEND_SESSION,
    Permission.RECORD_MEASUREMENT,
    Permission.RECORD_MEDICATION,
    Permission.EMERGENCY_ACCESS,
}


def test_every_permission_is_granted_to_someone_and_the_owner_holds_all() -> None:
    assert set(GRANTS) == set(Permission)
    assert all(allows(Role.OWNER, p) for p in Permission)


def test_a_student_documents_but_cannot_sign_or_amend() -> None:
    assert allows(Role.STUDENT, Permission.RECORD_SESSION)
    assert not allows(Role.STUDENT, Permission.SIGN_SESSION)
    assert not allows(Role.STUDENT, Permission.AMEND_SESSION)
    assert not allows(Role.STUDENT, Permission.EMERGENCY_ACCESS)


def test_the_front_desk_handles_demographics_but_no_clinical_notes() -> None:
    assert allows(Role.ASSISTANT, Permission.REGISTER_PATIENT)
    assert allows(Role.ASSISTANT, Permission.READ_DEMOGRAPHICS)
    assert not any(allows(Role.ASSISTANT, p) for p in CLINICAL)


def test_a_patient_account_holds_nothing_but_its_own_account_until_the_portal() -> None:
    assert {p for p in Permission if allows(Role.PATIENT, p)} == {Permission.USE_ACCOUNT}


def test_only_the_owner_administers_security_and_users() -> None:
    for p in (
        Permission.MANAGE_SECURITY,
        Permission.REGISTER_USER,
        Permission.REVOKE_API_TOKENS,
        Permission.MANAGE_ACCOUNTS,
    ):
        assert GRANTS[p] == {Role.OWNER}
