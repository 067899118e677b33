"""The de-identified research export: the clinic's signed care, as tables a researcher may
hold, with the HIPAA Safe Harbor identifiers removed (45 CFR 164.514(b)(2)) and a
k-anonymity check on the quasi-identifiers.

Pure: the caller hands in the clinic's records and a random source (the action passes the
operating system's; tests pass a seeded one); nothing here reads or writes anything.

What the release keeps and how (each column is listed, with its handling, in
`table_specs`; the 18 Safe Harbor identifiers, with where Needlepoint holds each and how it
is handled, in `SAFE_HARBOR`):

* record ids (patients, episodes, sessions) become random study ids, drawn afresh for each
  release; the mapping is never written anywhere, so two releases cannot be linked and no
  study id leads back to a record;
* every date of a patient is moved by the same random number of days (1 to 365, either
  direction, never 0), so intervals between a patient's dates are kept (`dates="shift"`),
  or reduced to its year (`dates="year"`, the literal Safe Harbor reading); in both modes
  `day` columns give the days since the episode opened;
* the birth date becomes an age band at the episode's opening (ten-year bands; every age
  over 89 is "90+", 164.514(b)(2)(i)(C));
* free text (note sections, goals, discharge reasons, site notes, override reasons,
  adverse-event descriptions, drug names, questionnaire answers) is dropped: only coded
  values (catalogue ids, enumerations) and numbers leave;
* episodes whose equivalence class on (age band, sex, condition, region) holds fewer than
  k patients are suppressed with everything attached to them (`k_anonymize`)."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import Field

from needlepoint.domain.catalogue import conditions
from needlepoint.domain.commands import Command
from needlepoint.domain.entities import (
    AdverseEvent,
    Episode,
    JSONDict,
    Measurement,
    MedicationUse,
    NeedlingSite,
    Patient,
    Session,
)
from needlepoint.domain.enums import SessionStatus
from needlepoint.domain.questionnaires import after_care_days, logged_after_care

DateMode = Literal["shift", "year"]
"""How dates leave: shifted per patient (intervals kept), or reduced to the year."""

AGE_OPEN_BAND = 90
"""Ages over 89 are one group, "90+" (45 CFR 164.514(b)(2)(i)(C))."""

AGE_BAND_YEARS = 10
MAX_SHIFT_DAYS = 365
DEFAULT_K = 5
QUASI_IDENTIFIERS = ("age_band", "sex", "condition", "region")
"""The columns an attacker could know from elsewhere: the k-anonymity check is on these."""

SAFE_HARBOR_CITATION = "45 CFR 164.514(b)(2) (HIPAA Privacy Rule, Safe Harbor method)"

Value = str | int | float | bool | date | None
Row = dict[str, Value]


class ExportResearch(Command):
    """Ask for a de-identified research release of the clinic's records."""

    k: Annotated[int, Field(ge=2, le=1000)] = DEFAULT_K
    # Safe Harbor keeps no element of a date but the year: that is the default; shifted
    # dates are full dates (an expert determination or a data use agreement).
    dates: DateMode = "year"


@dataclass(frozen=True, slots=True)
class Identifier:
    """One of the 18 Safe Harbor identifiers: where Needlepoint holds it, and how the
    research export handles it."""

    clause: str  # the paragraph of 164.514(b)(2)(i)
    name: str
    held_as: str
    handling: str


