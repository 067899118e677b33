"""The clinician's side of questionnaires from home (issue 16): on an episode, choose
questionnaires and e-mail the patient a link (the clinic's plan for the condition, or the
default, is ticked for the time point the episode is at); see what the patient answered,
marked patient-reported; withdraw a link. And the clinic's outbox: each message's state."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.questionnaires import (
    assign_questionnaires,
    cancel_questionnaire,
    revoke_questionnaire_link,
)
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.commands import AssignQuestionnaires
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import DomainError
from needlepoint.domain.instruments import library
from needlepoint.domain.permissions import Permission
from needlepoint.domain.questionnaires import (
    TIME_POINT_WORDS,
    self_report_instruments,
    time_point_now,
)
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.patients import get_patient
from needlepoint.queries.questionnaires import (
    outbox,
    patient_questionnaires,
    reported_scores,
    schedule_for,
)
from needlepoint.web.context import RequestContext, patient_links_base
from needlepoint.web.ui.forms import (
    Errors,
    clinic_zone,
    field_errors,
    many,
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
    errors: Errors,
    status: int = 200,
    chosen: list[str] | None = None,
) -> Response:
    try:
        with ctx.reader() as r:
            detail = episode_detail(r, episode_id)
            patient = get_patient(r, detail.episode.patient_id)
            state = patient_questionnaires(r, patient.id)
            schedule = schedule_for(r, detail.episode.condition)
            done_ids = [a.measurement_id for a in state.assignments if a.measurement_id]
            scores = reported_scores(r, done_ids)
    except DomainError as err:
        return refusal_page(request, err)
    episode = detail.episode
    point = time_point_now(episode.opened_on, episode.closed_on, today(clinic_zone(ctx)))
    suggested = chosen if chosen is not None else schedule.asked_at(point)
    return render(
        request,
        "episode_questionnaires.html",
        status,
        episode=episode,
        patient=patient,
        condition=conditions().get(episode.condition),
        assignments=[a for a in state.assignments if a.episode_id == episode.id],
        link=state.link,
        scores=scores,
        instruments=self_report_instruments(),
        library=library(),
        suggested=set(suggested),
        time_point=point,
        time_point_words=TIME_POINT_WORDS,
        sent="sent" in request.query_params,
        errors=errors,
    )


@router.get("/episodes/{episode_id}/questionnaires", response_model=None)
def questionnaires_page(request: Request, episode_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    return _page(request, ctx, episode_id, {})


@router.post("/episodes/{episode_id}/questionnaires", response_model=None)
async def send_questionnaires(request: Request, episode_id: UUID) -> Response:
    return await posted_form(request, _send, episode_id)


def _send(
    request: Request, ctx: RequestContext, episode_id: UUID, form: dict[str, Any]
) -> Response:
    chosen = many(form, "instrument_ids")
    try:
        cmd = AssignQuestionnaires.model_validate(
            {
                "episode_id": episode_id,
                "instrument_ids": chosen,
                "send": True,
                "base_url": patient_links_base(request),
            }
        )
        assign_questionnaires(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, episode_id, field_errors(err), status=400, chosen=chosen)
    return see_other(f"/episodes/{episode_id}/questionnaires?sent=1")


@router.post("/episodes/{episode_id}/questionnaires/revoke", response_model=None)
async def revoke_link(request: Request, episode_id: UUID) -> Response:
    return await posted_form(request, _revoke, episode_id)


def _revoke(
    request: Request, ctx: RequestContext, episode_id: UUID, form: dict[str, Any]
) -> Response:
    try:
        revoke_questionnaire_link(ctx.uow(), ctx.actor, UUID(text(form, "link_id")))
    except ValueError:
        return _page(request, ctx, episode_id, {"link_id": ["no such link"]}, status=400)
    except DomainError as err:
        return _page(request, ctx, episode_id, field_errors(err), status=400)
    return see_other(f"/episodes/{episode_id}/questionnaires")


@router.post("/questionnaires/{assignment_id}/cancel", response_model=None)
async def cancel(request: Request, assignment_id: UUID) -> Response:
    """The chart's "Withdraw" on a questionnaire the patient has not answered."""
    return await posted_form(request, _cancel, assignment_id)


def _cancel(
    request: Request, ctx: RequestContext, assignment_id: UUID, form: dict[str, Any]
) -> Response:
    withdrawn = cancel_questionnaire(ctx.uow(), ctx.actor, assignment_id)  # refusals: a page
    return see_other(f"/patients/{withdrawn.patient_id}?withdrawn=1#questionnaires-due")


@router.get("/outbox", response_model=None)
def outbox_page(request: Request) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            found = outbox(r)
    except DomainError as err:
        return refusal_page(request, err)
    return render(request, "outbox.html", outbox=found)


# -- the clinic's plan per condition (the owner) -------------------------------------------


def _plan_page(
    request: Request,
    ctx: RequestContext,
    condition: str,
    errors: Errors,
    status: int = 200,
    saved: bool = False,
) -> Response:
    from needlepoint.domain.enums import TimePoint
    from needlepoint.queries.questionnaires import clinic_plans

    if conditions().get(condition) is None:
        condition = conditions().conditions[0].id
    try:
        with ctx.reader() as r:
            r.require(Permission.READ_CLINICAL)
            schedule = schedule_for(r, condition)
            chosen = clinic_plans(r)
    except DomainError as err:
        return refusal_page(request, err)
    return render(
        request,
        "questionnaire_plan.html",
        status,
        conditions=conditions().conditions,
        condition=conditions().get(condition),
        schedule=schedule,
        chosen=chosen,
        instruments=self_report_instruments(),
        time_points=list(TimePoint),
        time_point_words=TIME_POINT_WORDS,
        is_owner=ctx.role is Role.OWNER,
        errors=errors,
        saved=saved,
    )


@router.get("/settings/questionnaires", response_model=None)
def plan_page(request: Request, condition: str = "neck_pain") -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    return _plan_page(request, ctx, condition, {}, saved="saved" in request.query_params)


@router.post("/settings/questionnaires/{condition}", response_model=None)
async def save_plan(request: Request, condition: str) -> Response:
    return await posted_form(request, _save_plan, condition)


def _save_plan(
    request: Request, ctx: RequestContext, condition: str, form: dict[str, Any]
) -> Response:
    from needlepoint.actions.questionnaires import set_questionnaire_plan
    from needlepoint.domain.commands import SetQuestionnairePlan

    chosen: dict[str, list[str]] = {}
    for value in many(form, "asked"):
        iid, _, point = value.partition(":")
        chosen.setdefault(iid, []).append(point)
    every = text(form, "every_n_days")
    days = [d.strip() for d in text(form, "follow_up_days").split(",") if d.strip()]
    try:
        cmd = SetQuestionnairePlan.model_validate(
            {
                "condition": condition,
                "instruments": chosen,
                "every_n_days": every or None,
                "follow_up_days": days,
            }
        )
        set_questionnaire_plan(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _plan_page(request, ctx, condition, field_errors(err), status=400)
    return see_other(f"/settings/questionnaires?condition={condition}&saved=1")
