"""The audit report: who did what to which record, when, from where — for the clinic's
owner and auditors (permission READ_AUDIT), as JSON or CSV. Every CSV export is itself
recorded on the audit trail as a disclosure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from needlepoint.adapters.db.tables import patients
from needlepoint.domain.commands import QueryDatetime
from needlepoint.domain.entities import Patient
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission
from needlepoint.queries.audit import AuditPage, Sort, audit_csv, audit_report
from needlepoint.queries.overrides import OverrideItem, override_review
from needlepoint.web.context import MAX_OFFSET, ApiContext, ApiCredentials, requires, respond

router = APIRouter(tags=["audit"])

_MAX_EXPORT = 100_000


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is taken as UTC (the audit trail's zone)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _report(
    ctx: ApiCredentials,
    *,
    since: datetime | None,
    until: datetime | None,
    user_id: UUID | None,
    patient_id: UUID | None,
    action: AuditAction | None,
    sort: Sort,
    limit: int,
    offset: int,
    csv: bool,
) -> Response:
    ctx.actor  # noqa: B018  (authenticate first: an anonymous caller causes no write)
    ctx.settle_reads()  # the report includes every read this process has served
    with ctx.reader() as r:
        page = audit_report(
            r,
            since=_utc(since),
            until=_utc(until),
            user_id=user_id,
            patient_id=patient_id,
            action=action,
            sort=sort,
            limit=_MAX_EXPORT if csv else limit,
            offset=0 if csv else offset,
        )
        if not csv:
            return respond(page)
        # A disclosure names the patient only when one of this clinic's patients was
        # asked for (an unknown id disclosed nobody and names no record).
        disclosed = (
            patient_id if patient_id and r.select(Patient, patients.c.id == patient_id) else None
        )
        r.note(AuditAction.AUDIT_EXPORTED, "audit_report", r.clinic_id, disclosed)
    return Response(
        audit_csv(page.items),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


Since = Annotated[QueryDatetime | None, Query(description="from this time (inclusive)")]
Until = Annotated[QueryDatetime | None, Query(description="until this time (exclusive)")]
UserId = Annotated[UUID | None, Query(description="only this user's actions")]
PatientId = Annotated[UUID | None, Query(description="only events about this patient")]
Action = Annotated[AuditAction | None, Query(description="only this kind of event")]
SortBy = Annotated[Sort, Query(description="occurred_at (oldest first) or -occurred_at")]


@router.get(
    "/audit",
    response_model=AuditPage,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
    openapi_extra=requires(Permission.READ_AUDIT),
)
def audit(
    ctx: ApiContext,
    since: Since = None,
    until: Until = None,
    user_id: UserId = None,
    patient_id: PatientId = None,
    action: Action = None,
    sort: SortBy = "-occurred_at",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    format: Annotated[Literal["json", "csv"], Query(description="csv: download")] = "json",
) -> Response:
    """The clinic's audit trail, filtered by period, user, patient and action."""
    return _report(
        ctx,
        since=since,
        until=until,
        user_id=user_id,
        patient_id=patient_id,
        action=action,
        sort=sort,
        limit=limit,
        offset=offset,
        csv=format == "csv",
    )


@router.get("/audit.csv", response_class=Response, openapi_extra=requires(Permission.READ_AUDIT))
def audit_export(
    ctx: ApiContext,
    since: Since = None,
    until: Until = None,
    user_id: UserId = None,
    patient_id: PatientId = None,
    action: Action = None,
    sort: SortBy = "-occurred_at",
) -> Response:
    """The filtered audit trail as CSV (every event that matches, up to 100,000)."""
    return _report(
        ctx,
        since=since,
        until=until,
        user_id=user_id,
        patient_id=patient_id,
        action=action,
        sort=sort,
        limit=_MAX_EXPORT,
        offset=0,
        csv=True,
    )


@router.get(
    "/overrides",
    response_model=list[OverrideItem],
    openapi_extra=requires(Permission.READ_AUDIT),
)
def overrides(
    ctx: ApiContext,
    since: Annotated[QueryDatetime | None, Query(description="needled from this time")] = None,
    until: Annotated[QueryDatetime | None, Query(description="needled before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Needling sites recorded with a written override of a safety refusal, newest first,
    for the clinic owner's review: the rules overridden, the reason code and the reason."""
    with ctx.reader() as r:
        return respond(override_review(r, since=_utc(since), until=_utc(until), limit=limit))