SAFE_HARBOR: tuple[Identifier, ...] = (
    Identifier(
        "A",
        "Names",
        "patient given and family names; consent signer and witness "
        "names; referrer names; staff names",
        "removed: no name column is exported",
    ),
    Identifier(
        "B",
        "Geographic subdivisions smaller than a state (street, city, county, "
        "precinct, ZIP code and equivalent geocodes)",
        "not held: Needlepoint stores no address or ZIP code",
        "none exported; the 3-digit ZIP rule (zones over "
        "20,000 people) needs a census table the product does not ship, so ZIP is "
        "dropped entirely. `region` is the BODY region of the condition, not a place",
    ),
    Identifier(
        "C",
        "All elements of dates (except year) directly related to an individual; ages over 89",
        "birth date; episode onset, opening and closing dates; session, "
        "measurement, analgesic-log and adverse-event dates",
        "birth date → ten-year age band at the episode's opening, ages over 89 as "
        '"90+"; other dates shifted per patient by a random 1–365 days (intervals '
        "kept) or reduced to the year (dates=year); onset date dropped",
    ),
    Identifier("D", "Telephone numbers", "patient phone", "removed"),
    Identifier("E", "Fax numbers", "not held", "none exported"),
    Identifier("F", "Electronic mail addresses", "patient e-mail; staff e-mail", "removed"),
    Identifier("G", "Social security numbers", "not held", "none exported"),
    Identifier(
        "H",
        "Medical record numbers",
        "patient MRN; internal record ids (UUIDs)",
        "removed; record ids replaced by random study ids, no mapping kept",
    ),
    Identifier("I", "Health plan beneficiary numbers", "not held", "none exported"),
    Identifier("J", "Account numbers", "staff accounts and API tokens", "removed"),
    Identifier(
        "K",
        "Certificate/license numbers",
        "practitioners' licence numbers",
        "removed (no practitioner column is exported)",
    ),
    Identifier(
        "L",
        "Vehicle identifiers and serial numbers, including license plates",
        "not held",
        "none exported",
    ),
    Identifier("M", "Device identifiers and serial numbers", "not held", "none exported"),
    Identifier(
        "N",
        "Web Universal Resource Locators (URLs)",
        "not held (only as typed in free text)",
        "free text dropped",
    ),
    Identifier(
        "O",
        "Internet Protocol (IP) addresses",
        "audit trail and sign-in log",
        "removed: the audit trail is not exported",
    ),
    Identifier(
        "P",
        "Biometric identifiers, including finger and voice prints",
        "not held (a consent signature image is a mark, not exported)",
        "removed",
    ),
    Identifier("Q", "Full-face photographs and any comparable images", "not held", "none exported"),
    Identifier(
        "R",
        "Any other unique identifying number, characteristic, or code",
        "free text of notes, goals, discharge reasons, site notes, adverse-event "
        "descriptions, drug names, questionnaire answers (e.g. PSFS activities)",
        "free text dropped; only catalogue codes, enumerations and numbers leave; "
        "study ids are random, drawn afresh per release",
    ),
)
"""The 18 identifiers of 45 CFR 164.514(b)(2)(i)(A)–(R), in the rule's order."""


# --- dates and ages ---------------------------------------------------------------------


def age_on(birth: date, on: date) -> int:
    """Completed years of age on a day (0 for a day before the birth)."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return max(years, 0)


def age_band(age: int) -> str:
    """A ten-year band ("30-39"); every age over 89 is "90+"."""
    if age >= AGE_OPEN_BAND:
        return f"{AGE_OPEN_BAND}+"
    low = age // AGE_BAND_YEARS * AGE_BAND_YEARS
    return f"{low}-{low + AGE_BAND_YEARS - 1}"


def draw_offset(rng: random.Random) -> int:
    """A patient's date shift: 1 to 365 days, earlier or later (never 0: that would
    release the true dates)."""
    return rng.randint(1, MAX_SHIFT_DAYS) * rng.choice((-1, 1))


def released_date(day: date, offset_days: int, mode: DateMode) -> date | int:
    """A date as released: shifted by the patient's offset, or its (true) year."""
    if mode == "year":
        return day.year
    return date.fromordinal(day.toordinal() + offset_days)


# --- k-anonymity ------------------------------------------------------------------------

R = TypeVar("R")
Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EquivalenceClass:
    """Records sharing one combination of quasi-identifier values."""

    key: Key
    records: int
    patients: int
    suppressed: bool


@dataclass(frozen=True, slots=True)
class KAnonymityReport:
    k: int
    quasi_identifiers: tuple[str, ...]
    records_in: int
    records_suppressed: int
    patients_in: int
    patients_suppressed: int  # patients none of whose records remain
    classes: tuple[EquivalenceClass, ...]

    @property
    def records_kept(self) -> int:
        return self.records_in - self.records_suppressed

    @property
    def smallest_kept_class(self) -> int | None:
        """Patients in the smallest class released (None when nothing is released)."""
        kept = [c.patients for c in self.classes if not c.suppressed]
        return min(kept) if kept else None


