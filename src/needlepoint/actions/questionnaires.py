"""Patient-reported questionnaires from home (issue 16): the clinic's plan per condition,
assigning questionnaires to an episode, e-mailing the patient a single-use link, and
the patient's own acts through that link (open, save answers, submit, ask for a new
link).

The link is the patient's only credential. Its token is random (256 bits) and stored
only as a hash; it opens exactly its own patient's questionnaires in its own clinic,
until it expires, ends by use (everything it opened was submitted), is superseded by a
newer link, or is revoked by the clinic. Every patient act is audited with the source
`patient-link`. The e-mail is written to the outbox in the same transaction as the link
(`actions.outbox` sends it): a link is never issued without its message, nor a message
queued for a link that was rolled back.

A submitted questionnaire is scored by the instrument code (`domain.outcomes`) and
stored as a measurement; its response row names that measurement, which is what marks
it "patient-reported" on the chart (the measurement's `recorded_by` is the clinician who
sent the link: the patient holds no account)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from needlepoint.actions.care_team import check_care_team
from needlepoint.actions.context import Actor, audit, authorize, load, notify
from needlepoint.actions.registry import action
from needlepoint.adapters.db.questionnaire_links import find_link
from needlepoint.domain.audit import digest
from needlepoint.domain.clinic_time import local_date, zone
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    SaveQuestionnaireAnswers,
    SendQuestionnaireLink,
    SetQuestionnairePlan,
)
from needlepoint.domain.entities import (
    AuditEvent,
    Clinic,
    Entity,
    Episode,
    Measurement,
    OutboxMessage,
    Patient,
    QuestionnaireAssignment,
    QuestionnaireLink,
    QuestionnairePlan,
    QuestionnaireResponse,
)
from needlepoint.domain.enums import AuditAction, LinkEnd, MessageKind, OutboxState
from needlepoint.domain.errors import InvalidInput, NotFound
from needlepoint.domain.home_reports import check_plain_form
from needlepoint.domain.instruments import get as get_instrument
from needlepoint.domain.instruments import validate_answers
from needlepoint.domain.outcomes import score_submission
from needlepoint.domain.permissions import Permission
from needlepoint.domain.questionnaires import (
    LinkClosed,
    after_care_context,
    check_schedule,
    defaults,
    hash_link_token,
    is_after_care,
    is_self_report,
    link_expiry,
    new_link_token,
    time_point_now,
)
from needlepoint.ports import ConnectedUnitOfWork, UnitOfWork

PATIENT_SOURCE = "patient-link"
LINK_PATH = "/q/"
NEW_LINK_WAIT = timedelta(hours=1)
"""A patient may ask for a new link once an hour (and only while something is due)."""

INVITATION_SUBJECT = "A short questionnaire from {clinic}"
INVITATION_BODY = (
    "Hello,\n\n"
    "{clinic} asks you to answer a short questionnaire about how you are doing. "
    "It takes a few minutes, on your phone or computer.\n\n"
    "Open this link to start: {link}\n\n"
    "The link is for you only and works until you have sent your answers, "
    "for {days} days. If it no longer works, open it anyway: you can ask for a new one.\n\n"
    "{clinic}\n"
)
REMINDER_SUBJECT = "Reminder: a short questionnaire from {clinic}"
REMINDER_BODY = (
    "Hello,\n\n"
    "{clinic} is still waiting for your answers to a short questionnaire. "
    "Your earlier link no longer works; here is a new one: {link}\n\n"
    "It works for {days} days.\n\n"
    "{clinic}\n"
)
LINK_REQUEST_MESSAGE = "A patient asked for a new questionnaire link; a new one was sent."


def link_url(base_url: str, token: str) -> str:
    """The address the patient opens."""
    return f"{base_url.rstrip('/')}{LINK_PATH}{token}"


# -- the clinic's side ------------------------------------------------------------------


@action(Permission.MANAGE_CLINIC, AuditAction.QUESTIONNAIRE_PLAN_SET)
def set_questionnaire_plan(
    uow: UnitOfWork, actor: Actor, cmd: SetQuestionnairePlan
) -> QuestionnairePlan:
    """Choose the questionnaires and the schedule for one condition's patients."""
    from needlepoint.domain.catalogue import conditions

    with uow:
        authorize(uow, actor, Permission.MANAGE_CLINIC)
        if conditions().get(cmd.condition) is None:
            raise InvalidInput(f"unknown condition '{cmd.condition}'", field="condition")
        schedule = check_schedule(cmd.instruments, cmd.every_n_days, cmd.follow_up_days)
        instruments = {
            iid: sorted(str(p) for p in points) for iid, points in schedule.instruments.items()
        }
        now = uow.now()
        old = next(
            iter(uow.list_by(QuestionnairePlan, actor.clinic_id, condition=cmd.condition)), None
        )
        plan = QuestionnairePlan(
            id=old.id if old else uow.new_id(),
            clinic_id=actor.clinic_id,
            condition=cmd.condition,
            instruments=instruments,
            follow_up_days=list(schedule.follow_up_days),
            updated_by=actor.user_id,
            updated_at=now,
            every_n_days=schedule.every_n_days,
            version=old.version + 1 if old else 1,
        )
        if old is None:
            uow.add(plan)
        else:
            uow.replace(old, plan)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.QUESTIONNAIRE_PLAN_SET,
            plan,
            before=[old] if old else None,
            after=[plan],
        )
        uow.commit()
    return plan


