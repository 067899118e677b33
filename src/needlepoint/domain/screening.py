"""Appropriateness screening: is dry needling appropriate for this patient?

The questionnaire is data (`data/screening.yaml`); this module applies it. The decision
is `contraindicated` when any absolute contraindication is present (never overridable),
`precautions` when any precaution or site-level exclusion is present (each must be
acknowledged by the clinician), and `clear` otherwise. Every reason names its rule and
its sources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.commands import Clearance, ScreeningAnswers
from needlepoint.domain.entities import Screening
from needlepoint.domain.enums import ScreeningDecision, Sex
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.site_safety import screening_statement
from needlepoint.domain.sources import Finding, check_cited

Category = Literal["absolute", "site", "precaution"]
Detail = Literal[
    "reason",
    "note",
    "lymphoedema_areas",
    "local_exclusions",
    "surgery_areas",
    "prosthetic_joints",
    "breast_implant_sides",
    "implant_areas",
]
AREA_DETAILS: tuple[Detail, ...] = (
    "lymphoedema_areas",
    "local_exclusions",
    "surgery_areas",
    "prosthetic_joints",
    "breast_implant_sides",
    "implant_areas",
)
"""Details that name areas of the body: a yes needs at least one, a no allows none."""

RETIRED = {
    "child": "age is computed from the patient's date of birth, not asked",
}
"""Questions earlier versions asked that the record now answers."""

STRICTNESS = {
    ScreeningDecision.CLEAR: 0,
    ScreeningDecision.PRECAUTIONS: 1,
    ScreeningDecision.CONTRAINDICATED: 2,
}
"""Decisions ordered from least to most strict."""


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    text: str
    label: str
    """The finding in a few words ("Lymphoedema of the left arm"), for the history. What
    the chart and every warning say on a yes is `site_safety.screening_statement`."""
    category: Category
    sources: list[str]
    detail: Detail | None = None
    consequence: str | None = None
    asked_when_sex: list[Sex] | None = None
    """Asked only of patients whose recorded sex is listed (None: asked of everyone)."""

    def asked_of(self, patient: PatientFacts | None) -> bool:
        """Whether this question is asked of the patient (all are, without a patient)."""
        return patient is None or self.asked_when_sex is None or patient.sex in self.asked_when_sex


class RecordRule(BaseModel):
    """A finding the screening takes from the patient's record instead of asking."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    category: Category
    text: str
    sources: list[str]
    adult_age_years: int | None = None


class Questionnaire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    record_rules: dict[str, RecordRule]
    questions: list[Question]

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)) or set(ids) & set(self.record_rules):
            raise ValueError("screening.yaml: duplicate question or record rule ids")
        for q in self.questions:
            check_cited(f"screening.yaml:{q.id}", q.sources)
            areas = q.detail in AREA_DETAILS
            if areas != ("{areas}" in q.label):
                raise ValueError(f"screening.yaml:{q.id}: name {{areas}} in the label")
        for rule_id, rule in self.record_rules.items():
            check_cited(f"screening.yaml:{rule_id}", rule.sources)
        if self.record_rules["minor"].adult_age_years is None:
            raise ValueError("screening.yaml: minor needs adult_age_years")
        return self

    def get(self, question_id: str) -> Question:
        """The question with this id (KeyError when absent)."""
        return next(q for q in self.questions if q.id == question_id)

    def asked(self, patient: PatientFacts | None) -> list[Question]:
        """The questions asked of this patient (what the record knows is not asked)."""
        return [q for q in self.questions if q.asked_of(patient)]

    @property
    def adult_age_years(self) -> int:
        """The age from which a patient consents for themselves."""
        age = self.record_rules["minor"].adult_age_years
        assert age is not None
        return age


@cache
def questionnaire() -> Questionnaire:
    """The current questionnaire."""
    return Questionnaire.model_validate(load_data("screening.yaml"))


# --- what the record knows --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What the patient's record already says: the screening does not ask it again."""

    sex: Sex
    birth_date: date | None

    def age_on(self, day: date) -> int | None:
        """Completed years on `day` (None without a date of birth)."""
        return None if self.birth_date is None else age_on(self.birth_date, day)


