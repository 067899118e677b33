"""Completion rates of patient-reported questionnaires (issue 16): per questionnaire, per
time point (intake, during care, discharge, 6 weeks and 3 months after discharge) and per
clinician, each as n completed / n asked with a 95 % Wilson interval
(`analytics.responders.wilson`), and the published figures beside them
(`data/completion_benchmarks.yaml`, each with its source and whether it was seen in it).

Only a submitted response counts as completed (`queries.questionnaire_completion`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from needlepoint.analytics.responders import wilson
from needlepoint.domain.enums import TimePoint
from needlepoint.domain.instruments import library
from needlepoint.queries.questionnaire_completion import AskedQuestionnaire, asked_questionnaires
from needlepoint.queries.reader import Reader

NOT_VERIFIED = "figure from the issue, source not verified"
CONTEXT_NOTE = (
    "The published figures come from orthopaedic and surgical services, each counted its own "
    "way; they are context beside the clinic's own rates, not a like-for-like comparison."
)
SIX_WEEKS_DAYS = 42
THREE_MONTHS_DAYS = 91

TIME_POINT_LABELS = {
    TimePoint.INTAKE: "Intake",
    TimePoint.DURING_CARE: "During care",
    TimePoint.DISCHARGE: "Discharge",
}


class Benchmark(BaseModel):
    """One published figure with its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    label: str
    figure: str
    low: float
    high: float
    source: str
    verified: Literal[True, False, "partial"]
    added: bool = False
    """True for a figure that adds to a rate (percentage points), not a rate itself."""

    @property
    def checked(self) -> str:
        """How well the figure was checked, in words."""
        if self.verified is True:
            return "seen in the source"
        if self.verified == "partial":
            return "partly: part of the figure was seen in the sources named"
        return NOT_VERIFIED


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    figures: list[Benchmark]


@cache
def benchmarks() -> list[Benchmark]:
    """The published figures, in the data file's order."""
    text = resources.files("needlepoint.analytics").joinpath("data", "completion_benchmarks.yaml")
    return list(_File.model_validate(yaml.safe_load(text.read_text("utf-8"))).figures)


@dataclass(frozen=True, slots=True)
class Rate:
    """One group's completion: n completed of n asked, the share and its 95 % interval
    (None without any questionnaire asked)."""

    key: str
    label: str
    completed: int
    asked: int
    share: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "label": self.label,
            "completed": self.completed,
            "asked": self.asked,
            "share": self.share,
            "low": self.low,
            "high": self.high,
        }


def rate(key: str, label: str, completed: int, asked: int) -> Rate:
    """A group's rate with its Wilson interval."""
    if not 0 <= completed <= asked:
        raise ValueError("completed must be between 0 and asked")
    low, high = wilson(completed, asked)
    if low is None or high is None:
        return Rate(key, label, completed, asked, None, None, None)
    share = completed / asked
    # The interval holds the share itself (floating point leaves 100 % at 0.999…).
    return Rate(key, label, completed, asked, share, min(low, share), max(high, share))


def time_point_of(row: AskedQuestionnaire) -> tuple[str, str]:
    """The row's time point as a key and words: a follow-up is named by its distance from
    discharge (6 weeks, 3 months, or its number of days)."""
    if row.time_point is not TimePoint.FOLLOW_UP:
        return str(row.time_point), TIME_POINT_LABELS[row.time_point]
    days = (row.due_on - row.discharged_on).days if row.discharged_on else None
    if days == SIX_WEEKS_DAYS:
        return "follow_up_6_weeks", "6 weeks after discharge"
    if days == THREE_MONTHS_DAYS:
        return "follow_up_3_months", "3 months after discharge"
    if days is None:
        return "follow_up", "After discharge"
    return f"follow_up_{days}_days", f"{days} days after discharge"


_ORDER = {
    "intake": 0,
    "during_care": 1,
    "discharge": 2,
    "follow_up_6_weeks": 3,
    "follow_up_3_months": 4,
}


def _group(
    rows: Iterable[AskedQuestionnaire],
    key: Callable[[AskedQuestionnaire], tuple[str, str]],
) -> list[Rate]:
    asked: dict[tuple[str, str], int] = defaultdict(int)
    done: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        k = key(row)
        asked[k] += 1
        done[k] += row.submitted
    return [rate(k, label, done[(k, label)], asked[(k, label)]) for k, label in asked]


@dataclass(frozen=True, slots=True)
class Completion:
    """The clinic's completion rates and the published figures beside them."""

    overall: Rate
    by_questionnaire: list[Rate]
    by_time_point: list[Rate]
    by_clinician: list[Rate]
    benchmarks: list[Benchmark]
    as_of: date

    def as_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "counted": "submitted responses of questionnaires due on or before as_of",
            "overall": self.overall.as_dict(),
            "by_questionnaire": [r.as_dict() for r in self.by_questionnaire],
            "by_time_point": [r.as_dict() for r in self.by_time_point],
            "by_clinician": [r.as_dict() for r in self.by_clinician],
            "published": [
                {
                    "label": b.label,
                    "figure": b.figure,
                    "low": b.low,
                    "high": b.high,
                    "added_percentage_points": b.added,
                    "source": b.source,
                    "checked": b.checked,
                }
                for b in self.benchmarks
            ],
            "note": CONTEXT_NOTE,
        }


def summarise(rows: list[AskedQuestionnaire], as_of: date) -> Completion:
    """Group the asked questionnaires three ways (pure)."""
    lib = library()

    def instrument(r: AskedQuestionnaire) -> tuple[str, str]:
        found = lib.get(r.instrument_id)
        return r.instrument_id, found.name if found is not None else r.instrument_id

    def clinician(r: AskedQuestionnaire) -> tuple[str, str]:
        return str(r.clinician_id), r.clinician_name

    by_time = sorted(_group(rows, time_point_of), key=lambda x: (_ORDER.get(x.key, 9), x.key))
    return Completion(
        overall=rate("all", "All questionnaires", sum(r.submitted for r in rows), len(rows)),
        by_questionnaire=sorted(_group(rows, instrument), key=lambda x: x.label),
        by_time_point=by_time,
        by_clinician=sorted(_group(rows, clinician), key=lambda x: x.label),
        benchmarks=benchmarks(),
        as_of=as_of,
    )


def completion(reader: Reader, today: date) -> Completion:
    """The clinic's completion rates as of `today` (the clinic's local date)."""
    return summarise(asked_questionnaires(reader, today), today)