@dataclass(frozen=True, slots=True)
class Assigned:
    """What assigning did: the questionnaires now due, and the link sent (if any)."""

    assignments: list[QuestionnaireAssignment]
    link: QuestionnaireLink | None
    message: OutboxMessage | None


@action(
    Permission.RECORD_MEASUREMENT,
    AuditAction.QUESTIONNAIRES_ASSIGNED,
    AuditAction.QUESTIONNAIRE_LINK_ISSUED,
)
def assign_questionnaires(uow: UnitOfWork, actor: Actor, cmd: AssignQuestionnaires) -> Assigned:
    """Ask the episode's patient to answer questionnaires; with `send`, e-mail them the
    link in the same transaction."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEASUREMENT)
        episode = load(uow, Episode, cmd.episode_id, actor, field="episode_id")
        patient = load(uow, Patient, episode.patient_id, actor, field="episode_id")
        check_care_team(uow, actor, user, patient.id)
        clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
        for iid in cmd.instrument_ids:
            get_instrument(iid)
            if not is_self_report(iid):
                raise InvalidInput(
                    f"'{iid}' is measured by the clinician, not answered by the patient",
                    field="instrument_ids",
                )
        now = uow.now()
        today = local_date(now, zone(clinic.time_zone))
        point = cmd.time_point or time_point_now(episode.opened_on, episode.closed_on, today)
        # Waiting at this time point: not asked twice. One unanswered at an earlier time
        # point does not stop this one (an intake form left unanswered must not keep the
        # discharge form from being asked); it stays on the chart as overdue.
        pending = {
            a.instrument_id
            for a in uow.list_by(QuestionnaireAssignment, actor.clinic_id, episode_id=episode.id)
            if a.completed_at is None and a.cancelled_at is None and a.time_point == point
        }
        made = [
            QuestionnaireAssignment(
                id=uow.new_id(),
                clinic_id=actor.clinic_id,
                patient_id=patient.id,
                episode_id=episode.id,
                instrument_id=iid,
                time_point=point,
                due_on=cmd.due_on or today,
                assigned_by=actor.user_id,
                created_at=now,
            )
            for iid in dict.fromkeys(cmd.instrument_ids)
            if iid not in pending
        ]
        if not made and not cmd.send:
            raise InvalidInput(
                "these questionnaires are already waiting for the patient", field="instrument_ids"
            )
        for a in made:
            uow.add(a)
        if made:
            audit(
                uow,
                actor,
                actor.clinic_id,
                AuditAction.QUESTIONNAIRES_ASSIGNED,
                made[0],
                after=list(made),
                patient_id=patient.id,
            )
        link = message = None
        if cmd.send:
            if not cmd.base_url:
                raise InvalidInput("the address of the patient's pages is needed", field="base_url")
            link, message = _issue_link(
                uow,
                actor.user_id,
                clinic,
                patient,
                episode.id,
                cmd.base_url,
                MessageKind.INVITATION,
            )
            audit(
                uow,
                actor,
                actor.clinic_id,
                AuditAction.QUESTIONNAIRE_LINK_ISSUED,
                link,
                after=[link, message],
                patient_id=patient.id,
            )
        uow.commit()
    return Assigned(made, link, message)


@action(Permission.RECORD_MEASUREMENT, AuditAction.QUESTIONNAIRE_LINK_ISSUED)
def send_questionnaire_link(
    uow: UnitOfWork, actor: Actor, cmd: SendQuestionnaireLink
) -> tuple[QuestionnaireLink, OutboxMessage]:
    """E-mail the patient a new link to what they still have to answer (any earlier link
    of theirs stops opening)."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEASUREMENT)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id)
        clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
        if not _pending(uow, patient):
            raise InvalidInput("the patient has no questionnaire to answer", field="patient_id")
        link, message = _issue_link(
            uow, actor.user_id, clinic, patient, None, cmd.base_url, MessageKind.INVITATION
        )
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.QUESTIONNAIRE_LINK_ISSUED,
            link,
            after=[link, message],
            patient_id=patient.id,
        )
        uow.commit()
    return link, message


