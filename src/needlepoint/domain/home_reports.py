"""Questionnaires from home whose context the patient gives on a form of its own
(issue 16): PSFS (the activities rated), return to work or sport (which one, whether
returned, and the day) and analgesic use (the analgesic log). Each check turns what the
patient sent into exactly what the clinician's path stores, or raises InvalidInput
naming the field. Pure and typed.

* PSFS: the activities of the episode's earlier PSFS (the same version: PSFS and PSFS 2.0
  are never compared) are rated again, stored with the same context keys
  (`activity1` … `activity5`) so the scores compare; without an earlier one, the patient
  names 1 to 5 activities and rates them (that becomes the baseline).
* Return to work or sport: the `return_to_activity` measurement, item1 0 = not yet
  returned, 1 = returned, context `activity` (work or sport) and, when returned,
  `returned_on` (not in the future, not before the episode opened).
* Analgesic use: for each drug on record (its latest log entry), the days it was taken in
  the past 7 days (0 = stopped, which is how the log already reads drug-free status),
  and any other pain medicine (name, class, days, dose optional)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.enums import DrugClass
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.instruments import Answer, Instrument, validate_answers
from needlepoint.domain.questionnaires import home_form

MAX_ACTIVITIES = 5
MAX_ACTIVITY_CHARS = 80
MAX_DRUG_CHARS = 100
MAX_DOSE_MG = 10_000
DAYS_IN_WEEK = 7
DRUG_CLASS_WORDS: dict[DrugClass, str] = {
    DrugClass.PARACETAMOL: "paracetamol (acetaminophen)",
    DrugClass.NSAID: "anti-inflammatory (for example ibuprofen, naproxen)",
    DrugClass.OPIOID: "opioid (for example codeine, tramadol)",
    DrugClass.MUSCLE_RELAXANT: "muscle relaxant",
    DrugClass.NEUROPATHIC: "nerve pain medicine (for example gabapentin)",
    DrugClass.OTHER: "other or not sure",
}
"""The analgesic log's classes (`DrugClass`) in the patient's words."""
DRUG_CLASS_LABELS: dict[DrugClass, str] = {
    DrugClass.PARACETAMOL: "paracetamol (acetaminophen)",
    DrugClass.NSAID: "NSAID (non-steroidal anti-inflammatory)",
    DrugClass.OPIOID: "opioid",
    DrugClass.MUSCLE_RELAXANT: "muscle relaxant",
    DrugClass.NEUROPATHIC: "neuropathic pain medicine",
    DrugClass.OTHER: "other class",
}
"""The analgesic log's classes as the clinician's record names them."""


def check_plain_form(instrument_id: str) -> None:
    """Refuse answering a questionnaire of its own form through the plain item form
    (its context would be missing)."""
    if home_form(instrument_id) is not None:
        raise InvalidInput(
            f"'{instrument_id}' is answered on its own form, with its context",
            field="assignment_id",
        )


def _whole_number(value: object, low: int, high: int, field: str, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}", field=field)
    try:
        number = float(str(value).strip().replace(",", ".")) if isinstance(value, str) else value
    except ValueError:
        raise InvalidInput(
            f"{what} must be a whole number from {low} to {high}", field=field
        ) from None
    if (
        not isinstance(number, int | float)
        or number != number
        or float(number) != int(number)
        or not low <= number <= high
    ):
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}", field=field)
    return int(number)


# -- analgesic use -----------------------------------------------------------------------


def drug_key(drug: str) -> str:
    """A drug's key in the log: its name, trimmed, lower case (how the log groups it)."""
    return " ".join(drug.split()).lower()


def latest_per_drug(uses: Sequence[MedicationUse]) -> list[MedicationUse]:
    """Each drug's latest log entry (by day, then by when it was written), by name."""
    latest: dict[str, MedicationUse] = {}
    for use in sorted(uses, key=lambda u: (u.recorded_on, u.created_at)):
        latest[drug_key(use.drug)] = use
    return [latest[k] for k in sorted(latest)]


@dataclass(frozen=True, slots=True)
class ReportedUse:
    """One analgesic-log entry the patient reported."""

    drug: str
    drug_class: DrugClass
    days_per_week: int
    dose_mg: float | None = None


@dataclass(frozen=True, slots=True)
class OtherDrug:
    """A pain medicine the patient names that is not on record (all blank: none)."""

    drug: str = ""
    drug_class: str = ""
    days: object = None
    dose_mg: object = None

    @property
    def blank(self) -> bool:
        return not any(
            str(v).strip() for v in (self.drug, self.drug_class, self.days, self.dose_mg) if v
        )


def check_analgesic_report(
    on_record: Sequence[MedicationUse], days: Mapping[str, object], other: OtherDrug
) -> list[ReportedUse]:
    """The log entries of a patient's report: every drug on record answered with its days
    (0 to 7, field `days.<drug>`), and the other medicine, if any, complete (`other_drug`,
    `other_class`, `other_days`; `other_dose_mg` optional). Nothing named twice."""
    record = {drug_key(u.drug): u for u in latest_per_drug(on_record)}
    given = {drug_key(k): v for k, v in days.items()}
    unknown = sorted(set(given) - set(record))
    if unknown:
        raise InvalidInput(f"'{unknown[0]}' is not on your record", field=f"days.{unknown[0]}")
    out: list[ReportedUse] = []
    for key, use in record.items():
        value = given.get(key)
        field = f"days.{use.drug}"
        if value is None or value == "":
            raise InvalidInput(f"please answer how many days you took {use.drug}", field=field)
        n = _whole_number(value, 0, DAYS_IN_WEEK, field, f"the days you took {use.drug}")
        out.append(ReportedUse(use.drug, use.drug_class, n, use.dose_mg))
    if not other.blank:
        out.append(_check_other(other, record))
    return out