def k_anonymize(
    records: Sequence[R],
    key: Callable[[R], Key],
    subject: Callable[[R], Hashable],
    k: int,
    quasi_identifiers: tuple[str, ...] = QUASI_IDENTIFIERS,
) -> tuple[list[R], KAnonymityReport]:
    """Keep the records whose equivalence class (same `key`) holds at least `k` distinct
    subjects (patients); suppress the others. A class is counted in patients, not rows,
    so one patient's several episodes cannot make a class look larger than it is."""
    if k < 1:
        raise ValueError("k is at least 1")
    members: dict[Key, list[R]] = defaultdict(list)
    for record in records:
        members[key(record)].append(record)
    kept: list[R] = []
    classes: list[EquivalenceClass] = []
    kept_subjects: set[Hashable] = set()
    for class_key in sorted(members):
        rows = members[class_key]
        patients = len({subject(r) for r in rows})
        suppressed = patients < k
        classes.append(EquivalenceClass(class_key, len(rows), patients, suppressed))
        if not suppressed:
            kept.extend(rows)
            kept_subjects.update(subject(r) for r in rows)
    kept_ids = {id(r) for r in kept}
    kept = [r for r in records if id(r) in kept_ids]  # the input's order
    all_subjects = {subject(r) for r in records}
    report = KAnonymityReport(
        k=k,
        quasi_identifiers=quasi_identifiers,
        records_in=len(records),
        records_suppressed=len(records) - len(kept),
        patients_in=len(all_subjects),
        patients_suppressed=len(all_subjects - kept_subjects),
        classes=tuple(classes),
    )
    return kept, report


# --- the tables -------------------------------------------------------------------------