@action(Permission.RECORD_MEASUREMENT, AuditAction.QUESTIONNAIRE_LINK_REVOKED)
def revoke_questionnaire_link(uow: UnitOfWork, actor: Actor, link_id: UUID) -> QuestionnaireLink:
    """Withdraw a link: it stops opening at once (its unsent e-mail is not sent)."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEASUREMENT)
        link = load(uow, QuestionnaireLink, link_id, actor, field="link_id")
        check_care_team(uow, actor, user, link.patient_id)
        if link.ended_at is not None:
            raise InvalidInput("the link no longer opens", field="link_id")
        ended = _end_link(uow, link, uow.now())
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.QUESTIONNAIRE_LINK_REVOKED,
            ended,
            before=[link],
            after=[ended],
            patient_id=link.patient_id,
        )
        uow.commit()
    return ended


@action(Permission.RECORD_MEASUREMENT, AuditAction.QUESTIONNAIRE_CANCELLED)
def cancel_questionnaire(
    uow: UnitOfWork, actor: Actor, assignment_id: UUID
) -> QuestionnaireAssignment:
    """The clinic withdraws a questionnaire the patient has not answered: it is no longer
    pending or overdue, not reminded, not opened by the patient's link, and left out of
    the completion rates. One answered (or already withdrawn) is refused, naming why.
    When nothing is left for the patient to answer, their open link ends (revoked) and
    its unsent e-mail is not sent."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEASUREMENT)
        a = load(uow, QuestionnaireAssignment, assignment_id, actor, field="assignment_id")
        check_care_team(uow, actor, user, a.patient_id)
        if a.completed_at is not None:
            raise InvalidInput(
                "the patient already answered this questionnaire: an answer is kept, not withdrawn",
                field="assignment_id",
            )
        if a.cancelled_at is not None:
            raise InvalidInput("this questionnaire is already withdrawn", field="assignment_id")
        now = uow.now()
        cancelled = replace(a, cancelled_at=now, version=a.version + 1)
        uow.replace(a, cancelled)
        patient = load(uow, Patient, a.patient_id, actor, field="assignment_id")
        ended: list[Entity] = []
        if not _pending(uow, patient):
            for link in uow.list_by(QuestionnaireLink, actor.clinic_id, patient_id=patient.id):
                if link.ended_at is None:
                    ended.append(_end_link(uow, link, now))
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.QUESTIONNAIRE_CANCELLED,
            cancelled,
            before=[a],
            after=[cancelled, *ended],
            patient_id=patient.id,
        )
        uow.commit()
    return cancelled


