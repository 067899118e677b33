"""A patient's own progress in plain words (issue 16), for the patient's pages: for each
questionnaire, the first and the latest score, the change, and whether the change reached
the instrument's governing threshold (its responder threshold, the same the clinician's
pages judge by, with its source), or "not measured" where nothing was
measured, or "no published threshold" where the instrument has none. Pure and typed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from needlepoint.domain.instruments import NO_THRESHOLD, Instrument, Threshold
from needlepoint.domain.responders import meaningful_threshold, reaches

NOT_MEASURED = "not measured"


@dataclass(frozen=True, slots=True)
class Score:
    """One score of one questionnaire, when it was taken and whether the patient sent it."""

    taken_at: datetime
    score: float
    patient_reported: bool
    words: str = ""
    """What the answer was in words, where the number alone says little (return to work
    or sport: "work: returned on …"; analgesic use: the days of each drug)."""
    after_discharge: bool = False
    """Given after the episode's discharge (a follow-up questionnaire)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """One questionnaire's story in plain words."""

    instrument_id: str
    name: str
    unit: str
    scores: list[Score]
    summary: str
    threshold: str
    """The MCID in words with its source, or NO_THRESHOLD."""


def reached(threshold: Threshold, baseline: float, change_towards_better: float) -> bool:
    """Whether an improvement of `change_towards_better` (score units, positive = better)
    from `baseline` reaches the threshold, judged exactly as the clinician's pages judge
    it (`responders.reaches`)."""
    return reaches(threshold, baseline, change_towards_better)


def _number(x: float) -> str:
    return f"{x:g}"


def with_unit(x: float, unit: str) -> str:
    """A score as written on screen: `6/10`, `40 %`, `12`."""
    if unit.startswith("/"):
        return f"{_number(x)}{unit}"
    return f"{_number(x)} {unit}".strip()


WHAT_IT_MEANS = {
    "mcid": "the smallest change patients usually notice",
    "mdc": "the smallest change that is more than measurement error",
}


def threshold_words(instrument: Instrument) -> str:
    """The instrument's governing threshold (its responder threshold: the MCID, or the
    MDC where the MCID lies inside measurement error), the one the clinician's pages
    judge by, as the patient reads it, with its source."""
    t = meaningful_threshold(instrument)
    if t is None:
        return NO_THRESHOLD
    parts = []
    if t.value is not None:
        unit = instrument.unit.strip()
        points = "percentage points" if unit == "%" else "points"
        points = unit if unit and not unit.startswith(("/", "%")) else points
        parts.append(f"{_number(t.value)} {points}")
    if t.percent is not None:
        parts.append(f"{_number(t.percent)} % of the first score")
    joined = (" and " if t.combine == "both" else " or ").join(parts)
    # a percent score says what it is in points ("10 of 50 points"), as its note begins
    in_points = re.match(r"[\d.]+ of \d+ points", t.note or "")
    note = f" ({in_points[0]})" if in_points and instrument.unit == "%" else ""
    meaning = WHAT_IT_MEANS.get(t.basis or "mcid", WHAT_IT_MEANS["mcid"])
    return f"A change of at least {joined}{note} is {meaning} (source: {t.source})."


def progress_of(instrument: Instrument, scores: Sequence[Score]) -> Progress:
    """One questionnaire's progress: "not measured" without a score; one score is a
    starting point; two or more compare the first and the latest."""
    ordered = sorted(scores, key=lambda s: s.taken_at)
    better = "lower" if instrument.higher_is == "worse" else "higher"
    unit = instrument.unit
    words = threshold_words(instrument)
    if not ordered:
        summary = NOT_MEASURED
    elif instrument.change == "event":
        summary = f"Your latest answer: {ordered[-1].words or with_unit(ordered[-1].score, unit)}."
    elif len(ordered) == 1:
        summary = (
            f"Measured once: {with_unit(ordered[0].score, unit)} ({better} is better). "
            "Your next answers will show how it changes."
        )
    else:
        first, last = ordered[0].score, ordered[-1].score
        towards_better = first - last if instrument.higher_is == "worse" else last - first
        if towards_better > 0:
            moved = "better"
        elif towards_better < 0:
            moved = "worse"
        else:
            moved = "the same"
        summary = (
            f"From {with_unit(first, unit)} to {with_unit(last, unit)} ({better} is better): "
            f"{moved} than at the start."
        )
        threshold = meaningful_threshold(instrument)
        if threshold is not None and towards_better > 0:
            if reached(threshold, first, towards_better):
                summary += " The change reaches the threshold given below."
            else:
                summary += " The change is smaller than the threshold given below."
    return Progress(instrument.id, instrument.name, instrument.unit, ordered, summary, words)


def progress(instruments: Iterable[Instrument], scores: dict[str, list[Score]]) -> list[Progress]:
    """Each instrument's progress, in the given order."""
    return [progress_of(i, scores.get(i.id, [])) for i in instruments]
