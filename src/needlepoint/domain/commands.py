"""Commands: what an entrypoint asks an action to do, as validated plain values.

Every entrypoint (API, web form, CLI, importer, generator) builds one of these; the
field constraints here are therefore the single source of input validation, and the API
publishes them in its OpenAPI schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from needlepoint.domain.clinic_time import is_zone_name
from needlepoint.domain.enums import (
    AdverseEventKind,
    Approach,
    ConsentMethod,
    CredentialPolicy,
    DrugClass,
    FollowUpKind,
    Modality,
    OverrideCode,
    Role,
    Severity,
    Sex,
    Side,
    SoapSection,
    Technique,
    TimePoint,
    Tolerance,
    TriggerPoint,
)

# Clinical times and dates lie within these years: anything outside is a typing error,
# and a value at the edge of what Python can represent (year 9999 with a time zone
# offset) would overflow when converted to UTC or shown in the clinic's time zone.
EARLIEST_YEAR, LATEST_YEAR = 1800, 2999


def _not_a_number(value: object) -> object:
    # Lax parsing would read "0" or "1e9" as seconds since 1970: a time must be written
    # as one (ISO 8601), as the schema says.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be a date and time in ISO 8601 (e.g. 2026-03-01T09:30:00Z)")
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("must be a date and time in ISO 8601 (e.g. 2026-03-01T09:30:00Z)")
    return value


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}") from None
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone (e.g. 2026-03-01T09:30:00Z)")
    return _in_range(value)


def _date_in_range(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


AwareDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_aware)]
"""A moment, with its time zone, within the clinical years."""
QueryDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_in_range)]
"""A moment in a filter (a naive one is read as UTC by the query), within the years."""
ClinicalDate = Annotated[date, AfterValidator(_date_in_range)]
"""A calendar date within the clinical years."""
Name = Annotated[str, Field(min_length=1, max_length=100)]


def _zone_name(value: str) -> str:
    if not is_zone_name(value):
        raise ValueError(
            f"{value!r} is not a time zone name: use an IANA name such as America/Los_Angeles"
        )
    return value


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_zone_name)]
"""An IANA time zone name (`America/Los_Angeles`), as the tz database spells it."""
Text = Annotated[str, Field(max_length=20_000)]
# A password exactly as typed: every character counts, leading and trailing spaces too
# (commands otherwise strip surrounding whitespace).
Password = Annotated[
    str, StringConstraints(strip_whitespace=False), Field(min_length=8, max_length=128)
]
TypedPassword = Annotated[
    str, StringConstraints(strip_whitespace=False), Field(min_length=1, max_length=256)
]


class Command(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, allow_inf_nan=False
    )


# --- clinics and users ------------------------------------------------------------------


class RegisterClinic(Command):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    owner_email: Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    owner_name: Annotated[str, Field(min_length=1, max_length=200)]
    owner_password: Password | None = None
    time_zone: TimeZoneName | None = None  # None: the server's zone


class TrainingCourse(Command):
    provider: Annotated[str, Field(min_length=1, max_length=200)]
    course: Annotated[str, Field(min_length=1, max_length=200)]
    hours_in_person: Annotated[float, Field(ge=0, le=2000)]
    hours_online: Annotated[float, Field(ge=0, le=2000)] = 0
    completed_on: ClinicalDate
    exam_passed: bool
    regions: list[Annotated[str, Field(min_length=1, max_length=64)]] = []


class RegisterUser(Command):
    email: Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    full_name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role
    password: Password | None = None
    licence_number: Annotated[str, Field(max_length=64)] | None = None
    licence_date: ClinicalDate | None = None
    training: list[TrainingCourse] = []


class UpdateStaffMember(Command):
    """An owner changes a colleague's name, role or licence; only the fields given
    change (a licence number or date given as null is removed)."""

    user_id: UUID
    expected_version: int
    full_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    role: Role | None = None
    licence_number: Annotated[str, Field(max_length=64)] | None = None
    licence_date: ClinicalDate | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in ("full_name", "role"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed")
        return self


class CreateApiToken(Command):
    """A new API token for oneself, proven by the password (and an authenticator code
    when the account has a second factor or the clinic requires one)."""

    label: Annotated[str, Field(min_length=1, max_length=200)] = "api"
    read_only: bool = False
    password: TypedPassword
    code: Annotated[str, Field(min_length=6, max_length=32)] | None = None


# --- patients ---------------------------------------------------------------------------


class RegisterPatient(Command):
    mrn: Annotated[str, Field(min_length=1, max_length=64)]
    given_name: Name
    family_name: Name
    birth_date: ClinicalDate
    sex: Sex
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None

    @model_validator(mode="after")
    def _born_in_the_past(self) -> Self:
        if self.birth_date > date.today():
            raise ValueError("birth_date is in the future")
        return self


class PatientChanges(Command):
    """Demographic changes; only the fields given are changed."""

    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: ClinicalDate | None = None
    sex: Sex | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None

    @field_validator("birth_date")
    @classmethod
    def _born_in_the_past(cls, value: date | None) -> date | None:
        if value is not None and value > date.today():
            raise ValueError("the date of birth is in the future")
        return value

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in ("given_name", "family_name", "birth_date", "sex"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed")
        return self


class UpdatePatient(PatientChanges):
    patient_id: UUID
    expected_version: int


class RecordReferral(Command):
    """The clinician who referred the patient. A new referral is appended (the latest
    is the current one); earlier ones stay in the record."""

    patient_id: UUID
    referrer_name: Annotated[str, Field(min_length=1, max_length=200)]
    received_on: ClinicalDate
    reason: Text = ""

    @field_validator("received_on")
    @classmethod
    def _received_in_the_past(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("the referral date is in the future")
        return value


# --- episodes ---------------------------------------------------------------------------


class PlanItemIn(Command):
    modality: Modality
    description: Annotated[str, Field(max_length=2000)] = ""
    sessions_per_week: Annotated[float, Field(gt=0, le=14)] | None = None


class OpenEpisode(Command):
    patient_id: UUID
    condition: Annotated[str, Field(min_length=1, max_length=64)]
    onset_date: ClinicalDate
    opened_on: ClinicalDate
    goals: Text = ""
    icd10_code: Annotated[str, Field(pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")] | None = (
        None
    )
    body_region: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    clinician_id: UUID | None = None
    plan: list[PlanItemIn] = []

    @model_validator(mode="after")
    def _onset_first(self) -> Self:
        if self.onset_date > self.opened_on:
            raise ValueError("onset_date is after opened_on")
        return self


class Discharge(Command):
    closed_on: ClinicalDate
    discharge_reason: Annotated[str, Field(min_length=1, max_length=2000)]


class CloseEpisode(Discharge):
    episode_id: UUID
    expected_version: int


# --- sessions ---------------------------------------------------------------------------


class EstimParams(Command):
    frequency_hz: Annotated[float, Field(gt=0, le=200)]
    intensity_ma: Annotated[float, Field(ge=0, le=100)] | None = None
    minutes: Annotated[float, Field(gt=0, le=60)]


class NeedlingSiteIn(Command):
    muscle_id: Annotated[str, Field(min_length=1, max_length=64)]
    side: Side
    trigger_point: TriggerPoint
    technique: Technique
    needle_gauge_mm: Annotated[float, Field(ge=0.12, le=0.5)]
    needle_length_mm: Annotated[float, Field(ge=7, le=125)]
    depth_mm: Annotated[float, Field(gt=0, le=125)]
    insertions: Annotated[int, Field(ge=1, le=100)]
    local_twitch_responses: Annotated[int, Field(ge=0, le=100)] = 0
    electrical_stimulation: bool = False
    estim_params: EstimParams | None = None
    tolerance: Tolerance
    notes: Annotated[str, Field(max_length=2000)] | None = None
    override_reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    """A written reason that overrides an overridable site-level safety rule (audited)."""
    override_code: OverrideCode | None = None
    """The structured reason an override needs beside the written one (issue 13)."""
    approach: Approach | None = None
    """How the needle was directed (pincer grip, tangential, over bone, perpendicular)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.depth_mm > self.needle_length_mm:
            raise ValueError("depth_mm is deeper than the needle is long")
        if self.estim_params is not None and not self.electrical_stimulation:
            raise ValueError("estim_params given but electrical_stimulation is false")
        return self


