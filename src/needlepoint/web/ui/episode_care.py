"""An episode's analgesic log and its discharge, in the app: log each analgesic the
patient takes (drug, class, dose, days per week; 0 days = stopped) and close the episode
with the date and reason of discharge. Both through their actions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.episodes import close_episode
from needlepoint.actions.outcomes import record_medication_use
from needlepoint.domain.commands import CloseEpisode, RecordMedicationUse
from needlepoint.domain.enums import DrugClass
from needlepoint.domain.errors import DomainError
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.outcomes import patient_medication
from needlepoint.queries.patients import get_patient
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    clinic_zone,
    field_errors,
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


def _page(
    request: Request,
    ctx: RequestContext,
    episode_id: UUID,
    form: dict[str, Any],
    errors: Errors,
    status: int = 200,
) -> Response:
    with ctx.reader() as r:
        detail = episode_detail(r, episode_id)
        patient = get_patient(r, detail.episode.patient_id)
        log = [
            m
            for m in patient_medication(r, patient.id)
            if m.episode_id in (None, detail.episode.id)
        ]
    return render(
        request,
        "episode_care.html",
        status,
        episode=detail.episode,
        patient=patient,
        log=log,
        drug_classes=[d.value for d in DrugClass],
        today=today(clinic_zone(ctx)).isoformat(),  # the clinic's date
        form=form,
        errors=errors,
    )


@router.get("/episodes/{episode_id}/care", response_model=None)
def care_page(request: Request, episode_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        return _page(request, ctx, episode_id, {}, {})
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/episodes/{episode_id}/medications", response_model=None)
async def log_medication(request: Request, episode_id: UUID) -> Response:
    return await posted_form(request, _medication, episode_id)


def _medication(
    request: Request, ctx: RequestContext, episode_id: UUID, form: dict[str, Any]
) -> Response:
    try:
        with ctx.reader() as r:
            episode = episode_detail(r, episode_id).episode
        cmd = RecordMedicationUse.model_validate(
            {
                "patient_id": episode.patient_id,
                "episode_id": episode.id,
                "drug": text(form, "drug"),
                "drug_class": text(form, "drug_class"),
                "dose_mg": text(form, "dose_mg").replace(",", ".") or None,
                "days_per_week": text(form, "days_per_week"),
                "recorded_on": text(form, "recorded_on"),
            }
        )
        record_medication_use(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, episode_id, form, field_errors(err), status=400)
    return see_other(f"/episodes/{episode_id}/care#analgesics")


@router.post("/episodes/{episode_id}/close", response_model=None)
async def discharge(request: Request, episode_id: UUID) -> Response:
    return await posted_form(request, _close, episode_id)


def _close(
    request: Request, ctx: RequestContext, episode_id: UUID, form: dict[str, Any]
) -> Response:
    try:
        with ctx.reader() as r:
            episode = episode_detail(r, episode_id).episode
        cmd = CloseEpisode.model_validate(
            {
                "episode_id": episode.id,
                "expected_version": episode.version,
                "closed_on": text(form, "closed_on"),
                "discharge_reason": text(form, "discharge_reason"),
            }
        )
        close_episode(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, episode_id, form, field_errors(err), status=400)
    return see_other(f"/episodes/{episode_id}")
