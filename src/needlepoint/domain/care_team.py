"""The care-team rule: who may open and write a patient's clinical record when the clinic
restricts records to the care team (the `care_team_restriction` security setting).

A patient's **care team** is
- the responsible clinician of each of the patient's episodes of care (`Episode.
  clinician_id`: the clinician who opened it, or the licensed colleague the owner named),
- and the colleagues added to the team by name (`CareTeamMember`: by the owner or by a
  member of the team, with a reason; an audited act of its own).

Writing a record never makes anyone a member: recording a note, a measurement, a
screening or a consent needs membership first. An unexpired emergency (break-glass)
access lets its holder read and write for as long as it lasts, and is on the audit trail
and the owner's review list; it does not make them a member either.

Under the restriction the rule binds clinicians and students (`CARE_TEAM_RESTRICTED`);
the owner (who runs the clinic and manages its teams) is not bound, and the roles without
clinical access never reach a clinical record anyway. Demographics (name, contact) stay
readable by all staff: the front desk and colleagues must find the patient.

One exception, taking on a new patient: a patient with no care team yet (no episode and
no member) may be taken on by a licensed clinician opening their first episode; the
clinician becomes the team. Nothing clinical exists for such a patient but what the
owner recorded, and the opening is audited (`episode.opened`)."""

from __future__ import annotations

from dataclasses import dataclass

from needlepoint.domain.enums import Role
from needlepoint.domain.errors import PermissionDenied
from needlepoint.domain.permissions import CARE_TEAM_RESTRICTED


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a user stands with one patient's record."""

    member: bool
    """Responsible clinician of one of the patient's episodes, or added to the team."""
    emergency: bool
    """Holds an unexpired emergency access to this patient."""
    team_exists: bool
    """The patient has a care team at all (an episode or a named member)."""


def binds(role: Role, restricted: bool) -> bool:
    """True when the care-team rule applies to `role` in a clinic whose restriction is
    `restricted`: only then need the standing be looked up."""
    return restricted and role in CARE_TEAM_RESTRICTED


NOT_IN_CARE = (
    "this patient is not in your care; ask a member of the care team or the owner to add "
    "you, or use emergency access if you must open the record"
)


def check_access(standing: Standing, *, taking_on: bool = False) -> None:
    """PermissionDenied (naming `patient_id`) unless the user may open or write the
    record: a member, an emergency access, or — `taking_on`, opening a first episode —
    a patient without a care team yet."""
    if standing.member or standing.emergency:
        return
    if taking_on and not standing.team_exists:
        return
    raise PermissionDenied(NOT_IN_CARE, field="patient_id")


def check_adding(standing: Standing) -> None:
    """Under the restriction only a member of the team brings a colleague in (the owner
    always may: the rule does not bind the owner). An emergency access lasts its time and
    never becomes membership, for its holder or anyone they would name."""
    if not standing.member:
        raise PermissionDenied(
            "only a member of this patient's care team or the owner adds to the team",
            field="patient_id",
        )
