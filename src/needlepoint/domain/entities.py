"""The clinical records, as plain frozen dataclasses.

Field names are the column names of the matching table (a test holds them together).
Every clinical record carries `clinic_id`; ids are UUIDs; datetimes are timezone-aware
UTC. Records that can change carry `version`, bumped on every change, for optimistic
concurrency."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from needlepoint.domain.enums import (
    AccountCodePurpose,
    AdverseEventKind,
    Approach,
    AuditAction,
    AuditOutcome,
    ConsentMethod,
    CredentialPolicy,
    DrugClass,
    EpisodeStatus,
    FavouriteKind,
    FollowUpKind,
    LinkEnd,
    MessageKind,
    Modality,
    OutboxState,
    OverrideCode,
    Role,
    ScreeningDecision,
    SessionStatus,
    Severity,
    Sex,
    Side,
    SoapSection,
    Technique,
    TimePoint,
    Tolerance,
    TriggerPoint,
)

JSONDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Clinic:
    """A clinic (the tenant) and its safety, credential and billing settings."""

    id: UUID
    name: str
    created_at: datetime
    version: int = 1
    jurisdiction: str = "none"
    credential_policy: CredentialPolicy = CredentialPolicy.WARN
    screening_valid_days: int = 90
    bill_sides_separately: bool = False
    min_training_hours: float | None = None
    min_licence_years: float | None = None
    time_zone: str = "UTC"  # IANA name: forms show and accept this zone; storage is UTC


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    clinic_id: UUID
    email: str
    full_name: str
    role: Role
    created_at: datetime
    password_hash: str | None = None
    licence_number: str | None = None
    licence_date: date | None = None
    is_active: bool = True
    version: int = 1
    # An owner's unlock (or MFA reset): sign-in delays and the second factor's failure
    # count restart here.
    sign_in_reset_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """One dry needling course a practitioner completed (REFERENCE §6)."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    provider: str
    course: str
    hours_in_person: float
    hours_online: float
    completed_on: date
    exam_passed: bool
    regions: list[str]
    created_at: datetime
    supervised_sessions: int | None = None


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: UUID
    clinic_id: UUID
    user_id: UUID
    token_hash: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    scopes: str = "read write"  # space-separated: `read`, `write`
    expires_at: datetime | None = None  # None only for rows the migration could not date


@dataclass(frozen=True, slots=True)
class Patient:
    id: UUID
    clinic_id: UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: Sex
    created_at: datetime
    updated_at: datetime
    phone: str | None = None
    email: str | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class Referral:
    id: UUID
    clinic_id: UUID
    patient_id: UUID
    referrer_name: str
    received_on: date
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Consent:
    id: UUID
    clinic_id: UUID
    patient_id: UUID
    template_id: str
    template_version: str
    signer_name: str
    method: ConsentMethod
    signed_at: datetime
    copy_given: bool
    recorded_by: UUID
    created_at: datetime
    witness_name: str | None = None
    withdrawn_at: datetime | None = None
    version: int = 1
    signature: str | None = None
    signer_relationship: str | None = None
    """patient, parent or legal_guardian (None on consents recorded before it was asked)."""


@dataclass(frozen=True, slots=True)
class Screening:
    id: UUID
    clinic_id: UUID
    patient_id: UUID
    answers: JSONDict
    decision: ScreeningDecision
    reasons: list[JSONDict]
    rules_version: str
    screened_by: UUID
    screened_at: datetime
    created_at: datetime
    override_justification: str | None = None
    acknowledged: list[str] = field(default_factory=list)
    clearances: list[JSONDict] | None = None
    """The earlier absolute or site-level findings this screening cleared, each with what
    changed and why (None when it cleared nothing)."""


@dataclass(frozen=True, slots=True)
class Episode:
    id: UUID
    clinic_id: UUID
    patient_id: UUID
    clinician_id: UUID
    condition: str
    icd10_code: str
    body_region: str
    onset_date: date
    opened_on: date
    goals: str
    status: EpisodeStatus
    created_at: datetime
    updated_at: datetime
    closed_on: date | None = None
    discharge_reason: str | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class PlanItem:
    id: UUID
    clinic_id: UUID
    episode_id: UUID
    modality: Modality
    description: str
    created_at: datetime
    sessions_per_week: float | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """One visit's procedure note (SOAP). Signed notes are never edited in place."""

    id: UUID
    clinic_id: UUID
    patient_id: UUID
    episode_id: UUID
    clinician_id: UUID
    started_at: datetime
    subjective: str
    objective: str
    assessment: str
    plan: str
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    signed_by: UUID | None = None
    signed_at: datetime | None = None
    version: int = 1
    safety_flags: list[JSONDict] = field(default_factory=list)
    """Site-level warnings and overrides recorded with the note (rule ids and sites)."""
    cpt_code: str | None = None
    """Derived when the note is signed (20560 / 20561), from the distinct muscles needled."""
    billing_muscles: int | None = None


