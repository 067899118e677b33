"""The de-identified research export (owner only): one zip archive with each table as
Parquet and CSV, the data dictionary and the k-anonymity report
(`docs/research-export.md`). Every export is recorded on the audit trail as a disclosure
(`research.exported`)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from needlepoint.actions.research import export_research
from needlepoint.adapters.research_files import release_zip
from needlepoint.domain.permissions import Permission
from needlepoint.domain.research import ExportResearch
from needlepoint.web.context import ApiContext, requires

router = APIRouter(tags=["research"])


@router.post(
    "/research-exports",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the release, zipped"}},
    openapi_extra=requires(Permission.EXPORT_RESEARCH),
)
def create_research_export(ctx: ApiContext, body: ExportResearch) -> Response:
    """A de-identified research release of the clinic's signed care (HIPAA Safe Harbor,
    45 CFR 164.514(b)(2)): dates reduced to the year (`dates: "year"`, the default: Safe
    Harbor to the letter) or shifted per patient (`"shift"`, intervals kept: full dates,
    for an expert determination or a data use agreement); episodes in classes of fewer
    than `k` patients on age band, sex, condition and region suppressed. Answers a zip
    archive; nothing is stored on the server and no mapping to the records exists."""
    release = export_research(ctx.uow(), ctx.actor, body)
    today = datetime.now(UTC).date()
    return Response(
        release_zip(release, today=today),
        media_type="application/zip",
        headers={
            "Content-Disposition": (
                f'attachment; filename="research-export-{today.isoformat()}.zip"'
            )
        },
    )
