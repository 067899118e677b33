"""Recording outcome measurements and analgesic use outside a session note."""

from __future__ import annotations

from uuid import UUID

from needlepoint.actions.care_team import check_care_team
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.commands import RecordMeasurement, RecordMedicationUse
from needlepoint.domain.entities import Episode, Measurement, MedicationUse, Patient, Session
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.episodes import ensure_open
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.notes import check_not_future, ensure_draft_episode_open, ensure_editable
from needlepoint.domain.outcomes import score_submission
from needlepoint.domain.permissions import Permission
from needlepoint.ports import UnitOfWork


@action(Permission.RECORD_MEASUREMENT, AuditAction.MEASUREMENT_RECORDED)
def record_measurement(uow: UnitOfWork, actor: Actor, cmd: RecordMeasurement) -> Measurement:
    """Store an instrument's raw item answers and the score computed from them."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEASUREMENT)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id)
        episode_id = _open_episode_of(uow, actor, patient, cmd.episode_id)
        if cmd.session_id is not None:
            episode_id = _draft_note_of(uow, actor, patient, cmd.session_id, episode_id)
        scored = score_submission(cmd.instrument_id, cmd.answers, cmd.context)
        now = uow.now()
        if cmd.taken_at is not None:
            check_not_future(cmd.taken_at, now, "taken_at")
        measurement = Measurement(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=patient.id,
            episode_id=episode_id,
            session_id=cmd.session_id,
            instrument_id=cmd.instrument_id,
            instrument_version=scored.instrument_version,
            answers=scored.answers,
            score=scored.score,
            context=cmd.context,
            taken_at=cmd.taken_at or now,
            recorded_by=actor.user_id,
            created_at=now,
        )
        uow.add(measurement)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.MEASUREMENT_RECORDED,
            measurement,
            after=[measurement],
            patient_id=patient.id,
        )
        uow.commit()
    return measurement


@action(Permission.RECORD_MEDICATION, AuditAction.MEDICATION_RECORDED)
def record_medication_use(uow: UnitOfWork, actor: Actor, cmd: RecordMedicationUse) -> MedicationUse:
    """Log an analgesic the patient takes: drug, class, dose and days per week."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEDICATION)
        patient = load(uow, Patient, cmd.patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id)
        _open_episode_of(uow, actor, patient, cmd.episode_id)
        use = MedicationUse(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            recorded_by=actor.user_id,
            created_at=uow.now(),
            **cmd.model_dump(),
        )
        uow.add(use)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.MEDICATION_RECORDED,
            use,
            after=[use],
            patient_id=patient.id,
        )
        uow.commit()
    return use


def _open_episode_of(
    uow: UnitOfWork, actor: Actor, patient: Patient, episode_id: UUID | None
) -> UUID | None:
    """The episode a record is filed under: the patient's, and still open (a closed
    episode takes no new records; a follow-up after discharge is the patient's, without
    an episode)."""
    if episode_id is None:
        return None
    episode = load(uow, Episode, episode_id, actor, field="episode_id")
    if episode.patient_id != patient.id:
        raise InvalidInput("the episode belongs to another patient", field="episode_id")
    ensure_open(episode)
    return episode.id


def _draft_note_of(
    uow: UnitOfWork, actor: Actor, patient: Patient, session_id: UUID, episode_id: UUID | None
) -> UUID:
    """A measurement filed under a session note joins the note: the note must be the
    patient's, a draft (a signed note only takes amendments) of an open episode, and the
    episode named, if any, must be the note's. Returns the note's episode."""
    session = load(uow, Session, session_id, actor, field="session_id")
    if session.patient_id != patient.id:
        raise InvalidInput("the session belongs to another patient", field="session_id")
    if episode_id is not None and episode_id != session.episode_id:
        raise InvalidInput("the session belongs to another episode", field="episode_id")
    ensure_editable(session)
    ensure_draft_episode_open(load(uow, Episode, session.episode_id, actor, field="session_id"))
    return session.episode_id
