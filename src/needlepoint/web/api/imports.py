"""Import from another system over the API (owner only; docs/import.md): the CSV
layout's files, or FHIR R4 NDJSON files or Bundles (docs/fhir.md), as text in one JSON
document; `dry_run` to check without writing. The report names every problem (file, row,
column, reason). Large clinics import with the CLI (`needlepoint import`): a request body
is limited in size (`NEEDLEPOINT_MAX_BODY_BYTES`)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.permissions import Permission
from needlepoint.importing.csv_reader import LAYOUT_BY_NAME
from needlepoint.importing.engine import run_import
from needlepoint.importing.readers import READERS
from needlepoint.web.context import ApiContext, requires, respond

router = APIRouter(tags=["imports"])

# A plain file name: it becomes a path in the import's private folder (no "/" or "..").
_FHIR_FILE = re.compile(r"[A-Za-z0-9_-]{1,60}\.(ndjson|json)")


class ImportRequest(BaseModel):
    """The export to import: `files` maps each file name to its text. `csv`: the files
    of the layout (`patients.csv`, `episodes.csv`, `sessions.csv`, and the optional
    ones); `fhir`: FHIR R4 NDJSON files (`Patient.ndjson`, …, as a Bulk Data export
    writes them) or Bundles (`*.json`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "fhir"] = "csv"
    files: dict[Annotated[str, Field(max_length=64)], str]


class ImportProblem(BaseModel):
    source: str
    record: str
    field: str
    reason: str
    patient_external_id: str | None = None


class ImportResult(BaseModel):
    dry_run: bool
    source: str
    patients_read: int
    patients_imported: int
    patients_skipped: int
    patients_failed: int
    sessions_imported: int
    measurements_imported: int
    seconds: float
    problems: list[ImportProblem]


@router.post(
    "/imports",
    response_model=ImportResult,
    openapi_extra=requires(Permission.IMPORT_RECORDS),
)
def post_import(
    ctx: ApiContext,
    request: Request,
    body: ImportRequest,
    dry_run: Annotated[bool, Query(description="check and report; write nothing")] = False,
) -> Response:
    """Import patients (with episodes, signed notes, measurements) from another system's
    export, each patient whole or not at all; patients imported before are skipped.
    The answer is the report: what was imported and every problem found (a patient
    with a problem is not imported). Owner only."""
    with ctx.reader() as r:
        r.require(Permission.IMPORT_RECORDS)
    for i, name in enumerate(body.files):
        if body.format == "csv" and name not in LAYOUT_BY_NAME:
            raise InvalidInput(
                f"{name!r} is not a file of the layout ({', '.join(LAYOUT_BY_NAME)})",
                field=f"files.{i}",
            )
        if body.format == "fhir" and not _FHIR_FILE.fullmatch(name):
            raise InvalidInput(
                f"{name!r} is not a FHIR file name (a resource type with .ndjson, or a "
                "Bundle's name with .json: letters, digits, '-' and '_')",
                field=f"files.{i}",
            )
    with tempfile.TemporaryDirectory(prefix="needlepoint-import-") as folder:
        os.chmod(folder, 0o700)
        for name, text in body.files.items():
            path = Path(folder) / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        read = READERS[body.format](Path(folder))
    report = run_import(
        request.app.state.engine,
        ctx.actor,
        read.patients,
        source=body.format,
        dry_run=dry_run,
        problems=read.problems,
        workers=1,  # no worker processes forked from the (threaded) server
    )
    return respond(report.as_dict())