class CoInterventionIn(Command):
    modality: Modality
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    minutes: Annotated[int, Field(ge=1, le=240)] | None = None


class AdverseEventIn(Command):
    kind: AdverseEventKind
    severity: Severity
    onset_at: AwareDatetime
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    action_taken: Annotated[str, Field(max_length=4000)] | None = None
    reportable: bool = False
    reported_at: AwareDatetime | None = None


Answers = dict[Annotated[str, Field(max_length=16)], int | float | None]


class MeasurementIn(Command):
    instrument_id: Annotated[str, Field(min_length=1, max_length=32)]
    answers: Answers
    taken_at: AwareDatetime | None = None
    context: dict[str, str | int | float | bool] | None = None


class SessionNote(Command):
    """The editable content of a session note."""

    started_at: AwareDatetime
    subjective: Text = ""
    objective: Text = ""
    assessment: Text = ""
    plan: Text = ""
    sites: Annotated[list[NeedlingSiteIn], Field(max_length=60)] = []
    co_interventions: Annotated[list[CoInterventionIn], Field(max_length=30)] = []
    adverse_events: Annotated[list[AdverseEventIn], Field(max_length=30)] = []
    measurements: Annotated[list[MeasurementIn], Field(max_length=30)] = []


class RecordSession(SessionNote):
    episode_id: UUID
    clinician_id: UUID | None = None


