"""The patient's own pages behind their questionnaire link (issue 16): their progress and
a copy of their signed consent (one audited read: `open_own_record`), withdrawing their
consent (`withdraw_own_consent`), and kiosk mode: a clinician hands a tablet to the
patient in the clinic (`start_kiosk`).

What a link opens for reading: a link opens the patient's own progress and consent while
it is valid (not expired, not revoked by the clinic, not superseded by a newer link). A
link that ended by use (every questionnaire sent) opens them only in the sitting in which
the patient sent the last answers: for `SITTING` after it ended, and only in the browser
that sent them (the web layer proves that with a signed cookie and says so with
`sitting=True`), never on the clinic's kiosk; opened later, or elsewhere, it is a used
link ("this link has been used", with the way to ask for a new one). Every access is
audited with the source `patient-link`.

Withdrawal: the patient withdraws every consent in force; the consent is marked
withdrawn at that moment (the same field a clinician's withdrawal sets), so the existing
needling rules (`domain.consent`: only a consent in force allows needling) refuse
needling from then on, until the patient signs a new consent with the clinician.
Withdrawal is not a record of refusal of care: the chart shows it, and the clinician who
recorded the consent is notified."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from uuid import UUID

from needlepoint.actions.care_team import check_care_team
from needlepoint.actions.context import Actor, audit, authorize, load, notify
from needlepoint.actions.questionnaires import _patient_audit, _pending
from needlepoint.actions.registry import action
from needlepoint.adapters.db.questionnaire_links import find_link
from needlepoint.domain.entities import (
    Clinic,
    Consent,
    Measurement,
    MedicationUse,
    Patient,
    QuestionnaireAssignment,
    QuestionnaireLink,
    QuestionnaireResponse,
    Session,
)
from needlepoint.domain.enums import AuditAction, LinkEnd, SessionStatus
from needlepoint.domain.errors import InvalidInput, NotFound, RecordLocked
from needlepoint.domain.permissions import Permission
from needlepoint.domain.questionnaires import (
    LinkClosed,
    hash_link_token,
    is_self_report,
    new_link_token,
)
from needlepoint.ports import ConnectedUnitOfWork, UnitOfWork

SITTING = timedelta(minutes=30)
"""How long after the last answer the patient may still read their progress and consent
through a used link, in the browser that sent the answers."""
KIOSK_VALID = timedelta(hours=2)
"""A kiosk link (the clinic's tablet) works for two hours, never by e-mail."""
WITHDRAWN_MESSAGE = "A patient withdrew their consent to dry needling through their link."


def _link_for_reading(
    uow: ConnectedUnitOfWork, token: str, *, sitting: bool = False
) -> QuestionnaireLink:
    """The link of this token for the patient's own pages: open; or ended by use less
    than `SITTING` ago, when the caller proved the request comes from the sitting that
    used it (`sitting`); LinkClosed otherwise."""
    with uow.engine.connect() as conn:
        found = find_link(conn, hash_link_token(token))
    if found is None:
        raise LinkClosed("unknown")
    link = uow.get(QuestionnaireLink, found.id, found.clinic_id)
    if link is None:
        raise LinkClosed("unknown")
    if link.ended_at is not None:
        # A kiosk's tablet passes to the next person: its link has no sitting after use.
        in_sitting = (
            link.ended_because is LinkEnd.USED
            and sitting
            and not link.kiosk
            and uow.now() < link.ended_at + SITTING
        )
        if not in_sitting:
            raise LinkClosed(str(link.ended_because or LinkEnd.REVOKED), link=link)
    if uow.now() >= link.expires_at:
        raise LinkClosed("expired", link=link)
    return link


@dataclass(frozen=True, slots=True)
class OwnRecord:
    """What the patient's own pages show: the clinic (name, zone), the patient's
    measurements (each marked whether the patient sent it), the questionnaires they were
    asked, their consents, and how many questionnaires are still to answer."""

    link: QuestionnaireLink
    clinic_name: str
    time_zone: str
    measurements: list[Measurement]
    patient_reported: set[UUID]
    asked: list[str]
    consents: list[Consent]
    waiting: int
    medication: list[MedicationUse] = field(default_factory=list)
    """The patient's analgesic log (each entry reported from home names its response)."""


@action(
    None,
    AuditAction.PATIENT_RECORD_VIEWED,
    unauthenticated="a patient, identified by the link's token",
)
def open_own_record(
    uow: ConnectedUnitOfWork, token: str, *, address: str | None = None, sitting: bool = False
) -> OwnRecord:
    """The patient's own progress and consents, through their link (a used one only in
    the sitting that used it: see the module). Audited."""
    with uow:
        link = _link_for_reading(uow, token, sitting=sitting)
        patient = uow.get(Patient, link.patient_id, link.clinic_id)
        clinic = uow.get(Clinic, link.clinic_id, link.clinic_id)
        if patient is None or clinic is None:
            raise LinkClosed("unknown")
        # An unsigned draft note is not data: its scores are not shown (as on the chart).
        signed = {
            s.id
            for s in uow.list_by(Session, clinic.id, patient_id=patient.id)
            if s.status == SessionStatus.SIGNED
        }
        measurements = [
            m
            for m in uow.list_by(Measurement, clinic.id, patient_id=patient.id)
            if m.score is not None
            and is_self_report(m.instrument_id)
            and (m.session_id is None or m.session_id in signed)
        ]
        reported = {
            r.measurement_id
            for r in uow.list_by(QuestionnaireResponse, clinic.id, patient_id=patient.id)
            if r.measurement_id is not None and r.submitted_at is not None
        }
        assignments = uow.list_by(QuestionnaireAssignment, clinic.id, patient_id=patient.id)
        asked = sorted(
            {a.instrument_id for a in assignments} | {m.instrument_id for m in measurements}
        )
        consents = sorted(
            uow.list_by(Consent, clinic.id, patient_id=patient.id), key=lambda c: c.signed_at
        )
        waiting = len(_pending(uow, patient)) if link.ended_at is None else 0
        medication = uow.list_by(MedicationUse, clinic.id, patient_id=patient.id)
        _patient_audit(uow, link, AuditAction.PATIENT_RECORD_VIEWED, patient, address)
        uow.commit()
    return OwnRecord(
        link,
        clinic.name,
        clinic.time_zone,
        measurements,
        reported,
        asked,
        consents,
        waiting,
        medication,
    )


@action(
    None,
    AuditAction.CONSENT_WITHDRAWN_BY_PATIENT,
    unauthenticated="a patient, identified by the link's token",
)
def withdraw_own_consent(
    uow: ConnectedUnitOfWork,
    token: str,
    consent_id: UUID,
    *,
    address: str | None = None,
    sitting: bool = False,
) -> Consent:
    """The patient withdraws their consent to dry needling: marked withdrawn now (no
    needling from this moment), the clinician who recorded it notified. Audited."""
    with uow:
        link = _link_for_reading(uow, token, sitting=sitting)
        consent = uow.get(Consent, consent_id, link.clinic_id)
        if consent is None or consent.patient_id != link.patient_id:
            raise NotFound("no such consent of yours", field="consent_id")
        if consent.withdrawn_at is not None:
            raise RecordLocked("this consent is already withdrawn", field="consent_id")
        now = uow.now()
        if now < consent.signed_at:
            raise InvalidInput("this consent is not signed yet", field="consent_id")
        withdrawn = replace(consent, withdrawn_at=now, version=consent.version + 1)
        uow.replace(consent, withdrawn)
        notify(
            uow,
            link.clinic_id,
            consent.recorded_by,
            "consent.withdrawn_by_patient",
            consent.patient_id,
            WITHDRAWN_MESSAGE,
        )
        _patient_audit(uow, link, AuditAction.CONSENT_WITHDRAWN_BY_PATIENT, withdrawn, address)
        uow.commit()
    return withdrawn


@dataclass(frozen=True, slots=True)
class KioskStarted:
    """The kiosk's link (its token goes straight to the tablet's address bar, never into
    an e-mail) and the questionnaires it opens."""

    link: QuestionnaireLink
    token: str
    waiting: int


@action(Permission.RECORD_MEASUREMENT, AuditAction.KIOSK_STARTED)
def start_kiosk(uow: UnitOfWork, actor: Actor, patient_id: UUID) -> KioskStarted:
    """Hand the tablet to the patient: a short-lived link (two hours) that opens the
    patient's waiting questionnaires on this device. The patient's e-mailed link keeps
    working. The web page that calls this signs the clinician out of the tablet."""
    with uow:
        user = authorize(uow, actor, Permission.RECORD_MEASUREMENT)
        patient = load(uow, Patient, patient_id, actor, field="patient_id")
        check_care_team(uow, actor, user, patient.id)
        waiting = _pending(uow, patient)
        if not waiting:
            raise InvalidInput(
                "the patient has no questionnaire waiting: assign one first", field="patient_id"
            )
        now = uow.now()
        token = new_link_token()
        link = QuestionnaireLink(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            patient_id=patient.id,
            token_hash=hash_link_token(token),
            issued_by=actor.user_id,
            created_at=now,
            expires_at=now + KIOSK_VALID,
            episode_id=waiting[0].episode_id,
            kiosk=True,
        )
        uow.add(link)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.KIOSK_STARTED,
            link,
            after=[link],
            patient_id=patient.id,
        )
        uow.commit()
    return KioskStarted(link, token, len(waiting))