def _end_link(
    uow: UnitOfWork, link: QuestionnaireLink, now: datetime, because: LinkEnd = LinkEnd.REVOKED
) -> QuestionnaireLink:
    """End a link (revoked by the clinic unless `because` says otherwise): it stops
    opening at once and its unsent e-mail is not sent, in the caller's transaction."""
    ended = replace(link, ended_at=now, ended_because=because, version=link.version + 1)
    uow.replace(link, ended)
    for m in uow.list_by(OutboxMessage, link.clinic_id, link_id=link.id):
        if m.state is OutboxState.PENDING:
            uow.replace(
                m,
                replace(
                    m,
                    state=OutboxState.FAILED,
                    last_error=f"the link ended ({because}) before it was sent",
                    link_url=None,
                    version=m.version + 1,
                ),
            )
    return ended


def end_links_when_done(uow: UnitOfWork, link: QuestionnaireLink, now: datetime) -> None:
    """After an answer through `link`: when the patient has nothing left to answer, every
    open link of theirs ends as used — this one, and any other (an e-mailed link, after
    the patient finished on the clinic's kiosk), which would otherwise keep opening
    their progress and consent with nothing to answer."""
    patient = uow.get(Patient, link.patient_id, link.clinic_id)
    if patient is None or _pending(uow, patient):
        return
    for other in uow.list_by(QuestionnaireLink, link.clinic_id, patient_id=patient.id):
        if other.ended_at is None:
            _end_link(uow, link if other.id == link.id else other, now, LinkEnd.USED)


def _pending(uow: UnitOfWork, patient: Patient) -> list[QuestionnaireAssignment]:
    """The patient's questionnaires still to answer, oldest due first."""
    found = [
        a
        for a in uow.list_by(QuestionnaireAssignment, patient.clinic_id, patient_id=patient.id)
        if a.completed_at is None and a.cancelled_at is None
    ]
    return sorted(found, key=lambda a: (a.due_on, a.created_at, a.instrument_id))


def _issue_link(
    uow: UnitOfWork,
    issued_by: UUID,
    clinic: Clinic,
    patient: Patient,
    episode_id: UUID | None,
    base_url: str,
    kind: MessageKind,
) -> tuple[QuestionnaireLink, OutboxMessage]:
    """A new link for the patient (earlier open ones end: superseded) and its e-mail in
    the outbox, staged in the caller's transaction."""
    if not patient.email:
        raise InvalidInput("the patient has no e-mail address on file", field="email")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidInput("the address must start with http:// or https://", field="base_url")
    now = uow.now()
    for old in uow.list_by(QuestionnaireLink, clinic.id, patient_id=patient.id):
        if old.ended_at is None:
            uow.replace(
                old,
                replace(
                    old, ended_at=now, ended_because=LinkEnd.SUPERSEDED, version=old.version + 1
                ),
            )
    token = new_link_token()
    days = defaults().link_valid_days
    link = QuestionnaireLink(
        id=uow.new_id(),
        clinic_id=clinic.id,
        patient_id=patient.id,
        token_hash=hash_link_token(token),
        issued_by=issued_by,
        created_at=now,
        expires_at=link_expiry(now, days),
        episode_id=episode_id,
    )
    subject, body = (
        (REMINDER_SUBJECT, REMINDER_BODY)
        if kind is MessageKind.REMINDER
        else (INVITATION_SUBJECT, INVITATION_BODY)
    )
    message = OutboxMessage(
        id=uow.new_id(),
        clinic_id=clinic.id,
        kind=kind,
        recipient=patient.email,
        subject=subject.replace("{clinic}", clinic.name)[:200],
        # The link is put in when sending (it is sealed at rest, and dropped once sent).
        body=body.replace("{days}", str(days)).replace("{clinic}", clinic.name),
        state=OutboxState.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        patient_id=patient.id,
        link_id=link.id,
        link_url=link_url(base_url, token),
    )
    uow.add(link)
    uow.add(message)
    return link, message


# -- reminders (run by the outbox worker) -------------------------------------------------


