"""Time to meaningful improvement: Kaplan–Meier curves of days from the baseline NPRS to
the first NPRS that reaches the responder threshold (at least 2 points and 30 %), by
condition and by what needling was combined with. Episodes whose NPRS never reached it
are censored at their last NPRS (the episode ended, or is still under way, without
improvement). Episodes with a baseline only are left out and counted. Medians with 95 %
intervals (lifelines); log-rank tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from needlepoint.analytics.responders import Workspace, thresholds_of


@dataclass(frozen=True, slots=True)
class CurvePoint:
    day: float
    improved: float  # cumulative share improved, 1 - S(t)
    at_risk: int


@dataclass(frozen=True, slots=True)
class RecoveryCurve:
    group: str
    episodes: int
    events: int
    censored: int
    median_days: float | None  # None: not reached (fewer than half improved)
    median_ci_low: float | None
    median_ci_high: float | None
    points: list[CurvePoint]


@dataclass(frozen=True, slots=True)
class LogRank:
    statistic: float | None
    degrees_of_freedom: int
    p_value: float | None


@dataclass(frozen=True, slots=True)
class RecoveryComparison:
    by: str
    curves: list[RecoveryCurve]
    logrank: LogRank


@dataclass(frozen=True, slots=True)
class Recovery:
    episodes: int
    baseline_only: int
    overall: RecoveryCurve
    comparisons: list[RecoveryComparison]
    definition: str


def _finite(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def kaplan_meier(
    group: str,
    durations: Sequence[float],
    events: Sequence[bool],
    counts: Sequence[int] | None = None,
) -> RecoveryCurve:
    """A Kaplan–Meier curve (as the cumulative share improved) with its median and the
    median's 95 % interval. `counts` gives how many episodes share each (duration, event)
    row, so that a clinic's episodes can be passed as a few hundred distinct rows."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    d = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    w = np.ones(len(d), dtype=int) if counts is None else np.asarray(counts, dtype=int)
    if len(d) == 0:
        return RecoveryCurve(group, 0, 0, 0, None, None, None, [])
    kmf = KaplanMeierFitter().fit(d, e, label=group, weights=w)
    ci = median_survival_times(kmf.confidence_interval_)
    surv = kmf.survival_function_.iloc[:, 0]
    at_risk = kmf.event_table["at_risk"].reindex(surv.index).fillna(0).to_numpy()
    points = [
        CurvePoint(float(t), float(1 - s), int(n))
        for t, s, n in zip(surv.index.to_numpy(), surv.to_numpy(), at_risk, strict=True)
    ]
    return RecoveryCurve(
        group=group,
        episodes=int(w.sum()),
        events=int(w[e].sum()),
        censored=int(w[~e].sum()),
        median_days=_finite(kmf.median_survival_time_),
        median_ci_low=_finite(ci.iloc[0, 0]),
        median_ci_high=_finite(ci.iloc[0, 1]),
        points=points,
    )


def logrank(
    durations: Sequence[float],
    groups: Sequence[str],
    events: Sequence[bool],
    counts: Sequence[int] | None = None,
) -> LogRank:
    """The log-rank test across groups (k - 1 degrees of freedom); `counts` as above."""
    from lifelines.statistics import multivariate_logrank_test

    k = len(set(groups))
    if k < 2:
        return LogRank(None, 0, None)
    result = multivariate_logrank_test(
        np.asarray(durations, dtype=float),
        np.asarray(groups),
        np.asarray(events, dtype=bool),
        weights=None if counts is None else np.asarray(counts, dtype=int),
    )
    return LogRank(_finite(result.test_statistic), k - 1, _finite(result.p_value))


def recovery(ws: Workspace) -> Recovery:
    """Curves overall, by condition and by co-intervention, with log-rank tests."""
    # One row per distinct (group, days, event) with its count: the curves and tests are
    # the same as over every episode, at a fraction of the cost.
    rows = ws.sql("""
SELECT condition, co_intervention,
       date_diff('day', nprs_first_at::DATE, coalesce(mcid_at, nprs_last_at)::DATE) AS days,
       mcid_at IS NOT NULL AS event, count(*) AS n
FROM episode_facts WHERE nprs_n >= 2 GROUP BY ALL ORDER BY ALL
""").fetchall()
    (baseline_only,) = ws.one("SELECT count(*) FROM episode_facts WHERE nprs_n = 1")
    days = [float(r[2]) for r in rows]
    events = [bool(r[3]) for r in rows]
    counts = [int(r[4]) for r in rows]

    def pick(values: list[Any], labels: list[str], g: str) -> list[Any]:
        return [v for v, lab in zip(values, labels, strict=True) if lab == g]

    comparisons = []
    for index, by in ((0, "condition"), (1, "co_intervention")):
        labels = [str(r[index]) for r in rows]
        curves = [
            kaplan_meier(g, pick(days, labels, g), pick(events, labels, g), pick(counts, labels, g))
            for g in sorted(set(labels))
        ]
        comparisons.append(RecoveryComparison(by, curves, logrank(days, labels, events, counts)))
    (nprs,) = thresholds_of("faster_recovery")  # the NPRS responder threshold
    return Recovery(
        episodes=sum(counts),
        baseline_only=int(baseline_only),
        overall=kaplan_meier("all episodes", days, events, counts),
        comparisons=comparisons,
        definition=(
            "days from the baseline NPRS to the first NPRS reaching the responder threshold "
            f"({nprs.threshold}; source: {nprs.source}); censored at the last NPRS when "
            "it was never reached"
        ),
    )
