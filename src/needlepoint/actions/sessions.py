"""Recording, editing, signing and amending a session note."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from needlepoint.actions.care_team import check_care_team, refusal
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.audit import signed_note
from needlepoint.domain.billing import derive_cpt
from needlepoint.domain.commands import (
    AmendSession,
    DiscardSession,
    RecordSession,
    SessionNote,
    SignSession,
    UpdateSession,
)
from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    Clinic,
    CoIntervention,
    Consent,
    Entity,
    Episode,
    Measurement,
    NeedlingSite,
    Screening,
    Session,
    TrainingRecord,
    User,
)
from needlepoint.domain.enums import AuditAction, SessionStatus
from needlepoint.domain.episodes import ensure_open
from needlepoint.domain.errors import PermissionDenied
from needlepoint.domain.needling import check_needling
from needlepoint.domain.notes import (
    check_not_future,
    check_session_time,
    check_signable,
    check_sites,
    ensure_draft_episode_open,
    ensure_editable,
    ensure_signed,
)
from needlepoint.domain.outcomes import score_submission
from needlepoint.domain.permissions import Permission
from needlepoint.domain.versions import check_version
from needlepoint.ports import UnitOfWork

_CHILD_KINDS: tuple[type[NeedlingSite | CoIntervention | AdverseEvent | Measurement], ...] = (
    NeedlingSite,
    CoIntervention,
    AdverseEvent,
    Measurement,
)


@action(Permission.RECORD_SESSION, AuditAction.SESSION_RECORDED)
def record_session(uow: UnitOfWork, actor: Actor, cmd: RecordSession) -> Session:
    """Record a session note (a draft) with its needling sites, co-interventions,
    adverse events and outcome measurements, all in one transaction."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_SESSION)
        check_not_future(cmd.started_at, uow.now(), "started_at")
        episode = load(uow, Episode, cmd.episode_id, actor, field="episode_id")
        check_care_team(uow, actor, user, episode.patient_id)
        ensure_open(episode)
        clinician = _clinician_of_record(uow, actor, user, cmd, episode.patient_id)
        clinician_id = clinician.id
        flags = _safety_flags(uow, actor, episode.patient_id, clinician, cmd)
        now = uow.now()
        session = Session(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=episode.patient_id,
            episode_id=episode.id,
            clinician_id=clinician_id,
            started_at=cmd.started_at,
            subjective=cmd.subjective,
            objective=cmd.objective,
            assessment=cmd.assessment,
            plan=cmd.plan,
            status=SessionStatus.DRAFT,
            created_at=now,
            updated_at=now,
            safety_flags=flags,
        )
        children = _note_children(uow, actor, episode, session, cmd)
        uow.add(session)
        for child in children:
            uow.add(child)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SESSION_RECORDED,
            session,
            after=[session, *children],
            patient_id=episode.patient_id,
        )
        uow.commit()
    return session


