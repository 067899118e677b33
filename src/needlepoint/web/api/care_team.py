"""A patient's care team: who is on it, and adding a colleague to it."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from needlepoint.actions import care_team as actions
from needlepoint.domain.commands import AddCareTeamMember
from needlepoint.domain.entities import CareTeamMember
from needlepoint.domain.permissions import Permission
from needlepoint.queries import care_team as queries
from needlepoint.web.context import ApiContext, requires, respond

router = APIRouter(tags=["patients"])


@router.get(
    "/patients/{patient_id}/care-team",
    response_model=list[queries.CareTeamEntry],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def care_team(ctx: ApiContext, patient_id: UUID) -> Response:
    """The patient's care team: each episode's responsible clinician and the colleagues
    added by name. Under the clinic's care-team restriction only they (and the owner, and
    a holder of an emergency access) open the clinical record."""
    with ctx.reader() as r:
        return respond(queries.care_team(r, patient_id))


@router.post(
    "/patients/{patient_id}/care-team",
    response_model=CareTeamMember,
    status_code=201,
    openapi_extra=requires(Permission.MANAGE_CARE_TEAM),
)
def add_member(ctx: ApiContext, patient_id: UUID, body: AddCareTeamMember) -> Response:
    """Add a clinician or a student to the patient's care team, with a reason: the owner,
    or a member of the team (not an emergency access). Audited."""
    member = actions.add_care_team_member(ctx.uow(), ctx.actor, patient_id, body)
    return respond(member, status=201)