@dataclass(frozen=True, slots=True)
class NeedlingSite:
    id: UUID
    clinic_id: UUID
    session_id: UUID
    position: int
    muscle_id: str
    side: Side
    trigger_point: TriggerPoint
    technique: Technique
    needle_gauge_mm: float
    needle_length_mm: float
    depth_mm: float
    insertions: int
    local_twitch_responses: int
    electrical_stimulation: bool
    tolerance: Tolerance
    estim_params: JSONDict | None = None
    notes: str | None = None
    override_reason: str | None = None
    override_code: OverrideCode | None = None
    approach: Approach | None = None


@dataclass(frozen=True, slots=True)
class CoIntervention:
    id: UUID
    clinic_id: UUID
    session_id: UUID
    position: int
    modality: Modality
    description: str
    minutes: int | None = None


@dataclass(frozen=True, slots=True)
class AdverseEvent:
    id: UUID
    clinic_id: UUID
    patient_id: UUID
    kind: AdverseEventKind
    severity: Severity
    onset_at: datetime
    description: str
    recorded_by: UUID
    created_at: datetime
    session_id: UUID | None = None
    action_taken: str | None = None
    reportable: bool = False
    reported_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AdverseEventFollowUp:
    """One entry appended to an adverse event's story after it was recorded: onset,
    action taken, resolution, report to the board. Never edited; a correction is a new
    entry."""

    id: UUID
    clinic_id: UUID
    adverse_event_id: UUID
    patient_id: UUID
    kind: FollowUpKind
    text: str
    occurred_at: datetime
    recorded_by: UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Measurement:
    """One instrument administration: raw item answers kept, score computed from them."""

    id: UUID
    clinic_id: UUID
    patient_id: UUID
    instrument_id: str
    instrument_version: str
    answers: JSONDict
    taken_at: datetime
    recorded_by: UUID
    created_at: datetime
    score: float | None = None
    episode_id: UUID | None = None
    session_id: UUID | None = None
    context: JSONDict | None = None


@dataclass(frozen=True, slots=True)
class MedicationUse:
    id: UUID
    clinic_id: UUID
    patient_id: UUID
    drug: str
    drug_class: DrugClass
    days_per_week: int
    recorded_on: date
    recorded_by: UUID
    created_at: datetime
    episode_id: UUID | None = None
    dose_mg: float | None = None
    # Set when the patient reported it from home (issue 16): the questionnaire response it
    # came with. That is its patient-reported provenance, as a response naming its
    # measurement is a measurement's.
    response_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Amendment:
    """Appended to a signed session; the original note stays as it was."""

    id: UUID
    clinic_id: UUID
    session_id: UUID
    author_id: UUID
    reason: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: UUID
    clinic_id: UUID
    action: AuditAction
    entity_type: str
    entity_id: UUID
    occurred_at: datetime
    source: str
    actor_user_id: UUID | None = None
    patient_id: UUID | None = None
    before_digest: str | None = None
    after_digest: str | None = None
    request_id: str | None = None
    outcome: AuditOutcome = AuditOutcome.SUCCESS
    source_address: str | None = None
    # The hash chain (see domain/audit.py): set when the event is written, in the order
    # the clinic's events are committed; an unwritten event has seq 0.
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """A clinic's security policy; one per clinic, its id the clinic's id. A clinic without
    a row has these defaults."""

    id: UUID
    clinic_id: UUID
    mfa_required: bool = False
    idle_timeout_minutes: int = 30
    absolute_timeout_hours: int = 12
    emergency_access_minutes: int = 60
    care_team_restriction: bool = False
    version: int = 1
    api_token_days: int = 90  # how long a new API token lasts


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser. The cookie holds only a random id; this row (found by the id's
    hash) holds the rest, so a session can be revoked server-side."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    token_hash: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None = None
    mfa_pending: bool = False
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MfaSecret:
    """A user's TOTP secret; active once confirmed with a first code. `last_counter` is
    the time step of the last accepted code, so a code cannot be replayed."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    secret: str
    created_at: datetime
    confirmed_at: datetime | None = None
    last_counter: int | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class RecoveryCode:
    """A one-time MFA recovery code, stored only as its hash."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    code_hash: str
    created_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountCode:
    """A one-time code an owner issued for a user (shown once; stored as its hash):
    enrol a second factor when the clinic requires one, or set a new password after an
    owner-initiated reset."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    purpose: AccountCodePurpose
    code_hash: str
    issued_by: UUID
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmergencyAccess:
    """A break-glass grant: a clinician opened a patient's record outside their normal
    access, giving a reason; valid until `expires_at`, reviewed by the owner."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    patient_id: UUID
    reason: str
    granted_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Notification:
    """Something a user of the clinic must look at (e.g. an emergency access)."""

    id: UUID
    clinic_id: UUID
    recipient_id: UUID
    kind: str
    subject_id: UUID
    message: str
    created_at: datetime
    read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CareTeamMember:
    """A colleague added by name to a patient's care team (by the owner or a member of
    the team): besides the responsible clinician of each of the patient's episodes, the
    people who may open and write the record when the clinic restricts records to the
    care team (`domain.care_team`)."""

    id: UUID
    clinic_id: UUID
    patient_id: UUID
    user_id: UUID
    added_by: UUID
    reason: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class NoteSnippet:
    """A text snippet for one SOAP section of a session note: the clinic's (owner_id None,
    written by the owner) or one clinician's own. Inserted by the clinician, never signed
    unseen."""

    id: UUID
    clinic_id: UUID
    owner_id: UUID | None
    section: SoapSection
    title: str
    text: str
    created_by: UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Favourite:
    """A clinician's favourite muscle (`value` its catalogue id) or needle size (`value`
    "gauge x length" in mm, e.g. "0.25x30"), in the clinician's order."""

    id: UUID
    clinic_id: UUID
    user_id: UUID
    kind: FavouriteKind
    value: str
    position: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ImportedRecord:
    """Provenance of a record that came from another system (docs/import.md): which of our
    records (`kind`: patient, episode or session; `record_id`), which record of the other
    system (`source`: csv or fhir; `external_id`: the patient's id there, or
    `patient id/episode id` and `patient id/session id` for the records inside it), who
    imported it and when. A re-run finds imported patients here and skips them; the note
    page shows an imported note as imported."""

    id: UUID
    clinic_id: UUID
    kind: str
    record_id: UUID
    patient_id: UUID
    source: str
    external_id: str
    imported_by: UUID
    imported_at: datetime