class UpdateSession(SessionNote):
    session_id: UUID
    expected_version: int


class SignSession(Command):
    session_id: UUID
    expected_version: int


class DiscardSession(Command):
    """Discard a draft note (a signed note is never discarded)."""

    session_id: UUID
    expected_version: int


class AdverseEventReport(Command):
    """An adverse event learned of after the session (delayed symptoms, next-day
    bruising), recorded against the signed note of that session."""

    kind: AdverseEventKind
    severity: Severity
    onset_at: AwareDatetime
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    action_taken: Annotated[str, Field(max_length=4000)] | None = None
    reportable: bool = False


class RecordAdverseEvent(AdverseEventReport):
    session_id: UUID


class FollowUpIn(Command):
    """One entry of an adverse event's follow-up (appended, never edited)."""

    kind: FollowUpKind
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    occurred_at: AwareDatetime


class AddAdverseEventFollowUp(FollowUpIn):
    adverse_event_id: UUID


class AmendmentText(Command):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    text: Annotated[str, Field(min_length=1, max_length=20_000)]


class AmendSession(AmendmentText):
    session_id: UUID


# --- outcomes ---------------------------------------------------------------------------


class RecordMeasurement(MeasurementIn):
    patient_id: UUID
    episode_id: UUID | None = None
    session_id: UUID | None = None


class RecordMedicationUse(Command):
    patient_id: UUID
    episode_id: UUID | None = None
    drug: Annotated[str, Field(min_length=1, max_length=100)]
    drug_class: DrugClass
    dose_mg: Annotated[float, Field(gt=0, le=10_000)] | None = None
    days_per_week: Annotated[int, Field(ge=0, le=7)]
    recorded_on: ClinicalDate


# --- screening, consent, credentials, clinic settings -----------------------------------

Area = Literal[
    "head",
    "neck",
    "trunk:left",
    "trunk:right",
    "upper_limb:left",
    "upper_limb:right",
    "lower_limb:left",
    "lower_limb:right",
]
"""A body area a site-level exclusion applies to (a muscle's limb and the site's side)."""


class LocalExclusion(Command):
    area: Area
    reason: Literal["infected_tissue", "inflamed_tissue", "varicose_veins"]


class DeviceClearance(Command):
    """A cardiologist's or device clinic's documented clearance for electrical stimulation
    with an implanted cardiac device (issue 13: truth-sites)."""

    cleared_by: Annotated[str, Field(min_length=3, max_length=200)]
    """Who cleared it: the cardiologist or device clinic, by name."""
    cleared_on: ClinicalDate
    document: Annotated[str, Field(min_length=3, max_length=500)]
    """Where the clearance is documented (letter, report), for the record."""


