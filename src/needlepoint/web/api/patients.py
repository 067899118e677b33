"""Patients: register, search, read, update demographics, timeline."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from needlepoint.actions import patients as actions
from needlepoint.domain.commands import PatientChanges, RegisterPatient, UpdatePatient
from needlepoint.domain.entities import Patient
from needlepoint.domain.permissions import Permission
from needlepoint.queries import patients as queries
from needlepoint.queries.patients import Page
from needlepoint.queries.timeline import TimelineEntry, patient_timeline
from needlepoint.web.context import MAX_OFFSET, ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["patients"])


@router.post(
    "/patients",
    response_model=Patient,
    status_code=201,
    openapi_extra=requires(Permission.REGISTER_PATIENT),
)
def register_patient(ctx: ApiContext, cmd: RegisterPatient) -> Response:
    """Register a patient."""
    patient = actions.register_patient(ctx.uow(), ctx.actor, cmd)
    return respond(
        patient, status=201, version=patient.version, location=f"/api/v1/patients/{patient.id}"
    )


@router.get("/patients", response_model=Page, openapi_extra=requires(Permission.READ_DEMOGRAPHICS))
def search_patients(
    ctx: ApiContext,
    q: Annotated[str, Query(max_length=200, description="words of a name or the MRN")] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Patients of the clinic, by name; `q` filters by name or chart number."""
    with ctx.reader() as r:
        return respond(queries.search_patients(r, q, limit=limit, offset=offset))


@router.get(
    "/patients/{patient_id}",
    response_model=Patient,
    openapi_extra=requires(Permission.READ_DEMOGRAPHICS),
)
def get_patient(ctx: ApiContext, patient_id: UUID) -> Response:
    """One patient; the ETag is the version to send back in If-Match when updating."""
    with ctx.reader() as r:
        patient = queries.get_patient(r, patient_id)
    return respond(patient, version=patient.version)


@router.patch(
    "/patients/{patient_id}",
    response_model=Patient,
    openapi_extra=requires(Permission.UPDATE_PATIENT),
)
def update_patient(
    ctx: ApiContext,
    patient_id: UUID,
    changes: PatientChanges,
    version: IfMatch,
) -> Response:
    """Change demographics. Requires If-Match; a stale version gets 412."""
    cmd = UpdatePatient(
        patient_id=patient_id,
        expected_version=version,
        **changes.model_dump(exclude_unset=True),
    )
    patient = actions.update_patient(ctx.uow(), ctx.actor, cmd)
    return respond(patient, version=patient.version)


@router.get(
    "/patients/{patient_id}/timeline",
    response_model=list[TimelineEntry],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def timeline(ctx: ApiContext, patient_id: UUID) -> Response:
    """Everything recorded for the patient, newest first."""
    with ctx.reader() as r:
        found = patient_timeline(r, patient_id)
        return respond(found)
