"""Controlled vocabularies shared by entities, the API and the database."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    CLINICIAN = "clinician"
    STUDENT = "student"
    ASSISTANT = "assistant"
    AUDITOR = "auditor"
    PATIENT = "patient"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class EpisodeStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SessionStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class Side(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    MIDLINE = "midline"


class TriggerPoint(StrEnum):
    ACTIVE = "active"
    LATENT = "latent"
    NONE = "none"


class Technique(StrEnum):
    STATIC = "static"
    PISTONING = "pistoning"
    SUPERFICIAL = "superficial"
    PERIOSTEAL = "periosteal"
    TENDON_FENESTRATION = "tendon_fenestration"


class Tolerance(StrEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"


class Modality(StrEnum):
    """What a plan item or co-intervention is; dry needling is itself a plan modality."""

    DRY_NEEDLING = "dry_needling"
    MANUAL_THERAPY = "manual_therapy"
    EXERCISE = "exercise"
    EDUCATION = "education"
    OTHER = "other"


class AdverseEventKind(StrEnum):
    BRUISING = "bruising"
    BLEEDING = "bleeding"
    PAIN_DURING = "pain_during"
    PAIN_AFTER = "pain_after"
    WORSE_SYMPTOMS = "worse_symptoms"
    DROWSINESS = "drowsiness"
    HEADACHE = "headache"
    NAUSEA = "nausea"
    FAINTING = "fainting"
    PNEUMOTHORAX = "pneumothorax"
    INFECTION = "infection"
    NERVE_INJURY = "nerve_injury"
    OTHER = "other"


class Severity(StrEnum):
    """White et al. classes (REFERENCE §2)."""

    MILD = "mild"
    SIGNIFICANT = "significant"
    SERIOUS = "serious"


class ConsentMethod(StrEnum):
    SIGNATURE = "signature"
    TYPED_NAME = "typed_name"
    WITNESS = "witness"


class CredentialPolicy(StrEnum):
    """What happens when a practitioner does not meet the clinic's credential rules."""

    WARN = "warn"
    BLOCK = "block"


class ScreeningDecision(StrEnum):
    CONTRAINDICATED = "contraindicated"
    PRECAUTIONS = "precautions"
    CLEAR = "clear"


class DrugClass(StrEnum):
    PARACETAMOL = "paracetamol"
    NSAID = "nsaid"
    OPIOID = "opioid"
    MUSCLE_RELAXANT = "muscle_relaxant"
    NEUROPATHIC = "neuropathic"
    OTHER = "other"


class AuditAction(StrEnum):
    """Every audited event type, in one enumeration (zulip's RealmAuditLog habit)."""

    CLINIC_REGISTERED = "clinic.registered"
    USER_REGISTERED = "user.registered"
    API_TOKEN_ISSUED = "user.api_token_issued"  # noqa: S105 - an event name
    PATIENT_REGISTERED = "patient.registered"
    PATIENT_UPDATED = "patient.updated"
    EPISODE_OPENED = "episode.opened"
    EPISODE_CLOSED = "episode.closed"
    SESSION_RECORDED = "session.recorded"
    SESSION_UPDATED = "session.updated"
    SESSION_SIGNED = "session.signed"
    SESSION_AMENDED = "session.amended"
    MEASUREMENT_RECORDED = "measurement.recorded"
    MEDICATION_RECORDED = "medication.recorded"
    SCREENING_RECORDED = "screening.recorded"
    CONSENT_RECORDED = "consent.recorded"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    TRAINING_RECORDED = "user.training_recorded"
    CLINIC_SETTINGS_CHANGED = "clinic.settings_changed"
    RECORD_VIEWED = "record.viewed"
    ACCESS_DENIED = "access.denied"
    AUDIT_EXPORTED = "audit.exported"
    LOGIN_SUCCEEDED = "auth.login_succeeded"
    LOGIN_FAILED = "auth.login_failed"
    SIGNED_OUT = "auth.signed_out"
    SIGNED_OUT_EVERYWHERE = "auth.signed_out_everywhere"
    MFA_ENROLLED = "auth.mfa_enrolled"
    MFA_RECOVERY_CODE_USED = "auth.mfa_recovery_code_used"
    SECURITY_SETTINGS_CHANGED = "clinic.security_settings_changed"
    API_TOKEN_REVOKED = "user.api_token_revoked"  # noqa: S105 - an event name
    EMERGENCY_ACCESS_GRANTED = "patient.emergency_access_granted"
    CARE_TEAM_MEMBER_ADDED = "patient.care_team_member_added"
    LOGIN_PASSWORD_ACCEPTED = "auth.login_password_accepted"  # noqa: S105 - an event name
    # the account lifecycle (issue 14)
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105 - an event name
    PASSWORD_RESET_ISSUED = "user.password_reset_issued"  # noqa: S105 - an event name
    PASSWORD_RESET_COMPLETED = "auth.password_reset_completed"  # noqa: S105 - an event name
    MFA_RESET = "user.mfa_reset"
    MFA_RECOVERY_CODES_REISSUED = "auth.mfa_recovery_codes_reissued"
    MFA_ENROLMENT_CODE_ISSUED = "user.mfa_enrolment_code_issued"
    SIGN_IN_UNLOCKED = "user.sign_in_unlocked"
    # the clinician's day, second round (issue 15)
    SESSION_DISCARDED = "session.discarded"
    ADVERSE_EVENT_RECORDED = "adverse_event.recorded"
    ADVERSE_EVENT_FOLLOWED_UP = "adverse_event.followed_up"

    # templates and favourites (issue 15 item 7)
    NOTE_SNIPPET_ADDED = "clinic.note_snippet_added"
    FAVOURITES_SET = "user.favourites_set"

    # import from another system (issue 17 item 2)
    PATIENT_IMPORTED = "patient.imported"
    SESSION_IMPORTED = "session.imported"

    # staff and patient details in the web app (issue 15)
    USER_UPDATED = "user.updated"
    REFERRAL_RECORDED = "patient.referral_recorded"

    # printable documents (issue 17 item 3): a PDF of health information left the system
    DOCUMENT_EXPORTED = "record.document_exported"

    # the de-identified research export (issue 17 item 4): a disclosure, audited as such
    RESEARCH_EXPORTED = "research.exported"

    # patient-reported questionnaires from home (issue 16)
    QUESTIONNAIRE_PLAN_SET = "questionnaire.plan_set"
    QUESTIONNAIRES_ASSIGNED = "questionnaire.assigned"
    QUESTIONNAIRE_LINK_ISSUED = "questionnaire.link_issued"
    QUESTIONNAIRE_LINK_REVOKED = "questionnaire.link_revoked"
    QUESTIONNAIRE_OPENED = "questionnaire.opened"
    QUESTIONNAIRE_ANSWER_SAVED = "questionnaire.answer_saved"
    QUESTIONNAIRE_SUBMITTED = "questionnaire.submitted"
    QUESTIONNAIRE_LINK_REQUESTED = "questionnaire.link_requested"
    QUESTIONNAIRE_REMINDER_QUEUED = "questionnaire.reminder_queued"
    # analgesic use reported by the patient from home: analgesic-log entries, not a score
    MEDICATION_REPORTED = "medication.patient_reported"
    QUESTIONNAIRE_CANCELLED = "questionnaire.cancelled"
    MESSAGE_SENT = "outbox.message_sent"
    MESSAGE_FAILED = "outbox.message_failed"
    # the patient's own pages and kiosk mode (issue 16, second part)
    PATIENT_RECORD_VIEWED = "patient_link.record_viewed"
    CONSENT_WITHDRAWN_BY_PATIENT = "consent.withdrawn_by_patient"
    KIOSK_STARTED = "questionnaire.kiosk_started"

    # FHIR export (issue 17 item 1): a patient's record disclosed ($everything, bulk export)
    RECORDS_DISCLOSED = "records.disclosed"


