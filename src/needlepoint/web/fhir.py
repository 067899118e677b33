"""FHIR R4 endpoints under /fhir/R4 (issue 17 item 1): the CapabilityStatement, a
patient's `$everything`, and the clinic-level Bulk Data export (kick-off, status poll,
NDJSON files, cancel).

The same bearer tokens, permissions, clinic isolation and read auditing as the JSON API
(`web.context.ApiContext`, `queries.reader`); errors are the API's problem documents.
The resources come from `adapters.fhir.mapping` (R4B models) through `queries.fhir`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from needlepoint import __version__
from needlepoint.adapters.db import fhir_exports as store
from needlepoint.adapters.fhir import mapping
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import InvalidInput, NotFound, PermissionDenied
from needlepoint.domain.permissions import Permission
from needlepoint.queries import fhir, fhir_bulk
from needlepoint.queries.reader import Reader
from needlepoint.web.context import ApiContext, requires

BASE = "/fhir/R4"
FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})

router = APIRouter(tags=["fhir"])


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE


def _fhir(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=FHIR_JSON, headers=headers)


_FHIR_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "a FHIR resource (JSON)"}
}


@router.get(
    "/fhir/R4/metadata",
    summary="FHIR CapabilityStatement",
    response_class=Response,
    responses=_FHIR_ANSWER,
)
def metadata(request: Request) -> Response:
    """What this server offers, as a FHIR CapabilityStatement (no health information:
    open, as FHIR clients read it before authenticating)."""
    everything_op = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    export_op = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
    statement = CapabilityStatement.model_validate(
        {
            "status": "active",
            "date": datetime.now(UTC).date().isoformat(),
            "kind": "instance",
            "software": {"name": "Needlepoint", "version": __version__},
            "implementation": {
                "description": "Needlepoint FHIR export (read only)",
                "url": base_url(request),
            },
            "fhirVersion": "4.3.0",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": (
                            "Bearer API tokens (Authorization: Bearer …), the same as the "
                            "JSON API's: permissions by role, one clinic per token"
                        )
                    },
                    "resource": [
                        {
                            "type": "Patient",
                            "operation": [{"name": "everything", "definition": everything_op}],
                        },
                        *({"type": t} for t in mapping.RESOURCE_TYPES if t != "Patient"),
                    ],
                    "operation": [{"name": "export", "definition": export_op}],
                }
            ],
        }
    )
    return _fhir(statement.model_dump_json(exclude_none=True))


@router.get(
    "/fhir/R4/Patient/{patient_id}/$everything",
    summary="A patient's whole record as a FHIR Bundle",
    response_class=Response,
    responses=_FHIR_ANSWER,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def patient_everything(ctx: ApiContext, request: Request, patient_id: UUID) -> Response:
    """Every resource of the patient's record (signed notes), the practitioners it
    names and the questionnaires it answers, as a searchset Bundle. Audited as a
    disclosure of the patient's record."""
    with ctx.reader() as r:
        found = fhir.everything(r, patient_id, base_url(request))
    return _fhir(orjson.dumps(found))


