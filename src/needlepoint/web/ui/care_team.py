"""The chart's care-team forms: add a colleague to a patient's care team, and break the
glass (emergency access) from the page that refused the record."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.accounts import grant_emergency_access
from needlepoint.actions.care_team import add_care_team_member
from needlepoint.domain.commands import AddCareTeamMember, RequestEmergencyAccess
from needlepoint.domain.errors import DomainError
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import field_errors, posted_form, render, see_other, text

router = APIRouter(include_in_schema=False)


@router.post("/patients/{patient_id}/care-team", response_model=None)
async def add_member(request: Request, patient_id: UUID) -> Response:
    return await posted_form(request, _add, patient_id)


def _add(request: Request, ctx: RequestContext, patient_id: UUID, form: dict[str, Any]) -> Response:
    try:
        cmd = AddCareTeamMember.model_validate(
            {"user_id": text(form, "user_id") or None, "reason": text(form, "reason")}
        )
        add_care_team_member(ctx.uow(), ctx.actor, patient_id, cmd)
    except (DomainError, ValidationError) as err:
        return _problem(request, patient_id, field_errors(err))
    return see_other(f"/patients/{patient_id}#care-team")


@router.post("/patients/{patient_id}/emergency-access", response_model=None)
async def break_the_glass(request: Request, patient_id: UUID) -> Response:
    return await posted_form(request, _break, patient_id)


def _break(
    request: Request, ctx: RequestContext, patient_id: UUID, form: dict[str, Any]
) -> Response:
    try:
        cmd = RequestEmergencyAccess.model_validate({"reason": text(form, "reason")})
        grant_emergency_access(ctx.uow(), ctx.actor, patient_id, cmd)
    except (DomainError, ValidationError) as err:
        return _problem(request, patient_id, field_errors(err))
    return see_other(f"/patients/{patient_id}")


def _problem(request: Request, patient_id: UUID, errors: dict[str, list[str]]) -> Response:
    words = {"user_id": "Colleague", "reason": "Reason"}
    message = "; ".join(
        f"{words[k]}: {m}" if k in words else m for k, msgs in errors.items() for m in msgs
    )
    return render(request, "error.html", 400, message=f"Nothing was saved. {message}")
