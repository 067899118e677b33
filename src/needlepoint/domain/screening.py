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
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.commands import ScreeningAnswers
from needlepoint.domain.entities import Screening
from needlepoint.domain.enums import ScreeningDecision
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.site_safety import screening_statement
from needlepoint.domain.sources import Finding, check_cited

Category = Literal["absolute", "site", "precaution"]
Detail = Literal["reason", "note", "lymphoedema_areas", "local_exclusions"]

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
    category: Category
    sources: list[str]
    detail: Detail | None = None
    consequence: str | None = None


class Questionnaire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    questions: list[Question]

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("screening.yaml: duplicate question ids")
        for q in self.questions:
            check_cited(f"screening.yaml:{q.id}", q.sources)
        return self

    def get(self, question_id: str) -> Question:
        """The question with this id (KeyError when absent)."""
        return next(q for q in self.questions if q.id == question_id)


@cache
def questionnaire() -> Questionnaire:
    """The current questionnaire."""
    return Questionnaire.model_validate(load_data("screening.yaml"))


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    decision: ScreeningDecision
    reasons: tuple[Finding, ...]

    @property
    def to_acknowledge(self) -> list[str]:
        """Rule ids the clinician must acknowledge before the screening counts."""
        return [r.rule for r in self.reasons if r.action != "absolute"]


def evaluate(screen: ScreeningAnswers) -> ScreeningResult:
    """The decision and its reasons for a completed questionnaire.

    Raises InvalidInput naming the field when a question is unanswered or unknown, or a
    yes lacks the detail it needs (areas, a reason)."""
    q = questionnaire()
    known = {x.id for x in q.questions}
    unknown = sorted(set(screen.answers) - known)
    if unknown:
        raise InvalidInput(
            f"'{unknown[0]}' is not a screening question", field=f"answers.{unknown[0]}"
        )
    for note_id in screen.notes:
        if note_id not in known:
            raise InvalidInput(f"'{note_id}' is not a screening question", field=f"notes.{note_id}")
    reasons: list[Finding] = []
    for question in q.questions:
        if question.id not in screen.answers:
            raise InvalidInput(f"'{question.text}' is not answered", field=f"answers.{question.id}")
        yes = screen.answers[question.id]
        _check_detail(question, yes, screen)
        if yes:
            # the finding in clinical words (issue 13), not the question's text
            message = screening_statement(question.id, screen, question.text)
            reasons.append(
                Finding(question.id, question.category, message, tuple(question.sources))
            )
    if any(r.action == "absolute" for r in reasons):
        decision = ScreeningDecision.CONTRAINDICATED
    elif reasons:
        decision = ScreeningDecision.PRECAUTIONS
    else:
        decision = ScreeningDecision.CLEAR
    return ScreeningResult(decision, tuple(reasons))


def _check_detail(question: Question, yes: bool, screen: ScreeningAnswers) -> None:
    if question.detail == "lymphoedema_areas":
        given: Sequence[object] = screen.lymphoedema_areas
        field = "lymphoedema_areas"
    elif question.detail == "local_exclusions":
        given = screen.local_exclusions
        field = "local_exclusions"
    elif question.detail == "reason":
        if yes and not screen.notes.get(question.id, "").strip():
            raise InvalidInput(
                f"a yes to '{question.text}' needs a written reason",
                field=f"notes.{question.id}",
            )
        return
    else:
        return
    if yes and not given:
        raise InvalidInput(f"a yes to '{question.text}' needs the areas named", field=field)
    if given and not yes:
        raise InvalidInput(f"areas are named but '{question.text}' is answered no", field=field)


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


def current_screening(
    screenings: Sequence[Screening], at: datetime, valid_days: int
) -> Screening | None:
    """The screening that applies at `at`: the latest made on or before that day, if it
    has not expired. A newer screening (answers changed) always supersedes an older one."""
    day = at.date()
    made = [s for s in screenings if s.screened_at.date() <= day]
    if not made:
        return None
    latest = max(made, key=lambda s: (s.screened_at, s.created_at))
    return latest if day < expires_on(latest, valid_days) else None