@action(Permission.RECORD_SESSION, AuditAction.SESSION_UPDATED)
def update_session(uow: UnitOfWork, actor: Actor, cmd: UpdateSession) -> Session:
    """Replace a draft note's content. Signed notes are refused: amend them instead."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_SESSION)
        session = load(uow, Session, cmd.session_id, actor, field="session_id")
        check_care_team(uow, actor, user, session.patient_id)
        check_version(session, cmd.expected_version)
        ensure_editable(session)
        episode = load(uow, Episode, session.episode_id, actor, field="episode_id")
        ensure_draft_episode_open(episode)
        check_not_future(cmd.started_at, uow.now(), "started_at")
        clinician = load(uow, User, session.clinician_id, actor, field="clinician_id")
        flags = _safety_flags(uow, actor, session.patient_id, clinician, cmd)
        if user.id != clinician.id:
            # A colleague editing the draft answers for what they write too: their own
            # credentials are checked as well (an untrained clinician cannot put needling
            # into a trained colleague's note).
            mine = _safety_flags(uow, actor, session.patient_id, user, cmd)
            flags += [f for f in mine if f not in flags]
        old_children: list[Entity] = []
        for kind in _CHILD_KINDS:
            old_children += uow.list_by(kind, actor.clinic_id, session_id=session.id)
        for child in old_children:
            uow.delete(child)
        updated = replace(
            session,
            started_at=cmd.started_at,
            subjective=cmd.subjective,
            objective=cmd.objective,
            assessment=cmd.assessment,
            plan=cmd.plan,
            updated_at=uow.now(),
            version=session.version + 1,
            safety_flags=flags,
        )
        children = _note_children(uow, actor, episode, updated, cmd)
        for child in children:
            uow.add(child)
        uow.replace(session, updated)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SESSION_UPDATED,
            updated,
            before=[session, *old_children],
            after=[updated, *children],
            patient_id=session.patient_id,
        )
        uow.commit()
    return updated


@action(Permission.SIGN_SESSION, AuditAction.SESSION_SIGNED)
def sign_session(uow: UnitOfWork, actor: Actor, cmd: SignSession) -> Session:
    """Sign a draft note; from then on it is locked and only amendments are appended."""
    with uow:
        user = authorize(uow, actor, Permission.SIGN_SESSION)
        session = load(uow, Session, cmd.session_id, actor, field="session_id")
        check_care_team(uow, actor, user, session.patient_id)
        check_version(session, cmd.expected_version)
        ensure_editable(session)
        episode = load(uow, Episode, session.episode_id, actor, field="episode_id")
        ensure_draft_episode_open(episode)
        clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
        sites = uow.list_by(NeedlingSite, actor.clinic_id, session_id=session.id)
        others = [
            record
            for kind in _CHILD_KINDS
            if kind is not NeedlingSite
            for record in uow.list_by(kind, actor.clinic_id, session_id=session.id)
        ]
        check_signable(session, len(sites) + len(others))
        check_not_future(session.started_at, uow.now(), "started_at")
        cpt = derive_cpt(sites, sides_separately=clinic.bill_sides_separately)
        now = uow.now()
        # A student's note is signed by a licensed clinician (students hold no sign
        # permission): that signature is the co-signature the student's note needs.
        signed = replace(
            session,
            status=SessionStatus.SIGNED,
            signed_by=user.id,
            signed_at=now,
            updated_at=now,
            version=session.version + 1,
            cpt_code=cpt.code if cpt else None,
            billing_muscles=cpt.muscles if cpt else None,
        )
        uow.replace(session, signed)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SESSION_SIGNED,
            signed,
            before=[session],
            # The digest recorded at signing covers the note and all recorded in it.
            after=signed_note(signed, [*sites, *others]),
            patient_id=session.patient_id,
        )
        uow.commit()
    return signed


@action(Permission.RECORD_SESSION, AuditAction.SESSION_DISCARDED)
def discard_session(uow: UnitOfWork, actor: Actor, cmd: DiscardSession) -> Session:
    """Discard a draft note and everything recorded in it (an unsigned draft is not yet
    data). A signed note is never discarded: `RecordLocked`. The audit event keeps the
    digest of what was discarded."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_SESSION)
        session = load(uow, Session, cmd.session_id, actor, field="session_id")
        check_care_team(uow, actor, user, session.patient_id)
        ensure_editable(session)
        check_version(session, cmd.expected_version)
        children: list[Entity] = []
        for kind in _CHILD_KINDS:
            children += uow.list_by(kind, actor.clinic_id, session_id=session.id)
        for child in children:
            uow.delete(child)
        uow.delete(session)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SESSION_DISCARDED,
            session,
            before=[session, *children],
            patient_id=session.patient_id,
        )
        uow.commit()
    return session


@action(Permission.AMEND_SESSION, AuditAction.SESSION_AMENDED)
def amend_session(uow: UnitOfWork, actor: Actor, cmd: AmendSession) -> Amendment:
    """Append an amendment to a signed note; the original stays exactly as signed."""
    with uow:
        user = authorize(uow, actor, Permission.AMEND_SESSION)
        session = load(uow, Session, cmd.session_id, actor, field="session_id")
        check_care_team(uow, actor, user, session.patient_id)
        ensure_signed(session)
        amendment = Amendment(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            session_id=session.id,
            author_id=user.id,
            reason=cmd.reason,
            text=cmd.text,
            created_at=uow.now(),
        )
        uow.add(amendment)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SESSION_AMENDED,
            amendment,
            after=[amendment],
            patient_id=session.patient_id,
        )
        uow.commit()
    return amendment