def _check_other(other: OtherDrug, record: Mapping[str, MedicationUse]) -> ReportedUse:
    name = " ".join(str(other.drug or "").split())
    if not name:
        raise InvalidInput("please name the other pain medicine", field="other_drug")
    if len(name) > MAX_DRUG_CHARS:
        raise InvalidInput(
            f"the medicine's name is at most {MAX_DRUG_CHARS} characters", field="other_drug"
        )
    if drug_key(name) in record:
        raise InvalidInput(f"{name} is already asked above", field="other_drug")
    try:
        drug_class = DrugClass(str(other.drug_class or "").strip())
    except ValueError:
        raise InvalidInput(
            "please choose what kind of medicine it is", field="other_class"
        ) from None
    if other.days is None or str(other.days).strip() == "":
        raise InvalidInput(f"please answer how many days you took {name}", field="other_days")
    n = _whole_number(other.days, 0, DAYS_IN_WEEK, "other_days", f"the days you took {name}")
    dose: float | None = None
    if other.dose_mg is not None and str(other.dose_mg).strip():
        try:
            dose = float(str(other.dose_mg).strip().replace(",", "."))
        except ValueError:
            dose = -1.0
        if not 0 < dose <= MAX_DOSE_MG or dose != dose:
            raise InvalidInput(
                f"the dose is a number of mg above 0 and at most {MAX_DOSE_MG}",
                field="other_dose_mg",
            )
    return ReportedUse(name, drug_class, n, dose)


# -- return to work or sport ---------------------------------------------------------------


def check_return(
    instrument: Instrument,
    activity: object,
    returned: object,
    returned_on: object,
    *,
    opened_on: date,
    today: date,
) -> tuple[dict[str, Answer], dict[str, Any]]:
    """The answers and context of a return to work or sport, as the clinician's path
    stores them: `activity` one of the instrument's, `returned` 0 or 1 (the instrument's
    answer wording), and when returned `returned_on` between the episode's opening and
    today (the clinic's day)."""
    allowed = instrument.context_values.get("activity", [])
    if str(activity or "") not in allowed:
        raise InvalidInput(f"please choose {' or '.join(allowed)}", field="activity")
    if returned is None or returned == "":
        raise InvalidInput("please answer whether you have returned", field="returned")
    flag = _whole_number(returned, 0, 1, "returned", "the answer")
    context: dict[str, Any] = {"activity": str(activity)}
    if flag == 1:
        if returned_on is None or returned_on == "":
            raise InvalidInput("please give the day you returned", field="returned_on")
        try:
            day = (
                returned_on
                if isinstance(returned_on, date)
                else date.fromisoformat(str(returned_on))
            )
        except ValueError:
            raise InvalidInput("the day must be a date", field="returned_on") from None
        if day > today:
            raise InvalidInput("the day you returned cannot be in the future", field="returned_on")
        if day < opened_on:
            raise InvalidInput(
                f"the day you returned cannot be before your care began ({opened_on.isoformat()})",
                field="returned_on",
            )
        context["returned_on"] = day.isoformat()
    return {"item1": flag}, context


# -- PSFS ----------------------------------------------------------------------------------


def activity_keys() -> list[str]:
    return [f"activity{i}" for i in range(1, MAX_ACTIVITIES + 1)]


def baseline_activities(
    instrument_id: str, earlier: Sequence[Measurement]
) -> dict[str, str] | None:
    """The activities of the episode's first PSFS of this version that named any
    (`activityN` → the words), or None when there is none."""
    for m in sorted(earlier, key=lambda m: (m.taken_at, m.created_at)):
        if m.instrument_id != instrument_id:
            continue
        named = {
            k: str(v).strip()
            for k in activity_keys()
            if (v := (m.context or {}).get(k)) is not None and str(v).strip()
        }
        if named:
            return named
    return None


def check_psfs(
    instrument: Instrument,
    ratings: Mapping[str, object],
    named: Mapping[str, object],
    baseline: Mapping[str, str] | None,
) -> tuple[dict[str, Answer], dict[str, Any]]:
    """The answers and context of a PSFS from home. With a baseline, each of its
    activities is rated (`answers.itemN`, N its activity's number) and the context is the
    baseline's; without, the activities the patient names (1 to 5, `activityN`), each
    rated. Ratings are 0 to 10 (the instrument's range)."""
    if baseline is not None:
        activities = dict(baseline)
    else:
        activities = {}
        for key in activity_keys():
            words = " ".join(str(named.get(key) or "").split())
            if len(words) > MAX_ACTIVITY_CHARS:
                raise InvalidInput(
                    f"an activity is at most {MAX_ACTIVITY_CHARS} characters", field=key
                )
            if words:
                activities[key] = words
        if not activities:
            raise InvalidInput("please name at least one activity", field="activity1")
    answers: dict[str, Answer] = {}
    for key in activity_keys():
        item = "item" + key.removeprefix("activity")
        raw = ratings.get(item)
        given = raw is not None and raw != ""
        if key not in activities:
            if given:
                raise InvalidInput("please name the activity you rated", field=key)
            continue
        if not given:
            raise InvalidInput(f"please rate '{activities[key]}'", field=f"answers.{item}")
        try:
            value = float(str(raw).replace(",", ".")) if isinstance(raw, str) else raw
        except ValueError:
            raise InvalidInput(
                f"please rate '{activities[key]}'", field=f"answers.{item}"
            ) from None
        answers[item] = int(value) if isinstance(value, float) and value.is_integer() else value  # type: ignore[assignment]
    clean = validate_answers(instrument, answers)
    return {k: v for k, v in clean.items() if v is not None}, activities