JointSite = Literal[
    "shoulder:left",
    "shoulder:right",
    "elbow:left",
    "elbow:right",
    "wrist:left",
    "wrist:right",
    "hip:left",
    "hip:right",
    "knee:left",
    "knee:right",
    "ankle:left",
    "ankle:right",
]
"""A replaced joint and its side (the `prosthetic_joint` screening question)."""

BodySide = Literal["left", "right"]


class ScreeningAnswers(Command):
    """A completed appropriateness questionnaire: every question answered yes or no, with
    the details a yes requires (areas, reasons, notes)."""

    answers: dict[Annotated[str, Field(max_length=64)], bool]
    lymphoedema_areas: Annotated[list[Area], Field(max_length=8)] = []
    local_exclusions: Annotated[list[LocalExclusion], Field(max_length=16)] = []
    notes: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=2000)]] = {}
    device_clearance: DeviceClearance | None = None
    """Electrical stimulation near the chest or arms cleared despite an implanted cardiac
    device; only with a yes to `implanted_electrical_device`."""
    # -- surgery, joint replacement and implants (issue 13 item 7) --
    surgery_areas: Annotated[list[Area], Field(max_length=8)] = []
    prosthetic_joints: Annotated[list[JointSite], Field(max_length=12)] = []
    breast_implant_sides: Annotated[list[BodySide], Field(max_length=2)] = []
    implant_areas: Annotated[list[Area], Field(max_length=8)] = []

    @model_validator(mode="after")
    def _clearance_needs_a_device(self) -> Self:
        if self.device_clearance is not None and not self.answers.get(
            "implanted_electrical_device"
        ):
            raise ValueError(
                "device_clearance is given but the patient has no implanted electrical device"
            )
        return self


ClearanceReason = Literal[
    "resolved",
    "recorded_in_error",
    "new_medical_information",
    "patient_reconsidered",
]
"""Why an earlier absolute or site-level finding no longer applies."""


class Clearance(Command):
    """What changed, and why, when a screening clears an earlier absolute or site-level
    finding (a contraindication never silently disappears)."""

    reason: ClearanceReason
    explanation: Annotated[str, Field(min_length=20, max_length=2000)]


class ScreeningForm(ScreeningAnswers):
    """The answers as the clinician submits them, with the precautions acknowledged."""

    acknowledged_precautions: Annotated[
        list[Annotated[str, Field(max_length=64)]], Field(max_length=64)
    ] = []
    screened_at: AwareDatetime | None = None
    clearance: Clearance | None = None
    """Required when this screening clears an absolute or site-level finding of the
    patient's previous screening."""


class RecordScreening(ScreeningForm):
    patient_id: UUID


SignerRelationship = Literal["patient", "parent", "legal_guardian"]


class ConsentIn(Command):
    template_id: Annotated[str, Field(min_length=1, max_length=64)]
    template_version: Annotated[str, Field(min_length=1, max_length=32)]
    signer_name: Annotated[str, Field(min_length=1, max_length=200)]
    signer_relationship: SignerRelationship = "patient"
    """Who signed: the patient, or for a minor a parent or legal guardian."""
    method: ConsentMethod
    signed_at: AwareDatetime
    copy_given: bool
    witness_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    signature: Annotated[str, Field(max_length=200_000)] | None = None
    """The captured signature (an SVG path or a data: URL), when signed on screen."""

    @model_validator(mode="after")
    def _method_has_its_evidence(self) -> Self:
        if self.method is ConsentMethod.WITNESS and not self.witness_name:
            raise ValueError("witness_name is required when the method is witness")
        if self.method is ConsentMethod.SIGNATURE and not self.signature:
            raise ValueError("signature is required when the method is signature")
        return self


class RecordConsent(ConsentIn):
    patient_id: UUID


class ConsentWithdrawal(Command):
    withdrawn_at: AwareDatetime | None = None
    """When the patient withdrew consent (default: now)."""