# ---- questionnaires from home (issue 16) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionnairePlan:
    """The clinic's choice for one condition: which questionnaires its patients answer at
    which time points (`instruments`: instrument id → time point values), how often during
    care (`every_n_days`; None = before each visit) and the follow-ups after discharge
    (`follow_up_days`, days after discharge). Without a plan the defaults of
    `domain.questionnaires` apply."""

    id: UUID
    clinic_id: UUID
    condition: str
    instruments: JSONDict
    follow_up_days: list[int]
    updated_by: UUID
    updated_at: datetime
    every_n_days: int | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class QuestionnaireAssignment:
    """One questionnaire a patient is asked to answer at one time point of an episode,
    due on `due_on`; done when `measurement_id` names the stored (patient-reported)
    outcome; `cancelled_at` when the clinic withdrew it."""

    id: UUID
    clinic_id: UUID
    patient_id: UUID
    episode_id: UUID
    instrument_id: str
    time_point: TimePoint
    due_on: date
    assigned_by: UUID
    created_at: datetime
    completed_at: datetime | None = None
    measurement_id: UUID | None = None
    cancelled_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class QuestionnaireLink:
    """A link e-mailed to a patient: opens that patient's due questionnaires until
    `expires_at`. Only the token's hash is stored. It ends when used (everything it
    opened was submitted), superseded by a newer link, or revoked by the clinic."""

    id: UUID
    clinic_id: UUID
    patient_id: UUID
    token_hash: str
    issued_by: UUID
    created_at: datetime
    expires_at: datetime
    episode_id: UUID | None = None
    ended_at: datetime | None = None
    ended_because: LinkEnd | None = None
    reminders_sent: int = 0
    version: int = 1
    kiosk: bool = False
    """Opened on the clinic's tablet (`start_kiosk`), never e-mailed: no sitting after use."""


@dataclass(frozen=True, slots=True)
class QuestionnaireResponse:
    """A patient's answers to one assigned questionnaire, saved as they go (resumable);
    scored only once submitted (`submitted_at`, `measurement_id`)."""

    id: UUID
    clinic_id: UUID
    patient_id: UUID
    assignment_id: UUID
    link_id: UUID
    answers: JSONDict
    started_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    measurement_id: UUID | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """An e-mail waiting to go, written in the same transaction as the act that caused
    it; sent by the outbox worker (`actions.outbox`). The body never holds health
    information; the link (`link_url`, sealed at rest) is put into the body only when
    sending and forgotten once sent."""

    id: UUID
    clinic_id: UUID
    kind: MessageKind
    recipient: str
    subject: str
    body: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    patient_id: UUID | None = None
    link_id: UUID | None = None
    link_url: str | None = None
    claimed_at: datetime | None = None
    claim_id: UUID | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    version: int = 1


Entity = (
    Clinic
    | AccountCode
    | User
    | TrainingRecord
    | ApiToken
    | Patient
    | Referral
    | Consent
    | Screening
    | Episode
    | PlanItem
    | Session
    | NeedlingSite
    | CoIntervention
    | AdverseEvent
    | AdverseEventFollowUp
    | Measurement
    | MedicationUse
    | Amendment
    | AuditEvent
    | SecuritySettings
    | WebSession
    | MfaSecret
    | RecoveryCode
    | EmergencyAccess
    | Notification
    | CareTeamMember
    | NoteSnippet
    | Favourite
    | ImportedRecord
    | QuestionnairePlan
    | QuestionnaireAssignment
    | QuestionnaireLink
    | QuestionnaireResponse
    | OutboxMessage
)
