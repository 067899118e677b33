"""Measurements and analgesic use."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from needlepoint.actions import outcomes as actions
from needlepoint.domain.commands import RecordMeasurement, RecordMedicationUse
from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.permissions import Permission
from needlepoint.queries import outcomes as queries
from needlepoint.queries.accounts import require_patient_access
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
        require_patient_access(r, patient_id)
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
        require_patient_access(r, patient_id)
        return respond(found)