@action(
    None,
    AuditAction.QUESTIONNAIRE_REMINDER_QUEUED,
    unauthenticated="the outbox worker, a system process, on the reminder schedule",
)
def queue_reminder(
    uow: UnitOfWork, clinic_id: UUID, link_id: UUID, base_url: str
) -> OutboxMessage | None:
    """If the link's reminder is due (`domain.questionnaires.reminder_due`) and the
    patient still has questionnaires to answer: a new link replaces it, e-mailed as a
    reminder. Returns the message, or None when nothing was due."""
    from needlepoint.domain.questionnaires import reminder_due

    with uow:
        link = uow.get(QuestionnaireLink, link_id, clinic_id)
        if link is None or link.ended_at is not None:
            return None
        now = uow.now()
        if not reminder_due(
            link.created_at, link.reminders_sent, now, defaults().reminder_after_days
        ):
            return None
        patient = uow.get(Patient, link.patient_id, clinic_id)
        clinic = uow.get(Clinic, clinic_id, clinic_id)
        if patient is None or clinic is None or not patient.email or not _pending(uow, patient):
            return None
        new, message = _issue_link(
            uow, link.issued_by, clinic, patient, link.episode_id, base_url, MessageKind.REMINDER
        )
        # The reminder count travels with the newest link.
        counted = replace(new, reminders_sent=link.reminders_sent + 1)
        uow.add(counted)
        audit(
            uow,
            None,
            clinic_id,
            AuditAction.QUESTIONNAIRE_REMINDER_QUEUED,
            counted,
            after=[counted, message],
            patient_id=patient.id,
            source="outbox-worker",
        )
        uow.commit()
    return message


# -- the patient's side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientQuestionnaires:
    """What a link opens: the clinic's name and the patient's due questionnaires with
    their answers so far."""

    link: QuestionnaireLink
    clinic_name: str
    due: list[tuple[QuestionnaireAssignment, QuestionnaireResponse]]


def _open_link(uow: ConnectedUnitOfWork, token: str) -> QuestionnaireLink:
    """The link of this token, inside the transaction; LinkClosed when it does not open."""
    with uow.engine.connect() as conn:
        found = find_link(conn, hash_link_token(token))
    if found is None:
        raise LinkClosed("unknown")
    link = uow.get(QuestionnaireLink, found.id, found.clinic_id)
    if link is None:
        raise LinkClosed("unknown")
    if link.ended_at is not None:
        raise LinkClosed(str(link.ended_because or LinkEnd.REVOKED), link=link)
    if uow.now() >= link.expires_at:
        raise LinkClosed("expired", link=link)
    return link


def _patient_audit(
    uow: UnitOfWork,
    link: QuestionnaireLink,
    kind: AuditAction,
    subject: Entity,
    address: str | None,
    after: list[Entity] | None = None,
) -> None:
    """The audit event of a patient's act through their link (no user account: the
    source says `patient-link`, the patient and the address are recorded); its after
    digest is of `after` (default: the subject)."""
    uow.add(
        AuditEvent(
            id=uow.new_id(),
            clinic_id=link.clinic_id,
            action=kind,
            entity_type=type(subject).__name__.lower()[:32],
            entity_id=subject.id,
            occurred_at=uow.now(),
            source=PATIENT_SOURCE,
            patient_id=link.patient_id,
            before_digest=digest([]),
            after_digest=digest([subject] if after is None else after),
            source_address=address,
        )
    )


def _responses(uow: UnitOfWork, link: QuestionnaireLink) -> dict[UUID, QuestionnaireResponse]:
    return {
        r.assignment_id: r
        for r in uow.list_by(QuestionnaireResponse, link.clinic_id, patient_id=link.patient_id)
    }


