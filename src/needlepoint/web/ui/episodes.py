"""Episodes of care: opening one (condition, ICD-10, goals, a plan with co-interventions)
and the episode's page with its sessions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.episodes import open_episode
from needlepoint.domain.billing import icd10_suggestions
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.commands import OpenEpisode
from needlepoint.domain.enums import Modality
from needlepoint.domain.errors import DomainError
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.patients import get_patient
from needlepoint.queries.sessions import episode_sessions
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    clinic_zone,
    field_errors,
    optional,
    posted_form,
    refusal_page,
    render,
    see_other,
    signed_in,
    text,
    to_login,
    today,
)

router = APIRouter(include_in_schema=False)
PLAN_WORDS = {
    Modality.DRY_NEEDLING: "Dry needling of the involved muscles",
    Modality.EXERCISE: "Home and supervised exercise",
    Modality.MANUAL_THERAPY: "Manual therapy",
    Modality.EDUCATION: "Pain education",
    Modality.OTHER: "",
}


def _codes() -> dict[str, list[Any]]:
    return {c.id: icd10_suggestions(c.id) for c in conditions().conditions}


def _form_page(
    request: Request,
    ctx: RequestContext,
    patient_id: UUID,
    form: dict[str, Any],
    errors: dict[str, list[str]],
    status: int = 200,
) -> Response:
    with ctx.reader() as r:
        patient = get_patient(r, patient_id)
    return render(
        request,
        "episode_new.html",
        status,
        patient=patient,
        form=form,
        errors=errors,
        conditions=conditions().conditions,
        codes=_codes(),
        modalities=list(Modality),
        plan_words=PLAN_WORDS,
    )


@router.get("/patients/{patient_id}/episodes/new", response_model=None)
def new_episode_form(request: Request, patient_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    form = {"opened_on": today(clinic_zone(ctx)).isoformat(), "plan-dry_needling": "on"}
    try:
        return _form_page(request, ctx, patient_id, form, {})
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/patients/{patient_id}/episodes/new", response_model=None)
async def new_episode(request: Request, patient_id: UUID) -> Response:
    return await posted_form(request, _open, patient_id)


def _open(
    request: Request, ctx: RequestContext, patient_id: UUID, form: dict[str, Any]
) -> Response:
    plan = [
        {
            "modality": m.value,
            "description": text(form, f"plan-{m.value}-description"),
            "sessions_per_week": optional(text(form, f"plan-{m.value}-per_week")),
        }
        for m in Modality
        if text(form, f"plan-{m.value}") == "on"
    ]
    try:
        cmd = OpenEpisode.model_validate(
            {
                "patient_id": patient_id,
                "condition": text(form, "condition"),
                "icd10_code": optional(text(form, "icd10_code").upper()),
                "onset_date": text(form, "onset_date"),
                "opened_on": text(form, "opened_on"),
                "goals": text(form, "goals"),
                "plan": plan,
            }
        )
        episode = open_episode(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        errors = field_errors(err)
        if isinstance(err, ValidationError) and "" in errors:
            errors["onset_date"] = errors.pop("")
        return _form_page(request, ctx, patient_id, form, errors, 400)
    return see_other(f"/episodes/{episode.id}")


@router.get("/episodes/{episode_id}", response_model=None)
def episode_page(request: Request, episode_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            detail = episode_detail(r, episode_id)
            patient = get_patient(r, detail.episode.patient_id)
            sessions = episode_sessions(r, episode_id)
    except DomainError as err:
        return refusal_page(request, err)
    cond = conditions().get(detail.episode.condition)
    return render(
        request,
        "episode.html",
        detail=detail,
        episode=detail.episode,
        patient=patient,
        sessions=list(reversed(sessions)),
        condition=cond,
    )