@router.get(
    "/fhir/R4/$export",
    summary="Bulk Data export of the clinic (kick-off)",
    status_code=202,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def export_kick_off(
    ctx: ApiContext,
    request: Request,
    prefer: Annotated[str | None, Header()] = None,
    output_format: Annotated[str | None, Query(alias="_outputFormat")] = None,
    types: Annotated[str | None, Query(alias="_type")] = None,
    since: Annotated[str | None, Query(alias="_since")] = None,
) -> Response:
    """Start exporting every patient's record of the clinic as NDJSON files, one per
    resource type. Requires `Prefer: respond-async`; answers 202 with the status URL in
    `Content-Location`. Audited as a disclosure (the kick-off, and each patient)."""
    actor = ctx.actor  # authenticate first
    if prefer is None or "respond-async" not in prefer.lower():
        raise InvalidInput(
            "send Prefer: respond-async (a bulk export is asynchronous)", field="Prefer"
        )
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise InvalidInput(
            f"_outputFormat {output_format!r}: only application/fhir+ndjson", field="_outputFormat"
        )
    if since is not None:
        raise InvalidInput("_since is not supported: the export is always complete", field="_since")
    wanted = fhir_bulk.requested_types(types)
    engine = request.app.state.engine
    with ctx.reader() as r:
        job = fhir_bulk.kick_off(r, engine, str(request.url), wanted)
    base = base_url(request)
    requester = fhir_bulk.Requester(
        actor.clinic_id, actor.user_id, ctx.role, actor.request_id, actor.source_address
    )
    fhir_bulk.start_in_background(
        engine, job, requester, lambda t: f"{base}/$export-file/{job.id}/{t}.ndjson"
    )
    return Response(
        status_code=202, headers={"Content-Location": f"{base}/$export-status/{job.id}"}
    )


def _own_job(r: Reader, job_id: UUID, engine: sa.Engine) -> store.ExportJob:
    """The export job, to the clinical staff member who started it or the owner, under
    the same rule as starting one now (`require_clinic_export`): an export made before
    the clinic restricted records to each patient's care team is no longer theirs to
    read. A finished export past `store.KEPT_FOR` is gone (its files deleted here)."""
    fhir.require_clinic_export(r)
    job = store.get_job(r.conn, r.clinic_id, job_id)
    if job is None:
        raise NotFound(f"no export {job_id} in this clinic", field="job_id")
    if job.requested_by != r.user_id and r.role != Role.OWNER:
        raise PermissionDenied("only who started an export (or the owner) may use it")
    if job.current_status(datetime.now(UTC)) == store.EXPIRED:
        store.cancel(engine, job)
        hours = int(store.KEPT_FOR.total_seconds() // 3600)
        raise NotFound(
            f"export {job_id} has expired: a finished export is kept {hours} hours",
            field="job_id",
        )
    return job


@router.get(
    "/fhir/R4/$export-status/{job_id}",
    summary="Bulk Data export status",
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def export_status(ctx: ApiContext, request: Request, job_id: UUID) -> Response:
    """202 with `X-Progress` while running; 200 with the manifest when done; 500 with an
    OperationOutcome when it failed; 404 once cancelled."""
    with ctx.reader() as r:
        job = _own_job(r, job_id, request.app.state.engine)
    status = job.current_status(datetime.now(UTC))
    if status == store.RUNNING:
        progress = f"{job.patients_done} of {job.patients_total} patients"
        return Response(status_code=202, headers={"X-Progress": progress, "Retry-After": "2"})
    if status == store.COMPLETED:
        manifest = {
            "transactionTime": job.requested_at.astimezone(UTC).isoformat(),
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": job.output or [],
            "error": [],
        }
        return Response(_json(manifest), media_type="application/json")
    if status == store.CANCELLED:
        raise NotFound(f"export {job_id} was cancelled", field="job_id")
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "exception",
                "diagnostics": job.error or "the export stopped (its server process ended)",
            }
        ],
    }
    return _fhir(_json(outcome), status=500)


def _json(body: object) -> bytes:
    return orjson.dumps(body)


@router.delete(
    "/fhir/R4/$export-status/{job_id}",
    summary="Cancel a Bulk Data export (or delete its files)",
    status_code=202,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def export_cancel(ctx: ApiContext, request: Request, job_id: UUID) -> Response:
    """Stop a running export, or delete a finished export's files: 202."""
    with ctx.reader() as r:
        job = _own_job(r, job_id, request.app.state.engine)
    if job.status == store.CANCELLED:
        raise NotFound(f"export {job_id} was cancelled", field="job_id")
    store.cancel(request.app.state.engine, job)
    return Response(status_code=202)


@router.get(
    "/fhir/R4/$export-file/{job_id}/{resource_type}.ndjson",
    summary="One NDJSON file of a finished Bulk Data export",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}, "description": "one resource per line"}},
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def export_file(
    ctx: ApiContext, request: Request, job_id: UUID, resource_type: str
) -> StreamingResponse:
    """The file's lines, streamed piece by piece. Audited as a disclosure."""
    with ctx.reader() as r:
        job = _own_job(r, job_id, request.app.state.engine)
        listed = {o["type"] for o in job.output or []}
        if job.status != store.COMPLETED or resource_type not in listed:
            raise NotFound(f"no {resource_type} file in export {job_id}", field="resource_type")
        fhir.note_disclosed(r, "fhir_export_file", job.id, None)
    return StreamingResponse(
        store.read_chunks(request.app.state.engine, job, resource_type), media_type=NDJSON
    )