@action(
    None,
    AuditAction.QUESTIONNAIRE_OPENED,
    unauthenticated="a patient, identified by the link's token",
)
def open_questionnaires(
    uow: ConnectedUnitOfWork, token: str, *, address: str | None = None
) -> PatientQuestionnaires:
    """The patient opens their link: their due questionnaires, each with the answers
    saved so far (a response is started for each one not yet started). Audited."""
    with uow:
        link = _open_link(uow, token)
        patient = uow.get(Patient, link.patient_id, link.clinic_id)
        clinic = uow.get(Clinic, link.clinic_id, link.clinic_id)
        if patient is None or clinic is None:
            raise LinkClosed("unknown")
        now = uow.now()
        have = _responses(uow, link)
        due: list[tuple[QuestionnaireAssignment, QuestionnaireResponse]] = []
        for a in _pending(uow, patient):
            r = have.get(a.id)
            if r is None:
                r = QuestionnaireResponse(
                    id=uow.new_id(),
                    clinic_id=link.clinic_id,
                    patient_id=patient.id,
                    assignment_id=a.id,
                    link_id=link.id,
                    answers={},
                    started_at=now,
                    updated_at=now,
                )
                uow.add(r)
            due.append((a, r))
        _patient_audit(uow, link, AuditAction.QUESTIONNAIRE_OPENED, link, address)
        uow.commit()
    return PatientQuestionnaires(link, clinic.name, due)


def _own_assignment(
    uow: UnitOfWork, link: QuestionnaireLink, assignment_id: UUID
) -> QuestionnaireAssignment:
    """The assignment, only if it is the link's own patient's and still to answer."""
    a = uow.get(QuestionnaireAssignment, assignment_id, link.clinic_id)
    if a is None or a.patient_id != link.patient_id or a.cancelled_at is not None:
        raise NotFound("no such questionnaire for you", field="assignment_id")
    if a.completed_at is not None:
        raise InvalidInput("this questionnaire was already sent", field="assignment_id")
    return a


def store_response(
    uow: UnitOfWork,
    link: QuestionnaireLink,
    a: QuestionnaireAssignment,
    old: QuestionnaireResponse | None,
    answers: dict[str, Any],
    now: datetime,
    *,
    sent: bool = False,
    measurement_id: UUID | None = None,
) -> QuestionnaireResponse:
    """The patient's answers to one assignment, saved through `link`: a new response or
    the next version of `old`; `sent` marks it submitted (naming its measurement)."""
    submitted: dict[str, Any] = (
        {"submitted_at": now, "measurement_id": measurement_id} if sent else {}
    )
    if old is None:
        new = QuestionnaireResponse(
            id=uow.new_id(),
            clinic_id=link.clinic_id,
            patient_id=link.patient_id,
            assignment_id=a.id,
            link_id=link.id,
            answers=answers,
            started_at=now,
            updated_at=now,
            **submitted,
        )
        uow.add(new)
        return new
    new = replace(
        old, answers=answers, updated_at=now, link_id=link.id, version=old.version + 1, **submitted
    )
    uow.replace(old, new)
    return new


@action(
    None,
    AuditAction.QUESTIONNAIRE_ANSWER_SAVED,
    unauthenticated="a patient, identified by the link's token",
)
def save_questionnaire_answers(
    uow: ConnectedUnitOfWork,
    token: str,
    cmd: SaveQuestionnaireAnswers,
    *,
    address: str | None = None,
) -> QuestionnaireResponse:
    """Save the answers given so far (merged into the earlier ones; None clears one).
    An answer out of range is refused naming the item; nothing is scored yet."""
    with uow:
        link = _open_link(uow, token)
        a = _own_assignment(uow, link, cmd.assignment_id)
        check_plain_form(a.instrument_id)  # PSFS, return to activity, analgesics: own forms
        instrument = get_instrument(a.instrument_id)
        now = uow.now()
        old = _responses(uow, link).get(a.id)
        merged = {**(old.answers if old else {}), **cmd.answers}
        try:
            clean = validate_answers(instrument, merged)
        except InvalidInput as err:
            raise InvalidInput(err.detail, field=err.field) from None
        kept = {k: v for k, v in clean.items() if v is not None}
        saved = store_response(uow, link, a, old, kept, now)
        _patient_audit(uow, link, AuditAction.QUESTIONNAIRE_ANSWER_SAVED, saved, address)
        uow.commit()
    return saved