def _clinician_of_record(
    uow: UnitOfWork, actor: Actor, user: User, cmd: RecordSession, patient_id: UUID
) -> User:
    """The clinician of record of a note is the one who records it: the credential,
    screening and consent checks are made against them. Naming a colleague instead is
    refused (and the attempt is on the audit trail). The one supervision rule is the
    co-signature: a student records their own note and a licensed clinician signs it
    (`signed_by`); nobody records a note in another's name."""
    if cmd.clinician_id is None or cmd.clinician_id == user.id:
        return user
    uow.record_denial(refusal(uow, actor, patient_id, "clinician_of_record"))
    raise PermissionDenied(
        "the clinician of record is the one who records the note; record it under your own "
        "name (a student's note is co-signed by a licensed clinician when it is signed)",
        field="clinician_id",
    )


def _safety_flags(
    uow: UnitOfWork, actor: Actor, patient_id: UUID, clinician: User, note: SessionNote
) -> list[dict[str, object]]:
    """Screening, consent, credential and site-level checks for the needling in a note."""
    if not note.sites:
        return []
    check_sites(note.sites)
    clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
    return check_needling(
        sites=note.sites,
        started_at=note.started_at,
        clinic=clinic,
        clinician=clinician,
        training=uow.list_by(TrainingRecord, actor.clinic_id, user_id=clinician.id),
        screenings=uow.list_by(Screening, actor.clinic_id, patient_id=patient_id),
        consents=uow.list_by(Consent, actor.clinic_id, patient_id=patient_id),
    )


def _note_children(
    uow: UnitOfWork, actor: Actor, episode: Episode, session: Session, note: SessionNote
) -> list[Entity]:
    """The sites, co-interventions, adverse events and measurements of a note. Neither
    the note nor a measurement in it may be dated in the future (`FUTURE_TOLERANCE`)."""
    now = uow.now()
    check_not_future(note.started_at, now, "started_at")
    check_session_time(episode, note.started_at)
    check_sites(note.sites)
    clinic_id: UUID = actor.clinic_id
    children: list[Entity] = []
    for i, site in enumerate(note.sites):
        data = site.model_dump(exclude={"estim_params"})
        children.append(
            NeedlingSite(
                id=uow.new_id(),
                clinic_id=clinic_id,
                session_id=session.id,
                position=i,
                estim_params=site.estim_params.model_dump() if site.estim_params else None,
                **data,
            )
        )
    for i, co in enumerate(note.co_interventions):
        children.append(
            CoIntervention(
                id=uow.new_id(),
                clinic_id=clinic_id,
                session_id=session.id,
                position=i,
                **co.model_dump(),
            )
        )
    for ae in note.adverse_events:
        children.append(
            AdverseEvent(
                id=uow.new_id(),
                clinic_id=clinic_id,
                patient_id=session.patient_id,
                session_id=session.id,
                recorded_by=actor.user_id,
                created_at=now,
                **ae.model_dump(),
            )
        )
    for i, m in enumerate(note.measurements):
        if m.taken_at is not None:
            check_not_future(m.taken_at, now, f"measurements.{i}.taken_at")
        scored = score_submission(
            m.instrument_id, m.answers, m.context, field_prefix=f"measurements.{i}."
        )
        children.append(
            Measurement(
                id=uow.new_id(),
                clinic_id=clinic_id,
                patient_id=session.patient_id,
                episode_id=episode.id,
                session_id=session.id,
                instrument_id=m.instrument_id,
                instrument_version=scored.instrument_version,
                answers=scored.answers,
                score=scored.score,
                context=m.context,
                taken_at=m.taken_at or note.started_at,
                recorded_by=actor.user_id,
                created_at=now,
            )
        )
    return children