class FollowUpKind(StrEnum):
    """What a follow-up entry of an adverse event records (appended, never edited)."""

    ONSET = "onset"  # when and how the symptoms began, as learned later
    ACTION = "action"  # what was done: advice, referral, treatment
    RESOLUTION = "resolution"  # the event resolved (or its lasting outcome)
    REPORTED = "reported"  # reported to the licensing board / regulator
    NOTE = "note"


class AccountCodePurpose(StrEnum):
    """What a one-time code an owner issued lets its user do."""

    MFA_ENROLMENT = "mfa_enrolment"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password


class AuditOutcome(StrEnum):
    """Whether the audited attempt was carried out or refused."""

    SUCCESS = "success"
    DENIED = "denied"


# ---- issue 13, site rules (truth-sites) -------------------------------------------------


class Approach(StrEnum):
    """How the needle was directed at a site: what the thorax rules ask about (needle
    tangentially, away from the lung, with pincer palpation or over bone)."""

    PINCER = "pincer"
    TANGENTIAL = "tangential"
    OVER_BONE = "over_bone"
    PERPENDICULAR = "perpendicular"


class OverrideCode(StrEnum):
    """Why an overridable site-level refusal was overridden (`site_rules.yaml`
    `override_reasons` words each one for the screen)."""

    IMAGING_GUIDED = "imaging_guided"
    TECHNIQUE_MODIFIED = "technique_modified"
    CONDITION_RESOLVED = "condition_resolved"
    SPECIALIST_CLEARANCE = "specialist_clearance"
    INFORMED_PATIENT_CHOICE = "informed_patient_choice"


class SoapSection(StrEnum):
    """The section of a session note a text snippet is written for."""

    SUBJECTIVE = "subjective"
    OBJECTIVE = "objective"
    ASSESSMENT = "assessment"
    PLAN = "plan"


class FavouriteKind(StrEnum):
    """What a clinician keeps at hand in the note: a muscle, or a needle size."""

    MUSCLE = "muscle"
    NEEDLE = "needle"


# ---- issue 16, questionnaires from home ---------------------------------------------------


class TimePoint(StrEnum):
    """When a patient-reported questionnaire is due in an episode of care."""

    INTAKE = "intake"  # when the episode opens
    DURING_CARE = "during_care"  # before each visit, or every N days while the episode is open
    DISCHARGE = "discharge"  # when the episode closes
    FOLLOW_UP = "follow_up"  # after discharge (default 6 weeks and 3 months)


class LinkEnd(StrEnum):
    """Why a questionnaire link no longer opens (an expired link simply passed its time)."""

    USED = "used"  # every questionnaire it opened was submitted
    SUPERSEDED = "superseded"  # a newer link was sent to the same patient
    REVOKED = "revoked"  # the clinic withdrew it


class MessageKind(StrEnum):
    """What an outbox message is."""

    INVITATION = "invitation"  # a new questionnaire link
    REMINDER = "reminder"  # the same questionnaires, still unanswered
    LINK_REQUEST = "link_request"  # a patient asked for a new link: told to the clinic


class OutboxState(StrEnum):
    """Where an outbox message is on its way out (`actions.outbox` explains the claims)."""

    PENDING = "pending"  # waiting for its next attempt time
    SENDING = "sending"  # claimed by a worker (a stale claim is taken over)
    SENT = "sent"  # accepted by the SMTP server
    FAILED = "failed"  # given up after the last attempt