def age_on(birth_date: date, day: date) -> int:
    """Completed years of age on `day`. Someone born on 29 February turns a year older on
    1 March in years without a 29 February."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def is_minor(patient: PatientFacts, day: date) -> bool:
    """Under the age of majority on `day` (unknown age counts as not known to be adult)."""
    age = patient.age_on(day)
    return age is None or age < questionnaire().adult_age_years


# --- clinical words for areas -----------------------------------------------------------

_LIMBS = {"upper_limb": "arm", "lower_limb": "leg", "trunk": "side of the trunk"}
_REASONS = {
    "infected_tissue": "infected tissue",
    "inflamed_tissue": "acutely inflamed tissue",
    "varicose_veins": "varicose veins",
}


def area_words(area: str) -> str:
    """An area, joint or side in clinical words: `upper_limb:left` is "the left arm",
    `knee:right` "the right knee", `left` (an implant's side) "the left breast"."""
    if area in ("left", "right"):
        return f"the {area} breast"
    if ":" not in area:
        return f"the {area}"
    part, side = area.split(":", 1)
    return f"the {side} {_LIMBS.get(part, part)}"


def join_words(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def named_areas(question: Question, screen: ScreeningAnswers) -> list[tuple[str, str]]:
    """(key, words) of each area a yes to this question names."""
    if question.detail == "local_exclusions":
        return [
            (f"{x.area}/{x.reason}", f"{_REASONS[x.reason]} in {area_words(x.area)}")
            for x in screen.local_exclusions
        ]
    if question.detail in AREA_DETAILS:
        given: Sequence[str] = getattr(screen, question.detail)
        return [(a, area_words(a)) for a in given]
    return []


def finding_label(question: Question, areas: Sequence[str] = ()) -> str:
    """The question's finding in a few clinical words, with the areas it names (for the
    screening history; what to do is in `site_safety.screening_statement`)."""
    text = question.label.replace("{areas}", join_words(list(areas)))
    return text[0].upper() + text[1:]


# --- evaluation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    decision: ScreeningDecision
    reasons: tuple[Finding, ...]
    answers: ScreeningAnswers
    """The answers as stored: only the questions asked of this patient."""

    @property
    def to_acknowledge(self) -> list[str]:
        """Rule ids the clinician must acknowledge before the screening counts."""
        return [r.rule for r in self.reasons if r.action != "absolute"]


def evaluate(
    screen: ScreeningAnswers, patient: PatientFacts | None = None, on: date | None = None
) -> ScreeningResult:
    """The decision and its reasons for a completed questionnaire, for this patient on the
    screening day `on` (age from the date of birth; questions the record answers are not
    asked). Without a patient every question is asked and no record rule applies.

    Raises InvalidInput naming the field when a question is unanswered or unknown, a yes
    lacks the detail it needs (areas, a reason), or a question not asked of this patient
    is answered yes; unanswered questions and missing details are all listed at once in
    its `errors` (the first is its `field`)."""
    q = questionnaire()
    asked = q.asked(patient)
    asked_ids = {x.id for x in asked}
    known = {x.id for x in q.questions}
    for answer_id in screen.answers:
        if answer_id in RETIRED:
            raise InvalidInput(
                f"'{answer_id}' is no longer a screening question: {RETIRED[answer_id]}",
                field=f"answers.{answer_id}",
            )
        if answer_id not in known:
            raise InvalidInput(
                f"'{answer_id}' is not a screening question", field=f"answers.{answer_id}"
            )
        if answer_id not in asked_ids and screen.answers[answer_id]:
            assert patient is not None
            raise InvalidInput(
                f"'{q.get(answer_id).text}' is not asked: the patient's record says "
                f"{patient.sex.value}. Correct the recorded sex first if that is wrong.",
                field=f"answers.{answer_id}",
            )
    for note_id in screen.notes:
        if note_id not in known:
            raise InvalidInput(f"'{note_id}' is not a screening question", field=f"notes.{note_id}")
    reasons = _record_findings(patient, on)
    problems: list[dict[str, str]] = []  # every question's problem named at once
    for question in asked:
        if question.id not in screen.answers:
            problems.append(
                {"field": f"answers.{question.id}", "message": f"'{question.text}' is not answered"}
            )
            continue
        yes = screen.answers[question.id]
        if (problem := _detail_problem(question, yes, screen)) is not None:
            problems.append(problem)
        if yes:
            # the finding in clinical words (issue 13), not the question's text
            message = screening_statement(question.id, screen, question.text)
            reasons.append(
                Finding(question.id, question.category, message, tuple(question.sources))
            )
    if problems:
        first = problems[0]
        raise InvalidInput(first["message"], field=first["field"], errors=problems)
    if any(r.action == "absolute" for r in reasons):
        decision = ScreeningDecision.CONTRAINDICATED
    elif reasons:
        decision = ScreeningDecision.PRECAUTIONS
    else:
        decision = ScreeningDecision.CLEAR
    kept = screen.model_copy(
        update={
            "answers": {k: v for k, v in screen.answers.items() if k in asked_ids},
            "notes": {k: v for k, v in screen.notes.items() if k in asked_ids},
        }
    )
    return ScreeningResult(decision, tuple(reasons), kept)


def _record_findings(patient: PatientFacts | None, on: date | None) -> list[Finding]:
    """What the record itself says: a minor, or an unknown age."""
    if patient is None:
        return []
    rules = questionnaire().record_rules
    age = patient.age_on(on or date.today())
    if age is None:
        rule = rules["age_unknown"]
        return [Finding("age_unknown", rule.category, rule.text, tuple(rule.sources))]
    if age < questionnaire().adult_age_years:
        rule = rules["minor"]
        text = rule.text.replace("{age}", str(age))
        return [Finding("minor", rule.category, text, tuple(rule.sources))]
    return []


def _detail_problem(
    question: Question, yes: bool, screen: ScreeningAnswers
) -> dict[str, str] | None:
    """What an answer lacks (a written reason, the areas) or contradicts, if anything."""
    if question.detail == "reason":
        if yes and not screen.notes.get(question.id, "").strip():
            return {
                "field": f"notes.{question.id}",
                "message": f"a yes to '{question.text}' needs a written reason",
            }
        return None
    if question.detail not in AREA_DETAILS:
        return None
    field = question.detail
    given: Sequence[object] = getattr(screen, field)
    if yes and not given:
        return {"field": field, "message": f"a yes to '{question.text}' needs the areas named"}
    if given and not yes:
        return {"field": field, "message": f"areas are named but '{question.text}' is answered no"}
    return None


# --- a contraindication never silently disappears ----------------------------------------


def standing_findings(answers: dict[str, Any], reasons: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The absolute and site-level findings of a stored screening, by key (a rule, or a
    rule and one area), each named in a few clinical words. A later screening that drops
    one of these must say what changed and why."""
    q = questionnaire()
    labels = {x.id: x.label for x in q.questions if x.detail not in AREA_DETAILS}
    out: dict[str, str] = {}
    for reason in reasons:
        if reason["action"] == "absolute":
            out[reason["rule"]] = labels.get(reason["rule"], reason["message"])
    screen = ScreeningAnswers.model_validate(
        {k: v for k, v in answers.items() if k in ScreeningAnswers.model_fields}
    )
    for question in q.questions:
        if question.category != "site" or not screen.answers.get(question.id):
            continue
        for key, words in named_areas(question, screen):
            out[f"{question.id}:{key}"] = finding_label(question, [words])
    return out


def cleared_findings(previous: Screening | None, result: ScreeningResult) -> dict[str, str]:
    """The absolute and site-level findings of the previous screening that this result no
    longer has (key → the finding as it stood)."""
    if previous is None:
        return {}
    before = standing_findings(previous.answers, previous.reasons)
    now = standing_findings(
        result.answers.model_dump(mode="json"), [r.as_dict() for r in result.reasons]
    )
    return {k: v for k, v in before.items() if k not in now}


def latest_before(screenings: Sequence[Screening], at: datetime) -> Screening | None:
    """The patient's latest screening made at or before `at` (the one a new screening
    replaces)."""
    made = [s for s in screenings if s.screened_at <= at]
    return max(made, key=lambda s: (s.screened_at, s.created_at)) if made else None


def check_acknowledged(result: ScreeningResult, acknowledged: Sequence[str]) -> None:
    """Every precaution and site-level exclusion must be acknowledged by the clinician
    before the screening is recorded (absolute contraindications cannot be)."""
    missing = [r for r in result.reasons if r.action != "absolute" and r.rule not in acknowledged]
    if result.decision is not ScreeningDecision.CONTRAINDICATED and missing:
        names = "; ".join(f"{r.message} ({r.citation()})" for r in missing)
        raise InvalidInput(
            f"acknowledge each precaution before recording the screening: {names}",
            field="acknowledged_precautions",
        )
    extra = sorted(set(acknowledged) - {r.rule for r in result.reasons})
    if extra:
        raise InvalidInput(
            f"'{extra[0]}' is acknowledged but is not a finding of this screening",
            field="acknowledged_precautions",
        )


def expires_on(screening: Screening, valid_days: int) -> date:
    """The first day on which the screening no longer counts."""
    return screening.screened_at.date() + timedelta(days=valid_days)


def latest_screening(screenings: Sequence[Screening], at: datetime) -> Screening | None:
    """The latest screening made on or before the day of `at`, expired or not."""
    made = [s for s in screenings if s.screened_at.date() <= at.date()]
    return max(made, key=lambda s: (s.screened_at, s.created_at)) if made else None


def current_screening(
    screenings: Sequence[Screening], at: datetime, valid_days: int
) -> Screening | None:
    """The screening that applies at `at`: the latest made on or before that day, if it
    has not expired. A newer screening (answers changed) always supersedes an older one."""
    latest = latest_screening(screenings, at)
    if latest is None:
        return None
    return latest if at.date() < expires_on(latest, valid_days) else None


def check_clearance(cleared: dict[str, str], clearance: Clearance | None) -> list[dict[str, Any]]:
    """What to store about the findings this screening clears: each with what changed
    (a structured reason) and why (the clinician's words). Raises InvalidInput naming
    `clearance` when findings are cleared without it, or it is given for nothing."""
    if not cleared:
        if clearance is not None:
            raise InvalidInput(
                "A reason for clearing is given, but this screening clears no earlier "
                "contraindication or area to avoid.",
                field="clearance",
            )
        return []
    if clearance is None:
        raise InvalidInput(
            "This screening clears earlier findings: "
            + "; ".join(cleared.values())
            + ". State what changed and why before recording it.",
            field="clearance",
        )
    return [
        {
            "finding": key,
            "message": message,
            "reason": clearance.reason,
            "explanation": clearance.explanation,
        }
        for key, message in cleared.items()
    ]