class WithdrawConsent(Command):
    consent_id: UUID
    expected_version: int
    withdrawn_at: AwareDatetime


class TrainingForm(TrainingCourse):
    supervised_sessions: Annotated[int, Field(ge=0, le=10_000)] | None = None


class AddTrainingRecord(TrainingForm):
    user_id: UUID


class ClinicSettingsIn(Command):
    """Clinic settings for safety, credentials and billing; only the fields given change."""

    jurisdiction: Annotated[str, Field(min_length=1, max_length=16)] | None = None
    credential_policy: CredentialPolicy | None = None
    screening_valid_days: Annotated[int, Field(ge=1, le=365)] | None = None
    bill_sides_separately: bool | None = None
    min_training_hours: Annotated[float, Field(ge=0, le=2000)] | None = None
    min_licence_years: Annotated[float, Field(ge=0, le=50)] | None = None
    time_zone: TimeZoneName | None = None


class UpdateClinicSettings(ClinicSettingsIn):
    expected_version: int


# --- accounts and emergency access (security issue) --------------------------------------


class UpdateSecuritySettings(Command):
    """A clinic's security policy (owner only)."""

    mfa_required: bool
    idle_timeout_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 30
    absolute_timeout_hours: Annotated[int, Field(ge=1, le=24 * 14)] = 12
    emergency_access_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 60
    care_team_restriction: bool = False
    api_token_days: Annotated[int, Field(ge=1, le=365)] = 90


class MfaCode(Command):
    """A six-digit authenticator code, or a recovery code."""

    code: Annotated[str, Field(min_length=6, max_length=32)]


EnrolmentCode = Annotated[str, Field(min_length=6, max_length=64)]


class BeginMfaEnrolment(Command):
    """Starting two-factor sign-in; once the clinic requires it, an account without a
    second factor needs the one-time enrolment code an owner issued."""

    enrolment_code: EnrolmentCode | None = None


class ConfirmMfaEnrolment(MfaCode):
    """The first authenticator code (and the enrolment code, when one was needed)."""

    enrolment_code: EnrolmentCode | None = None


class ReissueRecoveryCodes(MfaCode):
    """A current authenticator code, proving the existing second factor."""


class ChangePassword(Command):
    current_password: TypedPassword
    new_password: Password


class CompletePasswordReset(Command):
    """A new password set with the one-time reset code an owner issued."""

    email: Annotated[str, Field(min_length=3, max_length=254)]
    reset_code: Annotated[str, Field(min_length=6, max_length=64)]
    new_password: Password


class RequestEmergencyAccess(Command):
    """Why the record must be opened now (kept in the audit trail, shown to the owner)."""

    reason: Annotated[str, Field(min_length=10, max_length=2000)]


class AddCareTeamMember(Command):
    """A colleague joins a patient's care team: who, and why (kept with the membership)."""

    user_id: UUID
    reason: Annotated[str, Field(min_length=3, max_length=2000)]


# --- templates and favourites (issue 15 item 7) -------------------------------------------

NeedleSize = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^0\.\d{1,2}x\d{2,3}$", max_length=16)
]
"""A needle size as "gauge x length" in mm, e.g. "0.25x30"."""


class AddNoteSnippet(Command):
    """A text snippet for one SOAP section: a title to pick it by, and its text."""

    section: SoapSection
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80)]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=4000)]


class SetFavourites(Command):
    """A clinician's favourite muscles (catalogue ids) and needle sizes, in order; replaces
    the earlier list."""

    muscles: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=12)
    ]
    needles: Annotated[list[NeedleSize], Field(max_length=6)] = []


# --- import from another system (issue 17 item 2, docs/import.md) --------------------------

ExternalId = Annotated[str, Field(min_length=1, max_length=300)]
ImportSource = Literal["csv", "fhir"]


class ImportPatient(RegisterPatient):
    """Register a patient brought from another system, with its id there (`external_id`,
    unique per clinic and source: a re-run of the import skips the patient)."""

    source: ImportSource
    external_id: ExternalId


