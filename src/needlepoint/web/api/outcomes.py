"""Measurements, analgesic use, the instrument library and each episode's benefits."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from needlepoint.actions import outcomes as actions
from needlepoint.domain import instruments
from needlepoint.domain.benefits import EpisodeBenefits
from needlepoint.domain.commands import RecordMeasurement, RecordMedicationUse
from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.instruments import InstrumentInfo
from needlepoint.domain.permissions import Permission
from needlepoint.queries import benefits as benefit_queries
from needlepoint.queries import outcomes as queries
from needlepoint.web.context import ApiContext, requires, respond

router = APIRouter(tags=["outcomes"])


@router.post(
    "/measurements",
    response_model=Measurement,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_MEASUREMENT),
)
def record_measurement(ctx: ApiContext, cmd: RecordMeasurement) -> Response:
    """Record an instrument's item answers; the score is computed from them."""
    return respond(actions.record_measurement(ctx.uow(), ctx.actor, cmd), status=201)


@router.get(
    "/patients/{patient_id}/measurements",
    response_model=list[Measurement],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def patient_measurements(
    ctx: ApiContext,
    patient_id: UUID,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """A patient's measurements, oldest first."""
    with ctx.reader() as r:
        found = queries.patient_measurements(r, patient_id, instrument)
        return respond(found)


@router.post(
    "/medications",
    response_model=MedicationUse,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_MEDICATION),
)
def record_medication(ctx: ApiContext, cmd: RecordMedicationUse) -> Response:
    """Log analgesic use (drug, class, dose, days per week)."""
    return respond(actions.record_medication_use(ctx.uow(), ctx.actor, cmd), status=201)


@router.get(
    "/patients/{patient_id}/medications",
    response_model=list[MedicationUse],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def patient_medication(ctx: ApiContext, patient_id: UUID) -> Response:
    """A patient's analgesic-use log."""
    with ctx.reader() as r:
        found = queries.patient_medication(r, patient_id)
        return respond(found)


@router.get(
    "/episodes/{episode_id}/benefits",
    response_model=EpisodeBenefits,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def episode_benefits(ctx: ApiContext, episode_id: UUID) -> Response:
    """The episode's benefit summary: for each of the eight benefits, the measures that
    inform it (baseline → latest, change, responder status, time to first meaningful
    improvement), the published evidence, and "not measured" where nothing informs it."""
    with ctx.reader() as r:
        summary = benefit_queries.episode_benefits(r, episode_id)
        return respond(summary)


@router.get(
    "/instruments",
    response_model=list[InstrumentInfo],
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def list_instruments(ctx: ApiContext) -> Response:
    """The instrument library: items in order, ranges, direction, scoring and missing-item
    rules, MCID/MDC with their sources ("no published threshold" where none) and codes."""
    with ctx.reader():  # signed-in users only, like every API route
        library = instruments.library().values()
        return respond([instruments.describe(i).model_dump(mode="json") for i in library])
