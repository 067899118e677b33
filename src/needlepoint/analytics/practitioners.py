"""Risk-adjusted practitioner comparison: a linear mixed model per outcome.

    change ~ baseline + age + sex + chronic + condition + exercise + manual therapy
             + (1 | practitioner)

fitted by REML (statsmodels MixedLM) on episodes that are closed (a full course) and have
a baseline and a follow-up. NPRS change is in points (positive = better); function change
is the improvement in percent of the instrument's range (NDI, ODI, QuickDASH, LEFS, PSFS),
so that instruments of different conditions share one scale.

Each practitioner's effect is the conditional mean (BLUP) of their random intercept,
shrunk towards the clinic average, with a 95 % interval from its conditional variance.
Effects are relative to the clinic's average practitioner. Practitioners with fewer than
`MIN_PATIENTS` analysed episodes are shown but not ranked, and so are practitioners whose
95 % interval overlaps another's (`distinguishable_ranks`: "not distinguishable"). A fit
that does not converge is reported as such, with no effects."""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from needlepoint.analytics.responders import Z95, Workspace

MIN_PATIENTS = 20
OPTIMISERS = ("bfgs", "lbfgs", "powell")
Outcome = Literal["nprs", "function"]
OUTCOME_LABELS = {
    "nprs": "NPRS change (points, positive = better)",
    "function": "function change (% of the instrument's range, positive = better)",
}
FIXED_EFFECTS = (
    "baseline (centred) + age (centred) + sex + chronic + condition + exercise + manual therapy"
)
ADJUSTED_FOR = (
    "baseline score, age, sex, chronic (more than 3 months), condition, exercise and manual therapy"
)


@dataclass(frozen=True, slots=True)
class PractitionerEffect:
    practitioner_id: str
    practitioner: str
    patients: int
    effect: float | None  # shrunken random intercept (BLUP), outcome units
    ci_low: float | None  # 95 % interval from the BLUP's prediction error variance
    ci_high: float | None
    observed_mean: float  # raw mean change of their patients
    adjusted_mean: float | None  # mean of (observed - expected from the fixed effects)
    rank: int | None  # 1 = best; None: too few patients, an overlapping interval, no model
    ranked: bool  # given a rank (see `distinguishable_ranks`)
    note: str


@dataclass(frozen=True, slots=True)
class FunnelPoint:
    practitioner: str
    patients: int
    adjusted_mean: float
    inside_95: bool
    inside_998: bool


@dataclass(frozen=True, slots=True)
class PractitionerModel:
    outcome: str
    label: str
    formula: str
    episodes: int
    practitioners: int
    converged: bool
    status: str  # "converged" or why the model failed
    between_practitioner_sd: float | None
    residual_sd: float | None
    fixed_effects: dict[str, float]
    min_patients: int
    effects: list[PractitionerEffect]
    funnel: list[FunnelPoint] = field(default_factory=list)
    # The model in clinical words (what the page shows; `formula` is the statistical one).
    described: str = ""


_TERMS = (
    ("baseline_c", "baseline_c"),
    ("age_c", "age_c"),
    ("C(sex)", "sex"),
    ("chronic", "chronic"),
    ("C(condition)", "condition"),
    ("exercise", "exercise"),
    ("manual_therapy", "manual_therapy"),
)
_COLUMNS = """
SELECT episode_id, practitioner_id, practitioner, condition, sex, chronic, age,
       exercise, manual_therapy, {y} AS y, {x} AS baseline
FROM episode_facts
WHERE status = 'closed' AND {y} IS NOT NULL AND {x} IS NOT NULL AND {n} >= 2
"""


def model_frame(ws: Workspace, outcome: Outcome) -> Any:
    """The analysed episodes as a pandas frame (statsmodels' input)."""
    if outcome == "nprs":
        sql = _COLUMNS.format(y="nprs_baseline - nprs_latest", x="nprs_baseline", n="nprs_n")
    else:
        sql = _COLUMNS.format(y="function_change_pct", x="function_baseline_pct", n="function_n")
    frame = ws.sql(sql + " ORDER BY episode_id").df()
    for col in ("chronic", "exercise", "manual_therapy"):
        frame[col] = frame[col].astype(float)
    frame["baseline_c"] = frame["baseline"] - frame["baseline"].mean()
    frame["age_c"] = frame["age"] - frame["age"].mean()
    return frame


