"""Questionnaire completion rates (issue 16): n completed / n sent with a 95 % Wilson
interval per questionnaire, per time point and per clinician, and the published figures
with their sources (`analytics.completion`). Only submitted responses count."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel

from needlepoint.analytics.completion import completion
from needlepoint.domain.clinic_time import local_date, zone
from needlepoint.domain.permissions import Permission
from needlepoint.web.context import ApiContext, requires, respond

router = APIRouter(tags=["analytics"])


class RateOut(BaseModel):
    """One group's completion: completed of asked (due and not withdrawn), the share
    and its 95 % Wilson interval (null without any questionnaire due)."""

    key: str
    label: str
    completed: int
    asked: int
    share: float | None
    low: float | None
    high: float | None


class PublishedOut(BaseModel):
    """A published figure beside the clinic's rates, with its source and how well it was
    checked ("figure from the issue, source not verified" where it was not)."""

    label: str
    figure: str
    low: float
    high: float
    added_percentage_points: bool
    source: str
    checked: str


class CompletionOut(BaseModel):
    as_of: str
    counted: str
    overall: RateOut
    by_questionnaire: list[RateOut]
    by_time_point: list[RateOut]
    by_clinician: list[RateOut]
    published: list[PublishedOut]
    note: str


@router.get(
    "/analytics/completion",
    response_model=CompletionOut,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def completion_rates(ctx: ApiContext) -> Response:
    """How many of the questionnaires due so far (in the clinic's local date) the
    patients answered, three ways, beside the published figures."""
    with ctx.reader() as r:
        today = local_date(datetime.now(UTC), zone(r.clinic().time_zone))
        return respond(completion(r, today).as_dict())
