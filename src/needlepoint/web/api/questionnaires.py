"""Questionnaires from home (issue 16): assign questionnaires to an episode (and e-mail
the patient a link), a patient's questionnaires, and the clinic's outbox. Never the
link's token or its address: those exist only in the e-mail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from needlepoint.actions import questionnaires as actions
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    ClinicalDate,
    InstrumentId,
    SetQuestionnairePlan,
)
from needlepoint.domain.entities import OutboxMessage, QuestionnaireAssignment
from needlepoint.domain.enums import LinkEnd, MessageKind, OutboxState, TimePoint
from needlepoint.domain.permissions import Permission
from needlepoint.domain.questionnaires import Schedule
from needlepoint.queries import questionnaires as queries
from needlepoint.web.context import ApiContext, patient_links_base, requires, respond

router = APIRouter(tags=["questionnaires"])


class QuestionnaireRequest(BaseModel):
    """Questionnaires for the episode's patient: due today (or `due_on`) at the time
    point the episode is at (or `time_point`); with `send`, a link is e-mailed to the
    patient in the same transaction."""

    model_config = ConfigDict(extra="forbid")
    instrument_ids: Annotated[list[InstrumentId], Field(min_length=1, max_length=12)]
    time_point: TimePoint | None = None
    due_on: ClinicalDate | None = None
    send: bool = True


class LinkState(BaseModel):
    """A link as the clinic sees it (never its token)."""

    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    ended_because: LinkEnd | None
    reminders_sent: int


class Assigned(BaseModel):
    assignments: list[QuestionnaireAssignment]
    link: LinkState | None
    message_state: OutboxState | None


class PatientQuestionnaires(BaseModel):
    assignments: list[QuestionnaireAssignment]
    link: LinkState | None


class OutboxEntry(BaseModel):
    """One outbox message as the clinic sees it (no link, no body)."""

    id: UUID
    kind: MessageKind
    recipient: str
    subject: str
    state: OutboxState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


def _link(link: object) -> dict[str, object] | None:
    if link is None:
        return None
    return {
        name: getattr(link, name)
        for name in ("created_at", "expires_at", "ended_at", "ended_because", "reminders_sent")
    }


def _entry(m: OutboxMessage) -> dict[str, object]:
    return {name: getattr(m, name) for name in OutboxEntry.model_fields}


@router.post(
    "/episodes/{episode_id}/questionnaires",
    response_model=Assigned,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_MEASUREMENT),
)
def assign(
    ctx: ApiContext, request: Request, episode_id: UUID, body: QuestionnaireRequest
) -> Response:
    """Ask the episode's patient to answer questionnaires from home (422 naming the
    field: an instrument the clinician measures, a patient without an e-mail address)."""
    cmd = AssignQuestionnaires(
        episode_id=episode_id,
        instrument_ids=body.instrument_ids,
        time_point=body.time_point,
        due_on=body.due_on,
        send=body.send,
        base_url=patient_links_base(request),
    )
    done = actions.assign_questionnaires(ctx.uow(), ctx.actor, cmd)
    return respond(
        {
            "assignments": done.assignments,
            "link": _link(done.link),
            "message_state": done.message.state if done.message else None,
        },
        status=201,
    )


@router.post(
    "/questionnaires/{assignment_id}/cancel",
    response_model=QuestionnaireAssignment,
    openapi_extra=requires(Permission.RECORD_MEASUREMENT),
)
def cancel(ctx: ApiContext, assignment_id: UUID) -> Response:
    """Withdraw a questionnaire the patient has not answered: no longer pending or
    overdue, not reminded, left out of the completion rates (`cancelled_at` set). One
    the patient answered, or already withdrawn, is refused (422 naming `assignment_id`
    and why); when nothing is left to answer, the patient's open link ends."""
    return respond(actions.cancel_questionnaire(ctx.uow(), ctx.actor, assignment_id))


@router.get(
    "/patients/{patient_id}/questionnaires",
    response_model=PatientQuestionnaires,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def patient_questionnaires(ctx: ApiContext, patient_id: UUID) -> Response:
    """The questionnaires the patient was asked to answer (newest due first), each done
    when it names its measurement; and the newest link's state."""
    with ctx.reader() as r:
        state = queries.patient_questionnaires(r, patient_id)
        return respond({"assignments": state.assignments, "link": _link(state.link)})


@router.get(
    "/outbox",
    response_model=list[OutboxEntry],
    openapi_extra=requires(Permission.READ_DEMOGRAPHICS),
)
def outbox(ctx: ApiContext) -> Response:
    """The clinic's e-mails to patients, newest first (at most 100): state, attempts,
    next attempt, last error."""
    with ctx.reader() as r:
        found = queries.outbox(r)
        return respond([_entry(m) for m in found.messages])


class PlanIn(BaseModel):
    """The clinic's questionnaires for a condition: each questionnaire with its time
    points; during care every N days (null: before each visit); follow-ups in days after
    discharge."""

    model_config = ConfigDict(extra="forbid")
    instruments: Annotated[dict[InstrumentId, list[TimePoint]], Field(min_length=1, max_length=12)]
    every_n_days: Annotated[int, Field(ge=1, le=365)] | None = None
    follow_up_days: Annotated[list[Annotated[int, Field(ge=1, le=730)]], Field(max_length=6)] = [
        42,
        91,
    ]


class PlanOut(BaseModel):
    condition: str
    instruments: dict[str, list[TimePoint]]
    every_n_days: int | None
    follow_up_days: list[int]
    chosen_by_clinic: bool


def _plan_out(condition: str, schedule: Schedule, chosen: bool) -> dict[str, object]:
    return {
        "condition": condition,
        "instruments": {
            iid: sorted(points, key=list(TimePoint).index)
            for iid, points in sorted(schedule.instruments.items())
        },
        "every_n_days": schedule.every_n_days,
        "follow_up_days": list(schedule.follow_up_days),
        "chosen_by_clinic": chosen,
    }


@router.get(
    "/questionnaire-plans",
    response_model=list[PlanOut],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def plans(ctx: ApiContext) -> Response:
    """For each condition, the questionnaires its patients answer and when: the clinic's
    plan, or the product's default (`chosen_by_clinic` false)."""
    from needlepoint.domain.catalogue import conditions

    with ctx.reader() as r:
        r.require(Permission.READ_CLINICAL)
        chosen = queries.clinic_plans(r)
        out = [
            _plan_out(c.id, queries.schedule_for(r, c.id), c.id in chosen)
            for c in conditions().conditions
        ]
        return respond(out)


@router.put(
    "/questionnaire-plans/{condition}",
    response_model=PlanOut,
    openapi_extra=requires(Permission.MANAGE_CLINIC),
)
def set_plan(ctx: ApiContext, condition: str, body: PlanIn) -> Response:
    """Choose the questionnaires and schedule for a condition (owner). Once a condition
    has a plan, the outbox worker sends what falls due by itself."""
    cmd = SetQuestionnairePlan(condition=condition, **body.model_dump())
    plan = actions.set_questionnaire_plan(ctx.uow(), ctx.actor, cmd)
    schedule = Schedule(
        {iid: frozenset(TimePoint(p) for p in pts) for iid, pts in plan.instruments.items()},
        plan.every_n_days,
        tuple(plan.follow_up_days),
    )
    return respond(_plan_out(condition, schedule, True))