def fit(ws: Workspace, outcome: Outcome, *, min_patients: int = MIN_PATIENTS) -> PractitionerModel:
    """Fit the mixed model for `outcome` and describe each practitioner."""
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    frame = model_frame(ws, outcome)
    base: dict[str, Any] = {
        "outcome": outcome,
        "label": OUTCOME_LABELS[outcome],
        "formula": f"{OUTCOME_LABELS[outcome]} ~ {FIXED_EFFECTS} + (1 | practitioner)",
        "described": f"{OUTCOME_LABELS[outcome][:1].upper()}{OUTCOME_LABELS[outcome][1:]}, "
        f"adjusted for {ADJUSTED_FOR}, with an effect of its own for each practitioner",
        "episodes": len(frame),
        "practitioners": int(frame["practitioner_id"].nunique()) if len(frame) else 0,
        "min_patients": min_patients,
    }
    counts = frame.groupby("practitioner_id").size() if len(frame) else None

    def failed(why: str) -> PractitionerModel:
        return PractitionerModel(
            **base,
            converged=False,
            status=why,
            between_practitioner_sd=None,
            residual_sd=None,
            fixed_effects={},
            effects=_unranked(frame, why),
        )

    if counts is None or len(counts) < 3 or len(frame) < 30:
        return failed("too few episodes or practitioners to fit the model")
    terms = [term for term, col in _TERMS if frame[col].nunique() > 1]
    formula = "y ~ " + " + ".join(terms)
    model = smf.mixedlm(formula, frame, groups=frame["practitioner_id"])
    # statsmodels' default optimiser can stop at the variance boundary (0) from its start
    # values: try several and keep the converged fit with the highest REML likelihood.
    fits = []
    errors = []
    for method in OPTIMISERS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = model.fit(reml=True, method=method)
            except (ValueError, np.linalg.LinAlgError) as err:
                errors.append(f"{method}: {err}")
                continue
        if result.converged and np.isfinite(result.llf):
            boundary = any(issubclass(w.category, ConvergenceWarning) for w in caught)
            fits.append((float(result.llf), method, result, boundary))
    if not fits:
        why = "; ".join(errors) or "no optimiser converged"
        return failed(f"the model did not converge ({why}): no practitioner effects shown")
    _, method, result, boundary = max(fits, key=lambda f: f[0])
    group_var = float(result.cov_re.iloc[0, 0])
    if group_var <= 1e-8:
        return failed(
            "the model converged with no between-practitioner variance (at its boundary, 0): "
            "the data show no practitioner differences beyond chance; none are ranked"
        )
    status = f"converged (REML, {method})" + (
        "; the optimiser warned about the variance boundary" if boundary else ""
    )
    fe_pred = np.asarray(model.predict(result.fe_params))
    frame = frame.assign(expected=fe_pred, residual=frame["y"] - fe_pred)
    per = frame.groupby(["practitioner_id", "practitioner"], sort=False).agg(
        patients=("y", "size"), observed=("y", "mean"), adjusted=("residual", "mean")
    )
    re = result.random_effects
    re_cov = result.random_effects_cov
    scale = float(result.scale)
    # Prediction error variance of each BLUP (Henderson): the conditional variance given
    # the fixed effects, plus what the fixed effects' own uncertainty adds through the
    # group's mean covariates, shrunk like the BLUP itself.
    k_fe = len(result.fe_params)
    cov_fe = np.asarray(result.cov_params())[:k_fe, :k_fe]
    exog = np.asarray(model.exog)
    groups = np.asarray(frame["practitioner_id"])
    effects = []
    for (pid, name), row in per.iterrows():
        blup = float(np.asarray(re[pid])[0])
        var = float(np.asarray(re_cov[pid])[0, 0])
        shrink = 1 - var / group_var
        xbar = exog[groups == pid].mean(axis=0)
        var += shrink * shrink * float(xbar @ cov_fe @ xbar)
        sd = math.sqrt(max(var, 0.0))
        n = int(row["patients"])
        effects.append(
            PractitionerEffect(
                practitioner_id=str(pid),
                practitioner=str(name),
                patients=n,
                effect=blup,
                ci_low=blup - Z95 * sd,
                ci_high=blup + Z95 * sd,
                observed_mean=float(row["observed"]),
                adjusted_mean=float(row["adjusted"]),
                rank=None,
                ranked=n >= min_patients,
                note="" if n >= min_patients else f"fewer than {min_patients} patients: not ranked",
            )
        )
    effects = distinguishable_ranks(effects)
    sigma = math.sqrt(scale)
    funnel = [
        FunnelPoint(
            practitioner=e.practitioner,
            patients=e.patients,
            adjusted_mean=e.adjusted_mean or 0.0,
            inside_95=abs(e.adjusted_mean or 0.0) <= Z95 * sigma / math.sqrt(e.patients),
            inside_998=abs(e.adjusted_mean or 0.0) <= 3.09 * sigma / math.sqrt(e.patients),
        )
        for e in effects
    ]
    return PractitionerModel(
        **base,
        converged=True,
        status=status,
        between_practitioner_sd=math.sqrt(max(group_var, 0.0)),
        residual_sd=sigma,
        fixed_effects={str(k): float(v) for k, v in result.fe_params.items()},
        effects=effects,
        funnel=funnel,
    )


