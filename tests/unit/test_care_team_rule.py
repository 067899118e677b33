"""The care-team rule (`domain.care_team`) as properties over every standing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.care_team import Standing, binds, check_access, check_adding
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import PermissionDenied

standings = st.builds(
    Standing, member=st.booleans(), emergency=st.booleans(), team_exists=st.booleans()
)


def allowed(check: Callable[..., None], *args: object, **kwargs: object) -> bool:
    """True when `check` lets the user in; a refusal always names the patient."""
    field = None
    try:
        check(*args, **kwargs)
    except PermissionDenied as err:
        field = err.field
    assert field in (None, "patient_id")
    return field is None


@given(standings, st.booleans())
def test_the_record_opens_to_members_emergency_access_and_taking_on_a_patient_without_a_team(
    standing: Standing, taking_on: bool
) -> None:
    expected = standing.member or standing.emergency or (taking_on and not standing.team_exists)
    assert allowed(check_access, standing, taking_on=taking_on) == expected


@given(standings)
def test_writing_or_reading_never_takes_on_a_patient_who_has_a_team(standing: Standing) -> None:
    if standing.team_exists and not (standing.member or standing.emergency):
        assert not allowed(check_access, standing, taking_on=True)


@given(standings)
def test_only_a_member_adds_to_the_team_never_an_emergency_access(standing: Standing) -> None:
    assert allowed(check_adding, standing) == standing.member


@pytest.mark.parametrize("role", list(Role))
def test_the_rule_binds_clinicians_and_students_and_only_under_the_restriction(
    role: Role,
) -> None:
    assert not binds(role, False)
    assert binds(role, True) == (role in {Role.CLINICIAN, Role.STUDENT})
