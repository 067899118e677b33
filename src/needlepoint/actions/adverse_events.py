"""Adverse events learned of after the session (delayed pneumothorax symptoms, next-day
bruising): recorded against the signed note of the session, then followed up by entries
appended to them (onset, action taken, resolution, report to the board), never edited.

They are rows of `adverse_events` like those recorded in the note itself, so the safety
analytics count them with the session they followed."""

from __future__ import annotations

from needlepoint.actions.care_team import check_care_team
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.commands import AddAdverseEventFollowUp, RecordAdverseEvent
from needlepoint.domain.entities import AdverseEvent, AdverseEventFollowUp, Session
from needlepoint.domain.enums import AuditAction, FollowUpKind, SessionStatus
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.notes import check_not_future
from needlepoint.domain.permissions import Permission
from needlepoint.ports import UnitOfWork


@action(Permission.RECORD_SESSION, AuditAction.ADVERSE_EVENT_RECORDED)
def record_adverse_event(uow: UnitOfWork, actor: Actor, cmd: RecordAdverseEvent) -> AdverseEvent:
    """Record an adverse event against a signed note, after the session. A draft takes
    its adverse events in the note itself; the signed note stays exactly as signed."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_SESSION)
        session = load(uow, Session, cmd.session_id, actor, field="session_id")
        check_care_team(uow, actor, user, session.patient_id)
        if session.status is not SessionStatus.SIGNED:
            raise InvalidInput(
                "this note is a draft: record the adverse event in the note itself",
                field="session_id",
            )
        now = uow.now()
        check_not_future(cmd.onset_at, now, "onset_at")
        if cmd.onset_at < session.started_at:
            raise InvalidInput("the onset cannot be before the session started", field="onset_at")
        event = AdverseEvent(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=session.patient_id,
            session_id=session.id,
            kind=cmd.kind,
            severity=cmd.severity,
            onset_at=cmd.onset_at,
            description=cmd.description,
            action_taken=cmd.action_taken,
            reportable=cmd.reportable,
            recorded_by=user.id,
            created_at=now,
        )
        uow.add(event)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.ADVERSE_EVENT_RECORDED,
            event,
            after=[event],
            patient_id=session.patient_id,
        )
        uow.commit()
    return event


@action(Permission.RECORD_SESSION, AuditAction.ADVERSE_EVENT_FOLLOWED_UP)
def add_follow_up(
    uow: UnitOfWork, actor: Actor, cmd: AddAdverseEventFollowUp
) -> AdverseEventFollowUp:
    """Append a follow-up entry to an adverse event of a signed note."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_SESSION)
        event = load(uow, AdverseEvent, cmd.adverse_event_id, actor, field="adverse_event_id")
        check_care_team(uow, actor, user, event.patient_id)
        session = (
            load(uow, Session, event.session_id, actor, field="adverse_event_id")
            if event.session_id is not None
            else None
        )
        if session is not None and session.status is not SessionStatus.SIGNED:
            raise InvalidInput(
                "this adverse event is in a draft note: edit the note instead",
                field="adverse_event_id",
            )
        now = uow.now()
        check_not_future(cmd.occurred_at, now, "occurred_at")
        if cmd.kind is not FollowUpKind.ONSET and cmd.occurred_at < event.onset_at:
            raise InvalidInput(
                "a follow-up cannot be dated before the event's onset", field="occurred_at"
            )
        entry = AdverseEventFollowUp(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            adverse_event_id=event.id,
            patient_id=event.patient_id,
            kind=cmd.kind,
            text=cmd.text,
            occurred_at=cmd.occurred_at,
            recorded_by=user.id,
            created_at=now,
        )
        uow.add(entry)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.ADVERSE_EVENT_FOLLOWED_UP,
            entry,
            after=[entry],
            patient_id=event.patient_id,
        )
        uow.commit()
    return entry
