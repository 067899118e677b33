"""A practitioner's dry needling credentials against the clinic's rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from needlepoint.adapters.db.tables import training_records
from needlepoint.domain.credentials import CredentialCheck, check_credentials, jurisdiction
from needlepoint.domain.entities import TrainingRecord, User
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: UUID
    full_name: str
    role: str
    licence_number: str | None
    licence_date: date | None
    jurisdiction: str
    jurisdiction_name: str
    policy: str
    meets_rules: bool
    hours_in_person: float
    hours_online: float
    exam_passed: bool
    regions: list[str]
    years_licensed: float | None
    required_hours: float | None
    required_years: float | None
    problems: list[dict[str, object]]
    supervised: bool
    training: list[TrainingRecord]


def user_credentials(reader: Reader, user_id: UUID, on: date) -> Credentials:
    """A user's training and licence, checked against the clinic's rules on `on`. Users
    may always see their own; others need the credentials permission."""
    if user_id != reader.user_id:
        reader.require(Permission.READ_CREDENTIALS)
    user = reader.one(User, user_id, field="user_id")
    training = reader.select(
        TrainingRecord,
        training_records.c.user_id == user_id,
        order_by=training_records.c.completed_on,
    )
    clinic = reader.clinic()
    check: CredentialCheck = check_credentials(user, training, clinic, on)
    rules = jurisdiction(clinic.jurisdiction)
    return Credentials(
        user_id=user.id,
        full_name=user.full_name,
        role=user.role.value,
        licence_number=user.licence_number,
        licence_date=user.licence_date,
        jurisdiction=rules.id,
        jurisdiction_name=rules.name,
        policy=clinic.credential_policy.value,
        meets_rules=check.meets_rules,
        hours_in_person=check.hours_in_person,
        hours_online=check.hours_online,
        exam_passed=check.exam_passed,
        regions=list(check.regions),
        years_licensed=round(check.years_licensed, 2) if check.years_licensed is not None else None,
        required_hours=check.required_hours,
        required_years=check.required_years,
        problems=[p.as_dict() for p in check.problems],
        supervised=check.supervised,
        training=training,
    )
