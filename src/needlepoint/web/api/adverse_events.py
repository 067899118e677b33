"""Adverse events learned of after the session, their follow-ups; discarding a draft
note; and who answers for a signed note (issue 15)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter, Response

from needlepoint.actions import adverse_events as actions
from needlepoint.actions import sessions as session_actions
from needlepoint.domain.commands import (
    AddAdverseEventFollowUp,
    AdverseEventReport,
    DiscardSession,
    FollowUpIn,
    RecordAdverseEvent,
)
from needlepoint.domain.entities import AdverseEvent, AdverseEventFollowUp, Session
from needlepoint.domain.permissions import Permission
from needlepoint.queries.patients import get_patient
from needlepoint.queries.sessions import session_detail
from needlepoint.queries.signatures import Signatory, follow_ups, signatories
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["sessions"])


@router.post(
    "/sessions/{session_id}/adverse-events",
    response_model=AdverseEvent,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_SESSION),
)
def record_adverse_event(ctx: ApiContext, session_id: UUID, body: AdverseEventReport) -> Response:
    """Record an adverse event learned of after the session against its signed note
    (422 for a draft: a draft takes its events in the note itself)."""
    cmd = RecordAdverseEvent(session_id=session_id, **body.model_dump())
    return respond(actions.record_adverse_event(ctx.uow(), ctx.actor, cmd), status=201)


@router.post(
    "/adverse-events/{adverse_event_id}/follow-ups",
    response_model=AdverseEventFollowUp,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_SESSION),
)
def add_follow_up(ctx: ApiContext, adverse_event_id: UUID, body: FollowUpIn) -> Response:
    """Append a follow-up entry (onset, action, resolution, reported, note); entries are
    never edited."""
    cmd = AddAdverseEventFollowUp(adverse_event_id=adverse_event_id, **body.model_dump())
    return respond(actions.add_follow_up(ctx.uow(), ctx.actor, cmd), status=201)


@router.delete(
    "/sessions/{session_id}",
    response_model=Session,
    openapi_extra=requires(Permission.RECORD_SESSION),
)
def discard_session(ctx: ApiContext, session_id: UUID, version: IfMatch) -> Response:
    """Discard a draft note and everything in it (409 once signed: a signed note is
    never discarded). Returns the discarded draft."""
    cmd = DiscardSession(session_id=session_id, expected_version=version)
    return respond(session_actions.discard_session(ctx.uow(), ctx.actor, cmd))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """Who answers for a note and whose note it is."""

    session_id: UUID
    patient_name: str
    patient_birth_date: date
    chart_number: str
    clinician: Signatory | None
    signed_by: Signatory | None
    signed_at: datetime | None
    amendment_authors: dict[UUID, Signatory]  # by amendment id
    follow_ups: dict[UUID, list[AdverseEventFollowUp]]  # by adverse event id


@router.get(
    "/sessions/{session_id}/signature",
    response_model=NoteSignature,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def note_signature(ctx: ApiContext, session_id: UUID) -> Response:
    """The note's patient (name, date of birth, chart number), clinician of record,
    signer and amendment authors with credential and licence, and the follow-ups of its
    adverse events."""
    with ctx.reader() as r:
        d = session_detail(r, session_id)
        patient = get_patient(r, d.session.patient_id)
        s = d.session
        people = signatories(
            r,
            [s.clinician_id, *([s.signed_by] if s.signed_by else [])]
            + [a.author_id for a in d.amendments],
        )
        entries = follow_ups(r, [a.id for a in d.adverse_events])
    return respond(
        NoteSignature(
            session_id=s.id,
            patient_name=f"{patient.given_name} {patient.family_name}",
            patient_birth_date=patient.birth_date,
            chart_number=patient.mrn,
            clinician=people.get(s.clinician_id),
            signed_by=people.get(s.signed_by) if s.signed_by else None,
            signed_at=s.signed_at,
            amendment_authors={
                a.id: people[a.author_id] for a in d.amendments if a.author_id in people
            },
            follow_ups=entries,
        )
    )