ColumnType = Literal["string", "integer", "number", "boolean", "date"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    type: ColumnType
    meaning: str
    unit: str
    deidentification: str


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    meaning: str
    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_STUDY = "random study id drawn for this release; no mapping to the record is kept"
_CODED = "coded value (catalogue id or enumeration), kept"
_NUMBER = "number, kept"
_CONTEXT = "coded value kept when it is a catalogue id; anything else (possibly typed) dropped"
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _date_column(name: str, meaning: str, mode: DateMode) -> ColumnSpec:
    if mode == "year":
        return ColumnSpec(
            name,
            "integer",
            f"{meaning}: year only",
            "year",
            "reduced to the year (Safe Harbor: no date element but the year)",
        )
    return ColumnSpec(
        name,
        "date",
        f"{meaning}: shifted date",
        "date (ISO 8601)",
        "shifted by the patient's random offset (1-365 days either way); "
        "intervals within a patient kept; the offset is not released",
    )


def _day(what: str) -> ColumnSpec:
    return ColumnSpec(
        "day",
        "integer",
        f"days from the episode's opening to the {what}",
        "days",
        "interval, kept (the same in both date modes)",
    )


def table_specs(mode: DateMode) -> tuple[TableSpec, ...]:
    """Every table of a release and every column of each, with its handling."""
    episode = ColumnSpec("episode", "string", "the episode of care", "", _STUDY)
    patient = ColumnSpec("patient", "string", "the patient", "", _STUDY)
    session = ColumnSpec("session", "string", "the treatment session (signed note)", "", _STUDY)
    return (
        TableSpec(
            "episodes",
            "one row per episode of care (the unit of the k-anonymity check)",
            (
                episode,
                patient,
                ColumnSpec(
                    "age_band",
                    "string",
                    "age at the episode's opening",
                    "years",
                    "generalised from the birth date: ten-year bands, ages over 89 as "
                    '"90+" (quasi-identifier)',
                ),
                ColumnSpec("sex", "string", "sex as recorded", "", _CODED + " (quasi-identifier)"),
                ColumnSpec(
                    "condition",
                    "string",
                    "condition (catalogue id, conditions.yaml)",
                    "",
                    _CODED + " (quasi-identifier)",
                ),
                ColumnSpec(
                    "icd10_code",
                    "string",
                    "the condition's ICD-10-CM code in the catalogue",
                    "",
                    "generalised: the catalogue's code for the "
                    "condition, not a more specific code a clinician chose",
                ),
                ColumnSpec(
                    "region",
                    "string",
                    "body region treated (not a place)",
                    "",
                    'generalised to the catalogue\'s regions; anything else "other" '
                    "(quasi-identifier)",
                ),
                _date_column("opened", "the episode's opening", mode),
                _date_column("closed", "the episode's closing (empty while open)", mode),
                ColumnSpec(
                    "length_days",
                    "integer",
                    "days from opening to closing (empty while open)",
                    "days",
                    "interval, kept",
                ),
                ColumnSpec("status", "string", "open or closed", "", _CODED),
                ColumnSpec(
                    "sessions",
                    "integer",
                    "signed sessions released for the episode",
                    "sessions",
                    "count",
                ),
            ),
        ),
        TableSpec(
            "sessions",
            "one row per signed session note (free text dropped)",
            (
                session,
                episode,
                _date_column("date", "the session's date (clinic's time zone)", mode),
                _day("session"),
                ColumnSpec(
                    "cpt_code",
                    "string",
                    "CPT code billed for the needling (20560 or 20561), empty when none",
                    "",
                    _CODED,
                ),
                ColumnSpec("sites", "integer", "needling sites recorded", "sites", _NUMBER),
            ),
        ),
        TableSpec(
            "needling_sites",
            "one row per needled site of a released session",
            (
                session,
                ColumnSpec(
                    "position", "integer", "order of the site within the session", "", _NUMBER
                ),
                ColumnSpec("muscle", "string", "muscle (catalogue id, muscles.yaml)", "", _CODED),
                ColumnSpec("side", "string", "left, right or midline", "", _CODED),
                ColumnSpec("trigger_point", "string", "trigger point status", "", _CODED),
                ColumnSpec("technique", "string", "needling technique", "", _CODED),
                ColumnSpec("approach", "string", "approach, when recorded", "", _CODED),
                ColumnSpec("needle_gauge_mm", "number", "needle diameter", "mm", _NUMBER),
                ColumnSpec("needle_length_mm", "number", "needle length", "mm", _NUMBER),
                ColumnSpec("depth_mm", "number", "insertion depth", "mm", _NUMBER),
                ColumnSpec("insertions", "integer", "needle insertions", "insertions", _NUMBER),
                ColumnSpec(
                    "local_twitch_responses",
                    "integer",
                    "local twitch responses",
                    "responses",
                    _NUMBER,
                ),
                ColumnSpec(
                    "electrical_stimulation", "boolean", "electrical stimulation used", "", _CODED
                ),
                ColumnSpec("tolerance", "string", "patient's tolerance", "", _CODED),
            ),
        ),
        TableSpec(
            "measurements",
            "one row per outcome measurement of a released episode "
            "(scores only: item answers dropped)",
            (
                episode,
                ColumnSpec(
                    "session",
                    "string",
                    "the signed session it was taken at, empty when taken on its own",
                    "",
                    _STUDY,
                ),
                ColumnSpec("instrument", "string", "instrument (instruments.yaml id)", "", _CODED),
                ColumnSpec("instrument_version", "string", "instrument version", "", _CODED),
                ColumnSpec(
                    "score",
                    "number",
                    "the instrument's score (see docs/instruments.md for each scale)",
                    "instrument's unit",
                    _NUMBER,
                ),
                ColumnSpec("joint", "string", "range of motion: the joint", "", _CONTEXT),
                ColumnSpec("movement", "string", "range of motion: the movement", "", _CONTEXT),
                ColumnSpec("side", "string", "range of motion: the side", "", _CONTEXT),
                _date_column("date", "when it was taken (clinic's time zone)", mode),
                _day("measurement"),
                ColumnSpec(
                    "after_care",
                    "boolean",
                    "the patient's answer after discharge (a follow-up): not part of the "
                    "episode's outcome up to discharge",
                    "",
                    _CODED,
                ),
            ),
        ),
        TableSpec(
            "adverse_events",
            "one row per adverse event on a released session (descriptions dropped)",
            (
                session,
                ColumnSpec("kind", "string", "kind of event", "", _CODED),
                ColumnSpec("severity", "string", "severity", "", _CODED),
                _date_column("onset", "onset (clinic's time zone)", mode),
                _day("onset"),
                ColumnSpec("reportable", "boolean", "reportable to the regulator", "", _CODED),
            ),
        ),
        TableSpec(
            "medication",
            "one row per analgesic-log entry of a released episode (drug names dropped: free text)",
            (
                episode,
                ColumnSpec("drug_class", "string", "drug class", "", _CODED),
                ColumnSpec("dose_mg", "number", "dose, when recorded", "mg", _NUMBER),
                ColumnSpec("days_per_week", "integer", "days per week taken", "days/week", _NUMBER),
                _date_column("date", "the day it was recorded", mode),
                _day("entry"),
                ColumnSpec(
                    "after_care",
                    "boolean",
                    "reported by the patient after discharge (past the discharge "
                    "questionnaire's 14 days): not part of the episode's outcome up to discharge",
                    "",
                    _CODED,
                ),
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class Table:
    spec: TableSpec
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class ResearchRelease:
    dates: DateMode
    tables: tuple[Table, ...]
    report: KAnonymityReport

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.spec.name == name)


@dataclass(frozen=True, slots=True)
class ClinicRecords:
    """What a release is made from: one clinic's records (any order)."""

    time_zone: str
    patients: Sequence[Patient]
    episodes: Sequence[Episode]
    sessions: Sequence[Session]
    sites: Sequence[NeedlingSite]
    measurements: Sequence[Measurement]
    adverse_events: Sequence[AdverseEvent]
    medication: Sequence[MedicationUse]


@dataclass
class StudyIds:
    """Random study ids: a letter and twelve digits, unique within the release, unrelated
    to any record id."""

    rng: random.Random
    drawn: set[str] = field(default_factory=set)

    def draw(self, prefix: str) -> str:
        while True:
            candidate = f"{prefix}{self.rng.randrange(10**12):012d}"
            if candidate not in self.drawn:
                self.drawn.add(candidate)
                return candidate


@dataclass(frozen=True, slots=True)
class _EpisodeRow:
    episode: Episode
    patient: Patient
    key: Key


def _int(value: Value) -> int:
    return value if isinstance(value, int) else 0


def _coded(context: JSONDict | None, key: str) -> str | None:
    """A coded context value (a catalogue id such as "cervical_spine"); anything else,
    which could be text someone typed, is left out."""
    value = (context or {}).get(key)
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def _region(episode: Episode, known: frozenset[str]) -> str:
    return episode.body_region if episode.body_region in known else "other"


def deidentify(
    records: ClinicRecords, *, k: int, dates: DateMode, rng: random.Random
) -> ResearchRelease:
    """The release: episodes checked for k-anonymity, then everything attached to a kept
    episode, each table with only the columns of `table_specs`."""
    catalogue = conditions()
    regions = frozenset(c.body_region for c in catalogue.conditions)
    codes = {c.id: c.icd10.code for c in catalogue.conditions}
    tz = ZoneInfo(records.time_zone)
    patients = {p.id: p for p in records.patients}

    candidates = [
        _EpisodeRow(
            e,
            patients[e.patient_id],
            (
                age_band(age_on(patients[e.patient_id].birth_date, e.opened_on)),
                patients[e.patient_id].sex.value,
                e.condition,
                _region(e, regions),
            ),
        )
        for e in sorted(records.episodes, key=lambda e: (e.opened_on, str(e.id)))
        if e.patient_id in patients
    ]
    kept, report = k_anonymize(candidates, lambda r: r.key, lambda r: r.patient.id, k)

    ids = StudyIds(rng)
    patient_ids: dict[object, str] = {}
    offsets: dict[object, int] = {}
    episode_ids: dict[object, str] = {}
    opened: dict[object, date] = {}
    for row in kept:
        pid = row.patient.id
        if pid not in patient_ids:
            patient_ids[pid] = ids.draw("P")
            offsets[pid] = draw_offset(rng)
        episode_ids[row.episode.id] = ids.draw("E")
        opened[row.episode.id] = row.episode.opened_on

    def when(day: date, patient_id: object) -> date | int:
        return released_date(day, offsets[patient_id], dates)

    def local(moment: datetime) -> date:
        return moment.astimezone(tz).date()

    sessions = sorted(
        (
            s
            for s in records.sessions
            if s.status is SessionStatus.SIGNED and s.episode_id in episode_ids
        ),
        key=lambda s: (s.started_at, str(s.id)),
    )
    session_ids = {s.id: ids.draw("V") for s in sessions}
    session_episode = {s.id: s.episode_id for s in sessions}
    sites_of: dict[object, list[NeedlingSite]] = defaultdict(list)
    for site in records.sites:
        if site.session_id in session_ids:
            sites_of[site.session_id].append(site)
    per_episode: dict[object, int] = defaultdict(int)
    for s in sessions:
        per_episode[s.episode_id] += 1

    episode_rows: list[Row] = []
    for row in kept:
        e, pid = row.episode, row.patient.id
        episode_rows.append(
            {
                "episode": episode_ids[e.id],
                "patient": patient_ids[pid],
                "age_band": row.key[0],
                "sex": row.key[1],
                "condition": row.key[2],
                "icd10_code": codes.get(e.condition),
                "region": row.key[3],
                "opened": when(e.opened_on, pid),
                "closed": when(e.closed_on, pid) if e.closed_on else None,
                "length_days": (e.closed_on - e.opened_on).days if e.closed_on else None,
                "status": e.status.value,
                "sessions": per_episode[e.id],
            }
        )

    session_rows: list[Row] = []
    site_rows: list[Row] = []
    for s in sessions:
        day = local(s.started_at)
        session_rows.append(
            {
                "session": session_ids[s.id],
                "episode": episode_ids[s.episode_id],
                "date": when(day, s.patient_id),
                "day": (day - opened[s.episode_id]).days,
                "cpt_code": s.cpt_code,
                "sites": len(sites_of[s.id]),
            }
        )
        for site in sorted(sites_of[s.id], key=lambda x: x.position):
            site_rows.append(
                {
                    "session": session_ids[s.id],
                    "position": site.position,
                    "muscle": site.muscle_id,
                    "side": site.side.value,
                    "trigger_point": site.trigger_point.value,
                    "technique": site.technique.value,
                    "approach": site.approach.value if site.approach else None,
                    "needle_gauge_mm": site.needle_gauge_mm,
                    "needle_length_mm": site.needle_length_mm,
                    "depth_mm": site.depth_mm,
                    "insertions": site.insertions,
                    "local_twitch_responses": site.local_twitch_responses,
                    "electrical_stimulation": site.electrical_stimulation,
                    "tolerance": site.tolerance.value,
                }
            )

    measurement_rows: list[Row] = []
    for m in sorted(records.measurements, key=lambda m: (m.taken_at, str(m.id))):
        if m.episode_id not in episode_ids:
            continue
        if m.session_id is not None and m.session_id not in session_ids:
            continue  # taken in a note still in draft: it does not count until signed
        day = local(m.taken_at)
        measurement_rows.append(
            {
                "episode": episode_ids[m.episode_id],
                "session": session_ids[m.session_id] if m.session_id else None,
                "instrument": m.instrument_id,
                "instrument_version": m.instrument_version,
                "score": m.score,
                "joint": _coded(m.context, "joint"),
                "movement": _coded(m.context, "movement"),
                "side": _coded(m.context, "side"),
                "date": when(day, m.patient_id),
                "day": (day - opened[m.episode_id]).days,
                "after_care": after_care_days(m.context) is not None,
            }
        )

    event_rows: list[Row] = []
    for a in sorted(records.adverse_events, key=lambda a: (a.onset_at, str(a.id))):
        if a.session_id not in session_ids:
            continue
        day = local(a.onset_at)
        event_rows.append(
            {
                "session": session_ids[a.session_id],
                "kind": a.kind.value,
                "severity": a.severity.value,
                "onset": when(day, a.patient_id),
                "day": (day - opened[session_episode[a.session_id]]).days,
                "reportable": a.reportable,
            }
        )

    closed: dict[UUID | None, date | None] = {e.id: e.closed_on for e in records.episodes}
    medication_rows: list[Row] = []
    for u in sorted(records.medication, key=lambda u: (u.recorded_on, str(u.id))):
        if u.episode_id not in episode_ids:
            continue
        medication_rows.append(
            {
                "episode": episode_ids[u.episode_id],
                "drug_class": u.drug_class.value,
                "dose_mg": u.dose_mg,
                "days_per_week": u.days_per_week,
                "date": when(u.recorded_on, u.patient_id),
                "day": (u.recorded_on - opened[u.episode_id]).days,
                "after_care": logged_after_care(closed.get(u.episode_id), u.recorded_on),
            }
        )

    # Rows in an order that says nothing about the records: by (random) study id, then
    # by day or position within it.
    episode_rows.sort(key=lambda r: (str(r["patient"]), str(r["episode"])))
    session_rows.sort(key=lambda r: (str(r["episode"]), _int(r["day"]), str(r["session"])))
    site_rows.sort(key=lambda r: (str(r["session"]), _int(r["position"])))
    measurement_rows.sort(key=lambda r: (str(r["episode"]), _int(r["day"]), str(r["instrument"])))
    event_rows.sort(key=lambda r: (str(r["session"]), _int(r["day"])))
    medication_rows.sort(key=lambda r: (str(r["episode"]), _int(r["day"])))

    specs = {s.name: s for s in table_specs(dates)}
    rows = {
        "episodes": episode_rows,
        "sessions": session_rows,
        "needling_sites": site_rows,
        "measurements": measurement_rows,
        "adverse_events": event_rows,
        "medication": medication_rows,
    }
    for name, table_rows in rows.items():
        for r in table_rows:
            assert tuple(r) == specs[name].names, name  # the dictionary describes every column
    return ResearchRelease(
        dates=dates,
        tables=tuple(Table(specs[n], tuple(rows[n])) for n in specs),
        report=report,
    )