@action(
    None,
    AuditAction.QUESTIONNAIRE_SUBMITTED,
    unauthenticated="a patient, identified by the link's token",
)
def submit_questionnaire(
    uow: ConnectedUnitOfWork, token: str, assignment_id: UUID, *, address: str | None = None
) -> Measurement:
    """Send the saved answers: every item must be answered (nothing half-submitted is
    scored); the score is computed by the instrument's code and stored as a measurement
    of the patient's episode. When nothing is left to answer, the link ends (used)."""
    with uow:
        link = _open_link(uow, token)
        a = _own_assignment(uow, link, assignment_id)
        check_plain_form(a.instrument_id)  # PSFS, return to activity, analgesics: own forms
        instrument = get_instrument(a.instrument_id)
        response = _responses(uow, link).get(a.id)
        answers = response.answers if response else {}
        missing = [
            {"field": f"answers.{item}", "message": f"please answer '{label}'"}
            for item, label in zip(instrument.item_names, instrument.item_labels, strict=True)
            if answers.get(item) is None
        ]
        if missing:  # every unanswered question named at once, not one per try
            first = missing[0]
            raise InvalidInput(first["message"], field=first["field"], errors=missing)
        scored = score_submission(a.instrument_id, answers, None, field_prefix="")
        now = uow.now()
        episode = uow.get(Episode, a.episode_id, link.clinic_id)
        measurement = Measurement(
            id=uow.new_id(),
            clinic_id=link.clinic_id,
            patient_id=link.patient_id,
            # The answer belongs to the episode it was asked for, open or closed: a
            # follow-up after discharge is that episode's after-care value (marked in its
            # context, see `_after_care`), never a clinician's edit of a closed episode.
            episode_id=a.episode_id if episode is not None else None,
            instrument_id=a.instrument_id,
            instrument_version=scored.instrument_version,
            answers=scored.answers,
            score=scored.score,
            taken_at=now,
            recorded_by=link.issued_by,
            created_at=now,
            context=_after_care(uow, a, episode, now),
        )
        uow.add(measurement)
        done = replace(a, completed_at=now, measurement_id=measurement.id, version=a.version + 1)
        uow.replace(a, done)
        assert response is not None  # answers were checked above
        store_response(
            uow, link, a, response, response.answers, now, sent=True, measurement_id=measurement.id
        )
        end_links_when_done(uow, link, now)
        _patient_audit(uow, link, AuditAction.QUESTIONNAIRE_SUBMITTED, measurement, address)
        uow.commit()
    return measurement


def _after_care(
    uow: UnitOfWork, a: QuestionnaireAssignment, episode: Episode | None, now: datetime
) -> dict[str, Any] | None:
    """The context of an answer given after care (`domain.questionnaires.is_after_care`:
    a follow-up, or an earlier questionnaire answered after the discharge day), in the
    clinic's dates; None for an answer during care. Analyses of the episode's outcome up
    to discharge leave such answers out; the after-care analysis reads them."""
    if episode is None or episode.closed_on is None:
        return None
    clinic = uow.get(Clinic, a.clinic_id, a.clinic_id)
    answered_on = local_date(now, zone(clinic.time_zone if clinic else "UTC"))
    if not is_after_care(a.time_point, episode.closed_on, answered_on):
        return None
    return dict(after_care_context(episode.closed_on, a.due_on, answered_on))


@action(
    None,
    AuditAction.QUESTIONNAIRE_LINK_REQUESTED,
    unauthenticated="a patient whose link no longer opens, identified by that link's token",
)
def request_new_link(
    uow: ConnectedUnitOfWork, token: str, base_url: str, *, address: str | None = None
) -> bool:
    """A patient whose link expired (or was used or superseded) asks for a new one. When
    they still have questionnaires to answer, a new link is e-mailed to the address on
    file (never to one the requester types) and the clinician who sent the first is
    notified; at most once an hour. Returns whether a link was sent; the page says the
    same words either way, so it tells a stranger nothing."""
    with uow.engine.connect() as conn:
        found = find_link(conn, hash_link_token(token))
    if found is None:
        return False
    with uow:
        link = uow.get(QuestionnaireLink, found.id, found.clinic_id)
        patient = uow.get(Patient, found.patient_id, found.clinic_id)
        clinic = uow.get(Clinic, found.clinic_id, found.clinic_id)
        if link is None or patient is None or clinic is None:
            return False
        if link.ended_because is LinkEnd.REVOKED:
            return False  # the clinic withdrew it: only the clinic sends a new one
        now = uow.now()
        links = uow.list_by(QuestionnaireLink, clinic.id, patient_id=patient.id)
        if any(now - other.created_at < NEW_LINK_WAIT for other in links):
            return False
        if not patient.email or not _pending(uow, patient):
            return False
        new, _message = _issue_link(
            uow, link.issued_by, clinic, patient, link.episode_id, base_url, MessageKind.INVITATION
        )
        notify(
            uow,
            clinic.id,
            link.issued_by,
            "questionnaire.link_requested",
            patient.id,
            LINK_REQUEST_MESSAGE,
        )
        _patient_audit(uow, new, AuditAction.QUESTIONNAIRE_LINK_REQUESTED, new, address)
        uow.commit()
    return True