class ImportSession(SessionNote):
    """A note brought from another system, as it was there: its clinician of record, and
    for a signed note the original signer and time (kept, not re-signed). `external_id`
    is the other system's id of the note, unique within the patient."""

    episode_id: UUID
    clinician_id: UUID
    source: ImportSource
    external_id: ExternalId
    signed_by: UUID | None = None
    signed_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _signature_whole(self) -> Self:
        if (self.signed_by is None) != (self.signed_at is None):
            raise ValueError("a signature needs both the signer and the time it was signed")
        if self.signed_at is not None and self.signed_at < self.started_at:
            raise ValueError("signed_at is before the session started")
        return self


class ImportAmendment(Command):
    """An amendment written in the other system on a signed note: its author and time
    are kept."""

    session_id: UUID
    author_id: UUID
    written_at: AwareDatetime
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    text: Annotated[str, Field(min_length=1, max_length=20_000)]


# --- questionnaires from home (issue 16) ---------------------------------------------------

InstrumentId = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class SetQuestionnairePlan(Command):
    """The clinic's questionnaires for one condition: each questionnaire with the time
    points it is asked at, how often during care (None: before each visit) and the
    follow-ups in days after discharge. Replaces the condition's earlier plan."""

    condition: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    instruments: Annotated[dict[InstrumentId, list[TimePoint]], Field(min_length=1, max_length=16)]
    every_n_days: Annotated[int, Field(ge=1, le=365)] | None = None
    follow_up_days: Annotated[list[Annotated[int, Field(ge=1, le=730)]], Field(max_length=6)] = [
        42,
        91,
    ]


class AssignQuestionnaires(Command):
    """Ask the patient of an episode to answer questionnaires, due today (or on
    `due_on`), at the time point the episode is at (or `time_point`). With `send`, a
    link is e-mailed to the patient in the same transaction (`base_url` is the address
    the patient's pages are served at)."""

    episode_id: UUID
    instrument_ids: Annotated[list[InstrumentId], Field(min_length=1, max_length=12)]
    time_point: TimePoint | None = None
    due_on: ClinicalDate | None = None
    send: bool = False
    base_url: Annotated[str, StringConstraints(max_length=300)] | None = None


class SendQuestionnaireLink(Command):
    """E-mail the patient a new link to every questionnaire they still have to answer;
    any earlier link of theirs stops opening."""

    patient_id: UUID
    base_url: Annotated[str, StringConstraints(min_length=8, max_length=300)]


QuestionnaireAnswer = int | float | None


class SaveQuestionnaireAnswers(Command):
    """Answers a patient gave so far to one questionnaire (item → value; None clears)."""

    assignment_id: UUID
    answers: Annotated[
        dict[Annotated[str, Field(max_length=16)], QuestionnaireAnswer], Field(max_length=60)
    ]


# --- questionnaires from home with their context (issue 16) -----------------------------
# What the patient's forms post, kept loose on purpose: `domain.home_reports` checks each
# value and names the field in the patient's words.

HomeValue = Annotated[str, StringConstraints(max_length=200)] | int | float | None


class ReportAnalgesicUse(Command):
    """A patient's analgesic use in the past 7 days: days per drug on record (by the
    drug's name as on record) and, optionally, another pain medicine."""

    assignment_id: UUID
    days: Annotated[dict[Annotated[str, Field(max_length=100)], HomeValue], Field(max_length=40)]
    other_drug: HomeValue = None
    other_class: HomeValue = None
    other_days: HomeValue = None
    other_dose_mg: HomeValue = None


class ReportReturnToActivity(Command):
    """Whether the patient has returned to work or sport, and when."""

    assignment_id: UUID
    activity: HomeValue = None
    returned: HomeValue = None
    returned_on: HomeValue | date = None


class ReportPsfs(Command):
    """A patient's PSFS: ratings item1 … item5 (0 to 10) and, when the episode has no
    earlier PSFS, the activities named (activity1 … activity5)."""

    assignment_id: UUID
    ratings: Annotated[dict[Annotated[str, Field(max_length=16)], HomeValue], Field(max_length=5)]
    activities: Annotated[
        dict[Annotated[str, Field(max_length=16)], HomeValue], Field(max_length=5)
    ] = {}
