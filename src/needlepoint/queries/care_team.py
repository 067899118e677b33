"""A patient's care team as the chart lists it: who, in what role, since when and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import users
from needlepoint.domain.entities import CareTeamMember, Episode, User
from needlepoint.domain.enums import Role
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class CareTeamEntry:
    """One member of a patient's care team."""

    user_id: UUID
    full_name: str
    role: Role
    since: datetime
    why: str
    """"responsible clinician of the episode for …", or who added them and why."""


def care_team(reader: Reader, patient_id: UUID) -> list[CareTeamEntry]:
    """The patient's care team, earliest first: each episode's responsible clinician,
    then the colleagues added by name. Part of the clinical record (the care-team rule
    applies to reading it too)."""
    reader.patient_record(patient_id)
    team: list[CareTeamEntry] = reader.once(
        ("care_team", patient_id), lambda: _care_team(reader, patient_id)
    )
    return list(team)


def _care_team(reader: Reader, patient_id: UUID) -> list[CareTeamEntry]:
    found_episodes = reader.select_by(Episode, patient_id=patient_id, order_by=("created_at",))
    members = reader.select_by(CareTeamMember, patient_id=patient_id, order_by=("added_at",))
    ids = {e.clinician_id for e in found_episodes} | {m.user_id for m in members}
    ids |= {m.added_by for m in members}
    people = {u.id: u for u in (reader.select(User, users.c.id.in_(ids)) if ids else [])}
    entries: dict[UUID, CareTeamEntry] = {}
    for e in found_episodes:
        who = people.get(e.clinician_id)
        if who is not None and who.id not in entries:
            entries[who.id] = CareTeamEntry(
                who.id,
                who.full_name,
                who.role,
                e.created_at,
                f"responsible clinician of the episode for {e.condition.replace('_', ' ')}",
            )
    for m in members:
        who = people.get(m.user_id)
        if who is not None and who.id not in entries:
            by = people.get(m.added_by)
            entries[who.id] = CareTeamEntry(
                who.id,
                who.full_name,
                who.role,
                m.added_at,
                f"added by {by.full_name if by else 'a former user'}: {m.reason}",
            )
    return list(entries.values())


@dataclass(frozen=True, slots=True)
class Colleague:
    """A colleague who could join a patient's care team: what the chart's list shows."""

    id: UUID
    full_name: str
    role: Role


# Only the three columns the list shows: every chart view reads every colleague, and a
# whole user row (times, licence, sign-in state) cost a sixth of the chart's time.
_COLLEAGUES: Any = (
    sa.select(users.c.id, users.c.full_name, users.c.role)
    .where(
        users.c.clinic_id == sa.bindparam("clinic_id"),
        users.c.is_active.is_(True),
        users.c.role.in_([Role.CLINICIAN, Role.STUDENT]),
    )
    .order_by(users.c.full_name)
)


def colleagues_to_add(reader: Reader, patient_id: UUID) -> list[Colleague]:
    """The clinic's active clinicians and students not yet on the patient's care team,
    by name (for the chart's "add to the care team" list)."""
    on_team = {e.user_id for e in care_team(reader, patient_id)}
    found = reader.conn.execute(_COLLEAGUES, {"clinic_id": reader.clinic_id})
    return [Colleague(*row) for row in found if row.id not in on_team]
