"""The neutral import record: one patient's history as another system holds it.

Every reader (the CSV layout in `importing/csv_reader.py`, a FHIR R4 reader) produces
these records; the import engine (`importing/engine.py`) turns them into commands and
runs them through the actions. Nothing here is validated against our catalogues or
rules yet: a record says what the other system says, typed (dates are dates, numbers
are numbers), and the engine reports every value that does not fit, naming the record's
`Origin` and the field.

Coded values (sex, side, technique, …) are kept as the source's text: the engine checks
them against our enumerations, so an unknown value is reported, not lost in parsing.
Field names match the commands' field names (`domain/commands.py`) wherever the two
describe the same thing, and the CSV layout's column names (docs/import.md).

The records are frozen and hold tuples, so a reader can hand them to worker processes
and a report can point back at them.

Stable interface: the FHIR reader (branch `fhir`) builds these; add optional fields at
the end of a record only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

Answer = int | float | None
"""One item answer of an instrument (None: the item was not answered)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from, for the problem report.

    `source`: the file (`sessions.csv`) or the resource type (`Encounter`);
    `locator`: the row number in the file (1 = the header, so data starts at 2) or the
    resource id / Bundle entry (`Encounter/abc`, `entry[12]`)."""

    source: str
    locator: str

    def __str__(self) -> str:
        return f"{self.source} {self.locator}"


UNKNOWN_ORIGIN = Origin("import", "?")


@dataclass(frozen=True, slots=True)
class ClinicianRef:
    """A clinician as the other system names them. The engine finds the active user of
    the importing clinic with this e-mail (case-insensitive); `external_id` (the other
    system's practitioner id) is kept for the report and for readers that map ids to
    e-mails themselves. At least one is given."""

    email: str | None = None
    external_id: str | None = None

    def __str__(self) -> str:
        return self.email or self.external_id or "?"


@dataclass(frozen=True, slots=True)
class ImportedSignature:
    """Who signed a note in the other system, and when (timezone-aware). An imported
    signed note keeps both: it is not re-signed by whoever runs the import."""

    signer: ClinicianRef
    signed_at: datetime


@dataclass(frozen=True, slots=True)
class ImportedAmendment:
    """An amendment appended to a signed note in the other system: its author, when it
    was written (timezone-aware), why, and what it says."""

    author: ClinicianRef
    written_at: datetime
    reason: str
    text: str
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedSite:
    """One needled site of a session, as our `NeedlingSiteIn` holds it.

    `muscle_id`: our muscle catalogue's id (`domain/data/muscles.yaml`), e.g.
    `upper_trapezius`; `side`: left, right or midline; `trigger_point`: active, latent
    or none; `technique`: static, pistoning, superficial, periosteal or
    tendon_fenestration; needle size as gauge (diameter) × length in mm; `depth_mm` the
    deepest insertion; `insertions` and `local_twitch_responses` counts; electrical
    stimulation with its parameters (`estim_*`, all or none); `tolerance`: good, fair or
    poor; `approach`: pincer, tangential, over_bone or perpendicular (optional)."""

    muscle_id: str
    side: str
    trigger_point: str
    technique: str
    needle_gauge_mm: float
    needle_length_mm: float
    depth_mm: float
    insertions: int
    tolerance: str
    local_twitch_responses: int = 0
    electrical_stimulation: bool = False
    estim_frequency_hz: float | None = None
    estim_intensity_ma: float | None = None
    estim_minutes: float | None = None
    notes: str | None = None
    approach: str | None = None
    override_reason: str | None = None
    override_code: str | None = None
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedCoIntervention:
    """Another treatment given in the session: `modality` (manual_therapy, exercise,
    education, other, dry_needling), what was done, for how many minutes."""

    modality: str
    description: str
    minutes: int | None = None
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedAdverseEvent:
    """An adverse event recorded in the session: `kind` and `severity` as our
    enumerations spell them (bruising, bleeding, …; mild, significant, serious),
    its onset (timezone-aware), description, action taken, and whether it was
    reportable (and reported when)."""

    kind: str
    severity: str
    onset_at: datetime
    description: str
    action_taken: str | None = None
    reportable: bool = False
    reported_at: datetime | None = None
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedMeasurement:
    """One instrument administration.

    `instrument_id`: our instrument catalogue's id (`domain/data/instruments.yaml`,
    e.g. `nprs`, `ndi`); `answers`: item id → answer, the raw answers the score is
    computed from (our scoring recomputes it; a single-item instrument such as NPRS is
    answered by its one item). `score`: the score the other system reported, if any:
    the engine reports a mismatch with the score computed from the answers instead of
    storing a number it cannot reproduce. `taken_at`: when (timezone-aware); `context`:
    the instrument's context fields (e.g. the site of a pressure pain threshold)."""

    instrument_id: str
    answers: Mapping[str, Answer]
    taken_at: datetime
    score: float | None = None
    context: Mapping[str, str | int | float | bool] | None = None
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedSession:
    """One visit's note. `external_id`: the other system's id for the note (unique within
    the patient); `started_at`: the visit's time (timezone-aware); `clinician`: the
    clinician of record; SOAP text; everything recorded in it; `signature`: None for a
    draft (imported as our draft), else the original signer and time; `amendments`:
    only on a signed note."""

    external_id: str
    started_at: datetime
    clinician: ClinicianRef
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""
    sites: tuple[ImportedSite, ...] = ()
    co_interventions: tuple[ImportedCoIntervention, ...] = ()
    adverse_events: tuple[ImportedAdverseEvent, ...] = ()
    measurements: tuple[ImportedMeasurement, ...] = ()
    signature: ImportedSignature | None = None
    amendments: tuple[ImportedAmendment, ...] = ()
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedEpisode:
    """One episode of care. `external_id`: the other system's id (unique within the
    patient); `condition`: our condition catalogue's id (`domain/data/conditions.yaml`);
    `icd10_code`: ICD-10-CM, billable, in our catalogue (None: the condition's default);
    `body_region`: None for the condition's default; dates; `clinician`: the responsible
    clinician; `closed_on` + `discharge_reason` for a discharged episode (both or
    neither); `sessions` in any order (the engine imports them by time); `measurements`
    taken outside a session (e.g. a questionnaire filled in at home)."""

    external_id: str
    condition: str
    onset_date: date
    opened_on: date
    clinician: ClinicianRef
    icd10_code: str | None = None
    body_region: str | None = None
    goals: str = ""
    closed_on: date | None = None
    discharge_reason: str | None = None
    sessions: tuple[ImportedSession, ...] = ()
    measurements: tuple[ImportedMeasurement, ...] = ()
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class ImportedPatient:
    """One patient and their whole history: the unit of an import (all or nothing).

    `external_id`: the other system's patient id, stored with the imported patient so
    that a second run skips them (resumable import); `mrn`: the chart number in our
    clinic (unique); demographics as `RegisterPatient` holds them (`sex`: female, male,
    other or unknown)."""

    external_id: str
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    phone: str | None = None
    email: str | None = None
    episodes: tuple[ImportedEpisode, ...] = ()
    origin: Origin = UNKNOWN_ORIGIN


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where (file and row, or resource), which field
    (the CSV column or the record's field), and why, in words."""

    origin: Origin
    field: str
    reason: str
    patient_external_id: str | None = None

    def __str__(self) -> str:
        return f"{self.origin}, {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a reader produced: the patients it could read whole, and the problems
    found while reading (a patient with a problem in any of its rows is not in
    `patients`, and its problems name its external id)."""

    patients: tuple[ImportedPatient, ...]
    problems: tuple[Problem, ...] = field(default=())
