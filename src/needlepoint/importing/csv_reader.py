"""The CSV layout another EMR exports (docs/import.md) → import records.

A folder of UTF-8 CSV files with a header row; `patients.csv`, `episodes.csv` and
`sessions.csv` are required, the others optional. Rows are linked by the other system's
ids (`patient_external_id`, `episode_external_id`, `session_external_id`). Each file's
columns are fixed (`LAYOUT`): a missing required column or a column the layout does not
know is a problem of the whole file (a misspelt optional column would otherwise lose its
data silently), and nothing is imported. A value that cannot be read (an impossible
date, a time without its zone, a number that is not one) is a problem of its row,
naming the file, the row (the header is row 1) and the column; the patient the row
belongs to is then not imported. The meaning of the values (is this a muscle we know,
a billable ICD-10 code?) is checked by the engine."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from needlepoint.importing.records import (
    Answer,
    ClinicianRef,
    ImportedAdverseEvent,
    ImportedAmendment,
    ImportedCoIntervention,
    ImportedEpisode,
    ImportedMeasurement,
    ImportedPatient,
    ImportedSession,
    ImportedSignature,
    ImportedSite,
    Origin,
    Problem,
    ReadResult,
)


@dataclass(frozen=True)
class FileLayout:
    """One file of the layout: its required and optional columns, in export order."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    required_file: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


LAYOUT: tuple[FileLayout, ...] = (
    FileLayout(
        "patients.csv",
        ("external_id", "mrn", "given_name", "family_name", "birth_date", "sex"),
        ("phone", "email"),
        required_file=True,
    ),
    FileLayout(
        "episodes.csv",
        (
            "patient_external_id",
            "external_id",
            "condition",
            "onset_date",
            "opened_on",
            "clinician_email",
        ),
        ("icd10_code", "body_region", "goals", "closed_on", "discharge_reason"),
        required_file=True,
    ),
    FileLayout(
        "sessions.csv",
        (
            "patient_external_id",
            "episode_external_id",
            "external_id",
            "started_at",
            "clinician_email",
        ),
        ("subjective", "objective", "assessment", "plan", "signed_by_email", "signed_at"),
        required_file=True,
    ),
    FileLayout(
        "sites.csv",
        (
            "patient_external_id",
            "session_external_id",
            "muscle_id",
            "side",
            "trigger_point",
            "technique",
            "needle_gauge_mm",
            "needle_length_mm",
            "depth_mm",
            "insertions",
            "tolerance",
        ),
        (
            "local_twitch_responses",
            "electrical_stimulation",
            "estim_frequency_hz",
            "estim_intensity_ma",
            "estim_minutes",
            "approach",
            "notes",
            "override_reason",
            "override_code",
        ),
    ),
    FileLayout(
        "measurements.csv",
        ("patient_external_id", "episode_external_id", "instrument_id", "answers", "taken_at"),
        ("session_external_id", "score", "context"),
    ),
    FileLayout(
        "co_interventions.csv",
        ("patient_external_id", "session_external_id", "modality", "description"),
        ("minutes",),
    ),
    FileLayout(
        "adverse_events.csv",
        (
            "patient_external_id",
            "session_external_id",
            "kind",
            "severity",
            "onset_at",
            "description",
        ),
        ("action_taken", "reportable", "reported_at"),
    ),
    FileLayout(
        "amendments.csv",
        (
            "patient_external_id",
            "session_external_id",
            "author_email",
            "written_at",
            "reason",
            "text",
        ),
    ),
)
LAYOUT_BY_NAME = {f.name: f for f in LAYOUT}