NOT_DISTINGUISHABLE = "not distinguishable from {n} other{s} (95 % intervals overlap): not ranked"


def _overlap(a: PractitionerEffect, b: PractitionerEffect) -> bool:
    lo_a, hi_a, lo_b, hi_b = a.ci_low, a.ci_high, b.ci_low, b.ci_high
    if lo_a is None or hi_a is None or lo_b is None or hi_b is None:
        return False
    return lo_a <= hi_b and lo_b <= hi_a


def distinguishable_ranks(effects: list[PractitionerEffect]) -> list[PractitionerEffect]:
    """Rank only what the data can tell apart.

    Among the practitioners eligible for ranking (enough patients, an interval), one is
    ranked only when their 95 % interval overlaps nobody else's: two practitioners whose
    intervals overlap are not shown as better and worse. The others are shown unranked,
    "not distinguishable", with how many they overlap. Ranks run 1, 2, … by effect
    (best first) over the ranked ones; the list comes back ranked first, then by effect."""
    eligible = [e for e in effects if e.ranked and e.ci_low is not None and e.ci_high is not None]
    overlaps = {
        e.practitioner_id: sum(
            1 for o in eligible if o.practitioner_id != e.practitioner_id and _overlap(e, o)
        )
        for e in eligible
    }
    ranked = sorted(
        (e for e in eligible if overlaps[e.practitioner_id] == 0), key=lambda e: -(e.effect or 0.0)
    )
    order = {e.practitioner_id: i + 1 for i, e in enumerate(ranked)}
    out = []
    for e in effects:
        rank = order.get(e.practitioner_id)
        ranked_now = rank is not None
        note = e.note
        n = overlaps.get(e.practitioner_id, 0)
        if e.practitioner_id in overlaps and n:
            note = NOT_DISTINGUISHABLE.format(n=n, s="" if n == 1 else "s")
        out.append(dataclasses.replace(e, rank=rank, ranked=ranked_now, note=note))
    return sorted(out, key=lambda e: (not e.ranked, -(e.effect or 0.0)))


def _unranked(frame: Any, why: str) -> list[PractitionerEffect]:
    if not len(frame):
        return []
    per = frame.groupby(["practitioner_id", "practitioner"], sort=True)["y"].agg(["size", "mean"])
    return [
        PractitionerEffect(
            practitioner_id=str(pid),
            practitioner=str(name),
            patients=int(row["size"]),
            effect=None,
            ci_low=None,
            ci_high=None,
            observed_mean=float(row["mean"]),
            adjusted_mean=None,
            rank=None,
            ranked=False,
            note=why,
        )
        for (pid, name), row in per.iterrows()
    ]
