"""The signed note as it reads once locked: who answers for it (the clinician of record
and the signer, with credential, licence and dry needling training; each amendment's
author), the patient it belongs to (name, date of birth, chart number), every time in the
clinic's zone with its abbreviation; and the adverse events learned of after the session,
recorded against the note and followed up by appended entries, with the jurisdiction's
reporting deadline where the data has one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.adverse_events import add_follow_up, record_adverse_event
from needlepoint.domain.adverse_event_reports import report_deadline
from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import muscles
from needlepoint.domain.commands import AddAdverseEventFollowUp, RecordAdverseEvent
from needlepoint.domain.entities import AdverseEvent, Session
from needlepoint.domain.enums import AdverseEventKind, FollowUpKind, SessionStatus, Severity
from needlepoint.domain.errors import DomainError
from needlepoint.domain.instruments import library
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.patients import get_patient
from needlepoint.queries.sessions import session_detail
from needlepoint.queries.signatures import follow_ups, signatories
from needlepoint.web.context import RequestContext
from needlepoint.web.ui import body_chart
from needlepoint.web.ui.forms import (
    Errors,
    clinic_zone,
    field_errors,
    parse_local,
    posted_form,
    refusal_page,
    render,
    see_other,
    text,
    today,
)

router = APIRouter(include_in_schema=False)

FOLLOW_UP_WORDS = {
    FollowUpKind.ONSET: "Onset",
    FollowUpKind.ACTION: "Action taken",
    FollowUpKind.RESOLUTION: "Resolution",
    FollowUpKind.REPORTED: "Reported to the board",
    FollowUpKind.NOTE: "Note",
}


def signed_page(
    request: Request,
    ctx: RequestContext,
    session_id: UUID,
    errors: Errors | None = None,
    amendment: dict[str, str] | None = None,
    status: int = 200,
    *,
    late: dict[str, str] | None = None,
    follow: dict[str, str] | None = None,
) -> Response:
    """The signed note (a draft is sent to its editor)."""
    from needlepoint.web.ui.notes import NoteForm, chart_marks, site_rows  # (imports this)

    tz = clinic_zone(ctx)
    with ctx.reader() as r:
        d = session_detail(r, session_id)
        if d.session.status is not SessionStatus.SIGNED:  # drafts are edited, not amended
            return see_other(f"/sessions/{session_id}")
        episode = episode_detail(r, d.session.episode_id).episode
        patient = get_patient(r, d.session.patient_id)
        clinic = r.clinic()
        entries = follow_ups(r, [a.id for a in d.adverse_events])
        people = signatories(
            r,
            [
                d.session.clinician_id,
                *([d.session.signed_by] if d.session.signed_by else []),
                *(a.author_id for a in d.amendments),
                *(a.recorded_by for a in d.adverse_events),
                *(f.recorded_by for fs in entries.values() for f in fs),
            ],
        )
    deadlines = {
        a.id: report_deadline(a, entries.get(a.id, []), clinic.jurisdiction, tz)
        for a in d.adverse_events
    }
    catalogue = {m.id: m for m in muscles().muscles}
    cpt = next((c for c in billing_data().cpt.codes if c.code == d.session.cpt_code), None)
    return render(
        request,
        "note_signed.html",
        status,
        d=d,
        episode=episode,
        patient=patient,
        catalogue=catalogue,
        cpt=cpt,
        instruments=library(),
        split_mark=body_chart.split_mark,
        marks=chart_marks(NoteForm("", {}, site_rows(d.sites), [], [])),
        regions=body_chart.regions(),
        errors=errors or {},
        amendment=amendment or {},
        people=people,
        clinician=people.get(d.session.clinician_id),
        signer=people.get(d.session.signed_by) if d.session.signed_by else None,
        follow_ups=entries,
        deadlines=deadlines,
        today=today(tz),
        # Nothing is pre-filled: a late event's onset (the board's deadline counts from it),
        # kind and severity, and a follow-up's time are what the clinician enters.
        late=late or {},
        follow=follow or {},
        follow_words=FOLLOW_UP_WORDS,
        ae_kinds=[k.value for k in AdverseEventKind],
        severities=[s.value for s in Severity],
        time_zone=clinic.time_zone,
        recorded_later={
            a.id
            for a in d.adverse_events
            if d.session.signed_at and a.created_at > d.session.signed_at
        },
    )


ONSET_MISSING = (
    "Onset: enter when the symptoms began (not when you record them): the reporting "
    "deadline counts from the onset."
)
WHEN_MISSING = "When: enter when this happened (not when you record it)."


def _after_signing(event: AdverseEvent, session: Session) -> bool:
    return session.signed_at is not None and event.created_at > session.signed_at


@router.post("/sessions/{session_id}/adverse-events", response_model=None)
async def post_late_event(request: Request, session_id: UUID) -> Response:
    """Record an adverse event learned of after the session, against its signed note."""
    return await posted_form(request, _late_event, session_id)


def _late_event(
    request: Request, ctx: RequestContext, session_id: UUID, form: dict[str, Any]
) -> Response:
    entered = {
        k: text(form, k)
        for k in ("kind", "severity", "onset_at", "description", "action_taken", "reportable")
    }
    if not entered["onset_at"]:
        missing: Errors = {"late.onset_at": [ONSET_MISSING]}
        return signed_page(request, ctx, session_id, missing, status=400, late=entered)
    try:
        cmd = RecordAdverseEvent.model_validate(
            {
                "session_id": session_id,
                "kind": entered["kind"],
                "severity": entered["severity"],
                "onset_at": parse_local(entered["onset_at"], clinic_zone(ctx)),
                "description": entered["description"],
                "action_taken": entered["action_taken"] or None,
                "reportable": entered["reportable"] == "on",
            }
        )
        event = record_adverse_event(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        errors: Errors = {}
        for k, v in field_errors(err).items():
            errors.setdefault(f"late.{k}" if k in entered else "late", []).extend(v)
        return signed_page(request, ctx, session_id, errors, status=400, late=entered)
    return see_other(f"/sessions/{session_id}#ae-{event.id}")


@router.post("/adverse-events/{event_id}/follow-ups", response_model=None)
async def post_follow_up(request: Request, event_id: UUID) -> Response:
    """Append a follow-up entry (onset, action, resolution, report) to an adverse event."""
    return await posted_form(request, _follow_up, event_id)


def _follow_up(
    request: Request, ctx: RequestContext, event_id: UUID, form: dict[str, Any]
) -> Response:
    entered = {k: text(form, k) for k in ("kind", "text", "occurred_at")}
    try:
        with ctx.reader() as r:
            event = r.one(AdverseEvent, event_id, field="adverse_event_id")
        if event.session_id is None:
            return refusal_page(request, DomainError("this event belongs to no note"))
        session_id = event.session_id
    except DomainError as err:
        return refusal_page(request, err)
    if not entered["occurred_at"]:
        missing: Errors = {f"follow.{event_id}.occurred_at": [WHEN_MISSING]}
        return signed_page(request, ctx, session_id, missing, status=400, follow=entered)
    try:
        cmd = AddAdverseEventFollowUp.model_validate(
            {
                "adverse_event_id": event_id,
                "kind": entered["kind"],
                "text": entered["text"],
                "occurred_at": parse_local(entered["occurred_at"], clinic_zone(ctx)),
            }
        )
        add_follow_up(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        errors: Errors = {}
        for k, v in field_errors(err).items():
            key = f"follow.{event_id}.{k}" if k in entered else f"follow.{event_id}"
            errors.setdefault(key, []).extend(v)
        return signed_page(request, ctx, session_id, errors, status=400, follow=entered)
    return see_other(f"/sessions/{session_id}#ae-{event_id}")