class _Bad(ValueError):
    """A value that cannot be read; its message says what was expected."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Bad(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(
            f"{text!r} is not a date and time (ISO 8601, e.g. 2026-03-01T09:30:00Z)"
        ) from None
    if value.tzinfo is None:
        raise _Bad(f"{text!r} has no time zone (write it as 2026-03-01T09:30:00+01:00 or …Z)")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _Bad(f"{text!r} is not a number")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Bad(f"{text!r} is not a whole number") from None


_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def _bool(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _Bad(f"{text!r} is not true or false")


def _pairs(text: str, value: Callable[[str], Any]) -> dict[str, Any]:
    """`item=value;item=value` (a value left empty: not answered)."""
    out: dict[str, Any] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise _Bad(f"{part!r} is not item=value")
        out[key.strip()] = value(raw.strip())
    return out


def _answer(text: str) -> Answer:
    if text == "":
        return None
    number = _float(text)
    return int(number) if number.is_integer() and "." not in text else number


def _context_value(text: str) -> str | int | float | bool:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        value = _answer(text)
    except _Bad:
        return text
    return text if value is None else value


@dataclass
class _Row:
    """One data row of a file, with its origin and its problems."""

    values: dict[str, str]
    origin: Origin
    problems: list[Problem] = field(default_factory=list)

    def text(self, column: str) -> str:
        return (self.values.get(column) or "").strip()

    def optional_text(self, column: str) -> str | None:
        return self.text(column) or None

    def read(self, column: str, parse: Callable[[str], Any]) -> Any:
        """The column's value parsed, or None (a problem is noted) when it cannot be read
        or a required value is missing."""
        text = self.text(column)
        layout = LAYOUT_BY_NAME[self.origin.source]
        if not text:
            if column in layout.required:
                self.problems.append(Problem(self.origin, column, "a value is required"))
            return None
        try:
            return parse(text)
        except _Bad as bad:
            self.problems.append(Problem(self.origin, column, str(bad)))
            return None


def _rows(folder: Path, layout: FileLayout, problems: list[Problem]) -> Iterator[_Row] | None:
    path = folder / layout.name
    if not path.exists():
        if layout.required_file:
            problems.append(Problem(Origin(layout.name, "file"), "-", "the file is missing"))
            return None
        return iter(())
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    header_origin = Origin(layout.name, "row 1")
    bad = False
    for column in layout.required:
        if column not in header:
            problems.append(Problem(header_origin, column, "this required column is missing"))
            bad = True
    for column in header:
        if column not in layout.columns:
            problems.append(
                Problem(
                    header_origin,
                    column or "(empty)",
                    f"not a column of {layout.name} (its columns: {', '.join(layout.columns)})",
                )
            )
            bad = True
    if bad:
        handle.close()
        return None

    def generate() -> Iterator[_Row]:
        with handle:
            for number, values in enumerate(reader, start=2):
                origin = Origin(layout.name, f"row {number}")
                if None in values:  # more fields than the header has
                    row = _Row({}, origin)
                    row.problems.append(
                        Problem(origin, "-", "the row has more fields than the header")
                    )
                    yield row
                    continue
                yield _Row(values, origin)

    return generate()


def read_csv_folder(folder: Path) -> ReadResult:
    """Read the layout's files in `folder` into patients; every problem found is in the
    result (a patient with any problem is left out)."""
    problems: list[Problem] = []
    files = {layout.name: _rows(folder, layout, problems) for layout in LAYOUT}
    if any(rows is None for rows in files.values()):
        return ReadResult((), tuple(problems))
    tables: dict[str, list[_Row]] = {name: list(rows or ()) for name, rows in files.items()}

    broken: dict[str, list[Problem]] = defaultdict(list)  # patient external id → problems
    patients: dict[str, _Row] = {}
    for row in tables["patients.csv"]:
        ext = row.text("external_id")
        if not ext:
            row.read("external_id", str)
            problems += row.problems
            continue
        if ext in patients:
            broken[ext].append(Problem(row.origin, "external_id", f"patient {ext} is listed twice"))
            continue
        patients[ext] = row

    def owner_of(row: _Row) -> str | None:
        ext = row.text("patient_external_id")
        if ext in patients:
            return ext
        reason = f"no patient {ext!r} in patients.csv" if ext else "a value is required"
        problems.append(Problem(row.origin, "patient_external_id", reason))
        return None

    grouped: dict[str, dict[str, list[_Row]]] = defaultdict(lambda: defaultdict(list))
    for name in LAYOUT_BY_NAME:
        if name == "patients.csv":
            continue
        for row in tables[name]:
            if row.problems:  # a malformed row: attributed if it names its patient
                named = row.values.get("patient_external_id") or ""
                (broken[named] if named in patients else problems).extend(row.problems)
                continue
            owner = owner_of(row)
            if owner is not None:
                grouped[owner][name].append(row)

    out: list[ImportedPatient] = []
    for ext, row in patients.items():
        patient, found = _patient(row, grouped.get(ext, {}))
        found = broken.get(ext, []) + found
        if found:
            problems += [
                Problem(p.origin, p.field, p.reason, patient_external_id=ext) for p in found
            ]
        elif patient is not None:
            out.append(patient)
    return ReadResult(tuple(out), tuple(problems))


def _clinician(row: _Row, column: str, *, required: bool = True) -> ClinicianRef | None:
    email = row.text(column)
    if not email:
        if required:
            row.problems.append(Problem(row.origin, column, "a value is required"))
        return None
    return ClinicianRef(email=email)


def _patient(
    row: _Row, rows: dict[str, list[_Row]]
) -> tuple[ImportedPatient | None, list[Problem]]:
    """The patient with everything of theirs, or the problems found in their rows."""
    problems: list[Problem] = []

    def keyed(name: str, column: str) -> dict[str, list[_Row]]:
        out: dict[str, list[_Row]] = defaultdict(list)
        for r in rows.get(name, []):
            out[r.text(column)].append(r)
        return out

    sites = keyed("sites.csv", "session_external_id")
    cos = keyed("co_interventions.csv", "session_external_id")
    aes = keyed("adverse_events.csv", "session_external_id")
    amends = keyed("amendments.csv", "session_external_id")
    measurements_by_session = keyed("measurements.csv", "session_external_id")
    sessions_by_episode = keyed("sessions.csv", "episode_external_id")
    session_ids = {r.text("external_id") for r in rows.get("sessions.csv", [])}
    episode_ids = {r.text("external_id") for r in rows.get("episodes.csv", [])}

    for by_session in (sites, cos, aes, amends):
        for key, children in by_session.items():
            if key not in session_ids:
                for child in children:
                    reason = (
                        f"no session {key!r} of this patient in sessions.csv"
                        if key
                        else "a value is required"
                    )
                    problems.append(Problem(child.origin, "session_external_id", reason))
    for key, children in measurements_by_session.items():
        if key and key not in session_ids:
            for child in children:
                problems.append(
                    Problem(
                        child.origin,
                        "session_external_id",
                        f"no session {key!r} of this patient in sessions.csv",
                    )
                )
    for r in rows.get("measurements.csv", []):
        if r.text("episode_external_id") not in episode_ids:
            problems.append(
                Problem(
                    r.origin,
                    "episode_external_id",
                    f"no episode {r.text('episode_external_id')!r} of this patient in episodes.csv",
                )
            )
    for key, children in sessions_by_episode.items():
        if key not in episode_ids:
            for child in children:
                problems.append(
                    Problem(
                        child.origin,
                        "episode_external_id",
                        f"no episode {key!r} of this patient in episodes.csv",
                    )
                )

    seen_sessions: set[str] = set()
    episodes: list[ImportedEpisode] = []
    for er in rows.get("episodes.csv", []):
        ep_ext = er.text("external_id")
        sessions: list[ImportedSession] = []
        for sr in sessions_by_episode.get(ep_ext, []):
            s_ext = sr.text("external_id")
            if s_ext in seen_sessions:
                problems.append(
                    Problem(sr.origin, "external_id", f"session {s_ext} is listed twice")
                )
                continue
            seen_sessions.add(s_ext)
            session = _session(
                sr,
                sites.get(s_ext, []),
                cos.get(s_ext, []),
                aes.get(s_ext, []),
                [m for m in measurements_by_session.get(s_ext, []) if s_ext],
                amends.get(s_ext, []),
            )
            if session is not None:
                sessions.append(session)
        loose = [
            m
            for m in (
                _measurement(m)
                for m in measurements_by_session.get("", [])
                if m.text("episode_external_id") == ep_ext
            )
            if m is not None
        ]
        clinician = _clinician(er, "clinician_email")
        episode_values = {
            "external_id": er.read("external_id", str),
            "condition": er.read("condition", str),
            "onset_date": er.read("onset_date", _date),
            "opened_on": er.read("opened_on", _date),
            "closed_on": er.read("closed_on", _date),
        }
        closed_on = episode_values["closed_on"]
        if (closed_on is None) != (not er.text("discharge_reason")):
            er.problems.append(
                Problem(
                    er.origin,
                    "discharge_reason" if closed_on else "closed_on",
                    "a discharge needs both closed_on and discharge_reason",
                )
            )
        if not er.problems and clinician is not None:
            episodes.append(
                ImportedEpisode(
                    external_id=episode_values["external_id"],
                    condition=episode_values["condition"],
                    onset_date=episode_values["onset_date"],
                    opened_on=episode_values["opened_on"],
                    clinician=clinician,
                    icd10_code=er.optional_text("icd10_code"),
                    body_region=er.optional_text("body_region"),
                    goals=er.text("goals"),
                    closed_on=closed_on,
                    discharge_reason=er.optional_text("discharge_reason"),
                    sessions=tuple(sessions),
                    measurements=tuple(loose),
                    origin=er.origin,
                )
            )
    values = {
        "birth_date": row.read("birth_date", _date),
        "mrn": row.read("mrn", str),
        "given_name": row.read("given_name", str),
        "family_name": row.read("family_name", str),
        "sex": row.read("sex", str),
    }
    for r in [row, *(r for name_rows in rows.values() for r in name_rows)]:
        problems += r.problems
    if problems:
        return None, problems
    return (
        ImportedPatient(
            external_id=row.text("external_id"),
            phone=row.optional_text("phone"),
            email=row.optional_text("email"),
            episodes=tuple(episodes),
            origin=row.origin,
            **values,
        ),
        [],
    )


def _session(
    sr: _Row,
    sites: list[_Row],
    cos: list[_Row],
    aes: list[_Row],
    measurements: list[_Row],
    amends: list[_Row],
) -> ImportedSession | None:
    clinician = _clinician(sr, "clinician_email")
    started_at = sr.read("started_at", _moment)
    signer = _clinician(sr, "signed_by_email", required=False)
    signed_at = sr.read("signed_at", _moment)
    if (signer is None) != (signed_at is None):
        sr.problems.append(
            Problem(
                sr.origin,
                "signed_at" if signer else "signed_by_email",
                "a signature needs both signed_by_email and signed_at",
            )
        )
    site_records = [s for s in (_site(r) for r in sites) if s is not None]
    co_records = [
        ImportedCoIntervention(
            modality=r.text("modality"),
            description=r.text("description"),
            minutes=r.read("minutes", _int),
            origin=r.origin,
        )
        for r in cos
    ]
    ae_records = []
    for r in aes:
        onset = r.read("onset_at", _moment)
        reportable = r.read("reportable", _bool)
        reported_at = r.read("reported_at", _moment)
        if onset is not None:
            ae_records.append(
                ImportedAdverseEvent(
                    kind=r.text("kind"),
                    severity=r.text("severity"),
                    onset_at=onset,
                    description=r.text("description"),
                    action_taken=r.optional_text("action_taken"),
                    reportable=bool(reportable),
                    reported_at=reported_at,
                    origin=r.origin,
                )
            )
    m_records = [m for m in (_measurement(r) for r in measurements) if m is not None]
    amendment_records = []
    for r in amends:
        author = _clinician(r, "author_email")
        written = r.read("written_at", _moment)
        if author is not None and written is not None:
            amendment_records.append(
                ImportedAmendment(author, written, r.text("reason"), r.text("text"), r.origin)
            )
    if clinician is None or started_at is None or sr.problems:
        return None
    return ImportedSession(
        external_id=sr.text("external_id"),
        started_at=started_at,
        clinician=clinician,
        subjective=sr.text("subjective"),
        objective=sr.text("objective"),
        assessment=sr.text("assessment"),
        plan=sr.text("plan"),
        sites=tuple(site_records),
        co_interventions=tuple(co_records),
        adverse_events=tuple(ae_records),
        measurements=tuple(m_records),
        signature=ImportedSignature(signer, signed_at) if signer and signed_at else None,
        amendments=tuple(amendment_records),
        origin=sr.origin,
    )


def _site(r: _Row) -> ImportedSite | None:
    values = {
        "needle_gauge_mm": r.read("needle_gauge_mm", _float),
        "needle_length_mm": r.read("needle_length_mm", _float),
        "depth_mm": r.read("depth_mm", _float),
        "insertions": r.read("insertions", _int),
        "local_twitch_responses": r.read("local_twitch_responses", _int) or 0,
        "electrical_stimulation": bool(r.read("electrical_stimulation", _bool)),
        "estim_frequency_hz": r.read("estim_frequency_hz", _float),
        "estim_intensity_ma": r.read("estim_intensity_ma", _float),
        "estim_minutes": r.read("estim_minutes", _float),
    }
    for column in ("muscle_id", "side", "trigger_point", "technique", "tolerance"):
        r.read(column, str)
    if r.problems:
        return None
    return ImportedSite(
        muscle_id=r.text("muscle_id"),
        side=r.text("side"),
        trigger_point=r.text("trigger_point"),
        technique=r.text("technique"),
        tolerance=r.text("tolerance"),
        notes=r.optional_text("notes"),
        approach=r.optional_text("approach"),
        override_reason=r.optional_text("override_reason"),
        override_code=r.optional_text("override_code"),
        origin=r.origin,
        **values,
    )


def _measurement(r: _Row) -> ImportedMeasurement | None:
    answers = r.read("answers", lambda t: _pairs(t, _answer))
    taken_at = r.read("taken_at", _moment)
    score = r.read("score", _float)
    context = r.read("context", lambda t: _pairs(t, _context_value))
    r.read("instrument_id", str)
    if r.problems or answers is None or taken_at is None:
        return None
    return ImportedMeasurement(
        instrument_id=r.text("instrument_id"),
        answers=answers,
        taken_at=taken_at,
        score=score,
        context=context,
        origin=r.origin,
    )