# -- sending by the clinic's plan (run by the outbox worker) -----------------------------


@action(
    None,
    AuditAction.QUESTIONNAIRES_ASSIGNED,
    AuditAction.QUESTIONNAIRE_LINK_ISSUED,
    unauthenticated="the outbox worker, a system process, on the clinic's questionnaire plan",
)
def send_due_questionnaires(
    uow: UnitOfWork, clinic_id: UUID, episode_id: UUID, base_url: str
) -> Assigned | None:
    """Send the episode's patient what the clinic's plan for the condition says is due
    now (`domain.questionnaires.due_now`: due in the last few days, not asked yet), in
    the name of the episode's clinician. Only for conditions the clinic chose a plan for
    (without one, clinicians send by hand) and patients with an e-mail address. Returns
    None when nothing was due."""
    from needlepoint.domain.entities import Session
    from needlepoint.domain.enums import TimePoint
    from needlepoint.domain.questionnaires import Schedule, due_now

    with uow:
        episode = uow.get(Episode, episode_id, clinic_id)
        if episode is None:
            return None
        plans = uow.list_by(QuestionnairePlan, clinic_id, condition=episode.condition)
        patient = uow.get(Patient, episode.patient_id, clinic_id)
        clinic = uow.get(Clinic, clinic_id, clinic_id)
        if not plans or patient is None or clinic is None or not patient.email:
            return None
        plan = plans[0]
        schedule = Schedule(
            {i: frozenset(TimePoint(p) for p in pts) for i, pts in plan.instruments.items()},
            plan.every_n_days,
            tuple(plan.follow_up_days),
        )
        tz = zone(clinic.time_zone)
        now = uow.now()
        visits = [
            local_date(s.started_at, tz)
            for s in uow.list_by(Session, clinic_id, episode_id=episode.id)
        ]
        asked = uow.list_by(QuestionnaireAssignment, clinic_id, episode_id=episode.id)
        due = due_now(
            schedule,
            opened_on=episode.opened_on,
            visits=visits,
            closed_on=episode.closed_on,
            today=local_date(now, tz),
            already={(a.instrument_id, a.time_point, a.due_on) for a in asked},
        )
        if not due:
            return None
        made = [
            QuestionnaireAssignment(
                id=uow.new_id(),
                clinic_id=clinic_id,
                patient_id=patient.id,
                episode_id=episode.id,
                instrument_id=d.instrument_id,
                time_point=d.time_point,
                due_on=d.due_on,
                assigned_by=episode.clinician_id,
                created_at=now,
            )
            for d in due
        ]
        for a in made:
            uow.add(a)
        link, message = _issue_link(
            uow, episode.clinician_id, clinic, patient, episode.id, base_url, MessageKind.INVITATION
        )
        for kind, subject, after in (
            (AuditAction.QUESTIONNAIRES_ASSIGNED, made[0], list(made)),
            (AuditAction.QUESTIONNAIRE_LINK_ISSUED, link, [link, message]),
        ):
            audit(
                uow,
                None,
                clinic_id,
                kind,
                subject,
                after=after,  # type: ignore[arg-type]
                patient_id=patient.id,
                source="outbox-worker",
            )
        uow.commit()
    return Assigned(made, link, message)
