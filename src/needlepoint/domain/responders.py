"""Responder classification: did a patient's score change by a clinically meaningful
amount, in the instrument's own direction?

Thresholds come only from the instrument library (REFERENCE §3). A change counts when it
reaches the instrument's `responder` threshold: the MCID, or the MDC where the MCID lies
inside measurement error (NDI: Young 2009 advise 10 of 50 points; QuickDASH: the smallest
detectable change 17.1 exceeds the MCID 14). A threshold may be absolute (score units), a
percent of the baseline, or both; `combine: both` needs both (NPRS, VAS, ODI: at least the
absolute MCID AND 30 % of the baseline, so NPRS 3 → 2 is never a responder), `either`
needs one. A change exactly at the threshold reaches it. Where the library has no threshold
the answer is None and the status says "no published threshold".

This is the one definition of "meaningful change": the benefit summary, the progress page
and the clinic's analytics (whose SQL is generated from the same data by
`analytics.responders.reach_sql`, tested to agree with `reaches`) all use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from needlepoint.domain.instruments import Instrument, Threshold

# Scores are floats (e.g. 27/45*100); a change equal to the threshold on paper must reach it.
_EPS = 1e-9

Status = Literal["responder", "worsened", "not a responder", "no published threshold"]
Direction = Literal["better", "worse", "unchanged"]


@dataclass(frozen=True, slots=True)
class Responder:
    """Baseline → latest for one measure, classified against its thresholds."""

    baseline: float
    latest: float
    change: float  # latest - baseline, in score units
    percent_change: float | None  # change / |baseline| x 100; None when the baseline is 0
    direction: Direction  # whether the change is for the better, in the instrument's terms
    mcid_reached: bool | None  # improvement reached the published MCID; None: none published
    mdc_reached: bool | None  # improvement reached the published MDC; None: none published
    worsened: bool | None  # worsened by at least the responder threshold; None: no threshold
    status: Status
    threshold_source: str | None


def improvement(instrument: Instrument, baseline: float, latest: float) -> float:
    """The change in the better direction: positive when the patient is better."""
    change = latest - baseline
    return -change if instrument.higher_is == "worse" else change


def reaches(threshold: Threshold, baseline: float, amount: float) -> bool:
    """Whether a change of `amount` (positive, in the direction being tested) from
    `baseline` reaches the threshold: its absolute amount and/or its percent of the
    baseline, either or both as the threshold says. With `both`, any change from a
    baseline of 0 is taken as reaching the percent (it is an unbounded relative change)."""
    if amount <= 0:
        return False
    absolute = threshold.value is not None and amount >= threshold.value - _EPS
    if threshold.combine == "both":
        relative = (
            threshold.percent is None
            or baseline == 0
            or amount / abs(baseline) * 100 >= threshold.percent - _EPS
        )
        return (threshold.value is None or absolute) and relative
    if absolute:
        return True
    if threshold.percent is not None and baseline != 0:
        return amount / abs(baseline) * 100 >= threshold.percent - _EPS
    return False


def required_change(threshold: Threshold, baseline: float) -> float | None:
    """The smallest change from `baseline` that reaches the threshold, in score units
    (None when it cannot be said: a percent-only threshold at a baseline of 0)."""
    relative = (
        threshold.percent / 100 * abs(baseline)
        if threshold.percent is not None and baseline != 0
        else None
    )
    amounts = [a for a in (threshold.value, relative) if a is not None]
    if not amounts:
        return None
    return max(amounts) if threshold.combine == "both" else min(amounts)


def _applicable(threshold: Threshold | None, context: Mapping[str, Any] | None) -> Threshold | None:
    if threshold is None or not threshold.applies(context):
        return None
    if threshold.value is None and threshold.percent is None:
        return None
    return threshold


def meaningful_threshold(
    instrument: Instrument, context: Mapping[str, Any] | None = None
) -> Threshold | None:
    """The threshold a change must reach to count (the instrument's responder threshold:
    the MCID, or the MDC where the MCID lies inside it), or None where none is published
    for this context."""
    return _applicable(instrument.responder, context)


def classify(
    instrument: Instrument,
    baseline: float,
    latest: float,
    context: Mapping[str, Any] | None = None,
) -> Responder:
    """Classify the change from `baseline` to `latest` on `instrument`."""
    change = latest - baseline
    better = improvement(instrument, baseline, latest)
    mcid = _applicable(instrument.mcid, context)
    mdc = _applicable(instrument.mdc, context)
    meaningful = meaningful_threshold(instrument, context)
    mcid_reached = reaches(mcid, baseline, better) if mcid else None
    mdc_reached = reaches(mdc, baseline, better) if mdc else None
    worsened = reaches(meaningful, baseline, -better) if meaningful else None
    status: Status
    if meaningful is None:
        status = "no published threshold"
    elif reaches(meaningful, baseline, better):
        status = "responder"
    elif worsened:
        status = "worsened"
    else:
        status = "not a responder"
    return Responder(
        baseline=baseline,
        latest=latest,
        change=change,
        percent_change=None if baseline == 0 else change / abs(baseline) * 100,
        direction="unchanged" if abs(change) < _EPS else ("better" if better > 0 else "worse"),
        mcid_reached=mcid_reached,
        mdc_reached=mdc_reached,
        worsened=worsened,
        status=status,
        threshold_source=meaningful.source if meaningful else None,
    )


def first_meaningful_improvement(
    instrument: Instrument,
    scores: Sequence[float],
    context: Mapping[str, Any] | None = None,
) -> int | None:
    """Index of the first score after the baseline (`scores[0]`) whose improvement reaches
    the meaningful threshold; None when none does or there is no threshold."""
    threshold = meaningful_threshold(instrument, context)
    if threshold is None or len(scores) < 2:
        return None
    base = scores[0]
    for i, value in enumerate(scores[1:], start=1):
        if reaches(threshold, base, improvement(instrument, base, value)):
            return i
    return None
