"""Bringing another system's records in (docs/import.md): the acts an import needs that
the clinical actions do not cover. Episodes, measurements outside a note and discharges
go through their ordinary actions (`open_episode`, `record_measurement`,
`close_episode`); these three keep what the other system recorded and ours would
otherwise overwrite (the clinician of record, the original signer and time, an
amendment's author), and mark each imported record as imported (`ImportedRecord`).

The clinical rules still apply: named catalogue muscles and refused sites, a note
inside its episode and not in the future, a signer who may sign, instruments scored
from their answers. What the other system held and ours cannot see is not made up: no
screening or consent is fabricated for an imported note; the note carries a flag saying
that they were recorded in the other system and not checked here."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.actions.sessions import _note_children
from needlepoint.domain.audit import signed_note
from needlepoint.domain.billing import derive_cpt
from needlepoint.domain.commands import ImportAmendment, ImportPatient, ImportSession
from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    Clinic,
    Episode,
    ImportedRecord,
    Measurement,
    NeedlingSite,
    Patient,
    Session,
    User,
)
from needlepoint.domain.enums import AuditAction, SessionStatus
from needlepoint.domain.episodes import ensure_open
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.notes import check_not_future, check_signable, check_sites, ensure_signed
from needlepoint.domain.permissions import Permission, allows
from needlepoint.ports import UnitOfWork

IMPORTED_FLAG: dict[str, Any] = {
    "rule": "imported",
    "action": "imported",
    "site": None,
    "message": (
        "Imported from another system: the screening and consent for this needling were "
        "recorded there and are not on record here; they were not checked on import."
    ),
}
"""The safety flag of an imported note with needling: honest about what was not checked."""


@action(Permission.IMPORT_RECORDS, AuditAction.PATIENT_IMPORTED)
def import_patient(uow: UnitOfWork, actor: Actor, cmd: ImportPatient) -> Patient:
    """Register a patient brought from another system, with its id there."""
    with uow:
        user = authorize(uow, actor, Permission.IMPORT_RECORDS)
        now = uow.now()
        patient = Patient(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            created_at=now,
            updated_at=now,
            **cmd.model_dump(exclude={"source", "external_id"}),
        )
        link = _link(
            uow, actor, user, "patient", patient.id, patient.id, cmd.source, cmd.external_id
        )
        uow.add(patient)
        uow.add(link)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.PATIENT_IMPORTED,
            patient,
            after=[patient, link],
            patient_id=patient.id,
        )
        uow.commit()
    return patient


@action(Permission.IMPORT_RECORDS, AuditAction.SESSION_IMPORTED)
def import_session(uow: UnitOfWork, actor: Actor, cmd: ImportSession) -> Session:
    """Record a note as the other system held it: its clinician of record, and when it
    was signed there, its original signer and time (the note arrives signed and locked;
    its billing code is derived as at signing). The import event holds the digest of the
    signed note, as a signing event does (`audit verify` checks it)."""
    with uow:
        user = authorize(uow, actor, Permission.IMPORT_RECORDS)
        episode = load(uow, Episode, cmd.episode_id, actor, field="episode_id")
        ensure_open(episode)
        clinician = load(uow, User, cmd.clinician_id, actor, field="clinician_id")
        if not allows(clinician.role, Permission.RECORD_SESSION):
            raise InvalidInput(
                f"{clinician.full_name} ({clinician.role.value}) cannot be a note's clinician",
                field="clinician_id",
            )
        signer: User | None = None
        if cmd.signed_by is not None:
            signer = load(uow, User, cmd.signed_by, actor, field="signed_by")
            if not allows(signer.role, Permission.SIGN_SESSION):
                raise InvalidInput(
                    f"{signer.full_name} ({signer.role.value}) may not sign notes",
                    field="signed_by",
                )
        now = uow.now()
        if cmd.signed_at is not None:
            check_not_future(cmd.signed_at, now, "signed_at")
        check_sites(cmd.sites)
        draft = Session(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=episode.patient_id,
            episode_id=episode.id,
            clinician_id=clinician.id,
            started_at=cmd.started_at,
            subjective=cmd.subjective,
            objective=cmd.objective,
            assessment=cmd.assessment,
            plan=cmd.plan,
            status=SessionStatus.DRAFT,
            created_at=now,
            updated_at=now,
            safety_flags=[dict(IMPORTED_FLAG)] if cmd.sites else [],
        )
        # What was recorded in the note was recorded by its clinician, not by the import.
        children = [
            replace(c, recorded_by=clinician.id) if isinstance(c, Measurement | AdverseEvent) else c
            for c in _note_children(uow, actor, episode, draft, cmd)
        ]
        session = draft
        if signer is not None and cmd.signed_at is not None:
            check_signable(draft, len(children))
            clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
            sites = [c for c in children if isinstance(c, NeedlingSite)]
            cpt = derive_cpt(sites, sides_separately=clinic.bill_sides_separately)
            session = replace(
                draft,
                status=SessionStatus.SIGNED,
                signed_by=signer.id,
                signed_at=cmd.signed_at,
                version=2,
                cpt_code=cpt.code if cpt else None,
                billing_muscles=cpt.muscles if cpt else None,
            )
        link = _link(
            uow,
            actor,
            user,
            "session",
            session.id,
            episode.patient_id,
            cmd.source,
            cmd.external_id,
        )
        uow.add(session)
        for child in children:
            uow.add(child)
        uow.add(link)
        covered = (
            signed_note(session, children)
            if session.status is SessionStatus.SIGNED
            else [session, *children]
        )
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SESSION_IMPORTED,
            session,
            after=covered,
            patient_id=episode.patient_id,
        )
        uow.commit()
    return session


@action(Permission.IMPORT_RECORDS, AuditAction.SESSION_AMENDED)
def import_amendment(uow: UnitOfWork, actor: Actor, cmd: ImportAmendment) -> Amendment:
    """Append an amendment written in the other system to an imported signed note,
    keeping its author and time (an amendment is later than the signature)."""
    with uow:
        authorize(uow, actor, Permission.IMPORT_RECORDS)
        session = load(uow, Session, cmd.session_id, actor, field="session_id")
        ensure_signed(session)
        author = load(uow, User, cmd.author_id, actor, field="author_id")
        if not allows(author.role, Permission.AMEND_SESSION):
            raise InvalidInput(
                f"{author.full_name} ({author.role.value}) may not amend notes",
                field="author_id",
            )
        check_not_future(cmd.written_at, uow.now(), "written_at")
        if session.signed_at is not None and cmd.written_at < session.signed_at:
            raise InvalidInput(
                "the amendment is dated before the note was signed", field="written_at"
            )
        amendment = Amendment(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            session_id=session.id,
            author_id=author.id,
            reason=cmd.reason,
            text=cmd.text,
            created_at=cmd.written_at,
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


def _link(
    uow: UnitOfWork,
    actor: Actor,
    user: User,
    kind: str,
    record_id: UUID,
    patient_id: UUID,
    source: str,
    external_id: str,
) -> ImportedRecord:
    return ImportedRecord(
        id=uow.new_id(),
        clinic_id=actor.clinic_id,
        kind=kind,
        record_id=record_id,
        patient_id=patient_id,
        source=source,
        external_id=external_id,
        imported_by=user.id,
        imported_at=uow.now(),
    )
