"""Prognosis for one patient: the probability of reaching the NPRS MCID by the sixth
session, from a logistic model fitted on the clinic's own episodes.

    logit P(MCID by session 6) ~ baseline NPRS + age + sex + chronic + condition
                                 + exercise + manual therapy

Episodes count when their status by session 6 is known: the MCID reached by then, or a
sixth session recorded, or the episode closed (a course that ended earlier without the
MCID counts as not reached). The interval is the 95 % interval of the linear predictor
(delta method), transformed back. Validation: k-fold cross-validation gives the AUC, the
calibration slope and intercept (logistic regression of the outcome on the out-of-fold
logit) and the Brier score, and a calibration table by tenths of predicted risk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from needlepoint.analytics.responders import PROGNOSIS_SESSION, Workspace

CAVEAT = (
    "An estimate from this clinic's past patients, not a promise: it says how often "
    "patients like this one reached a meaningful pain improvement (at least 2 points and "
    f"30 % on the NPRS) by session {PROGNOSIS_SESSION}. It ignores everything the model does not "
    "know about the patient and supports, never replaces, clinical judgement."
)
FOLDS = 5
MIN_EVENTS_PER_PARAMETER = 10
EVENTS_PER_PARAMETER_SOURCE = (
    "Peduzzi P et al. 1996, J Clin Epidemiol 49:1373-1379 (at least 10 events per "
    "variable in logistic regression)"
)
MIN_CALIBRATION_SLOPE = 0.9
CALIBRATION_SLOPE_SOURCE = (
    "Riley RD et al. 2020, BMJ 368:m441 (a prediction model's shrinkage, its expected "
    "calibration slope, should be at least 0.9: at most 10 % over-fitting)"
)
CALIBRATION_SLOPE_VERIFIED = False  # cited from memory: not checked against the paper
CHANCE_AUC = 0.5  # an AUC of 0.5 is a coin toss (the definition of the ROC curve's area)
_TERMS = (
    ("baseline", "baseline"),
    ("age", "age"),
    ("C(sex)", "sex"),
    ("chronic", "chronic"),
    ("C(condition)", "condition"),
    ("exercise", "exercise"),
    ("manual_therapy", "manual_therapy"),
)
TERM_WORDS = {
    "baseline": "baseline NPRS",
    "age": "age",
    "C(sex)": "sex",
    "chronic": "chronic (more than 3 months)",
    "C(condition)": "condition",
    "exercise": "exercise",
    "manual_therapy": "manual therapy",
}


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    predicted: float
    observed: float
    episodes: int


@dataclass(frozen=True, slots=True)
class Validation:
    folds: int
    episodes: int
    events: int
    auc: float | None
    calibration_slope: float | None
    calibration_intercept: float | None
    brier: float | None
    bins: list[CalibrationBin]


@dataclass(frozen=True, slots=True)
class PrognosisModel:
    episodes: int
    events: int
    formula: str
    status: str
    coefficients: dict[str, float]
    validation: Validation | None
    # The model in clinical words (what the page shows; `formula` is the statistical one).
    described: str = ""


@dataclass(frozen=True, slots=True)
class Reliability:
    """Whether the model may be shown for one patient, judged on its own validation.

    A one-patient estimate is shown only when all hold: the model was fitted with at
    least `MIN_EVENTS_PER_PARAMETER` of the rarer outcome per parameter (the model's own
    criterion against over-fitting, `EVENTS_PER_PARAMETER_SOURCE`); its cross-validated
    calibration slope is at least `MIN_CALIBRATION_SLOPE` (`CALIBRATION_SLOPE_SOURCE`;
    below it the estimates are too extreme); and its cross-validated AUC is above chance
    (0.5). `reasons` says which failed, in clinical words."""

    reliable: bool
    reasons: list[str]
    criterion: str
    sources: list[str]


def reliability(model: PrognosisModel, events_per_parameter: float | None) -> Reliability:
    """Judge the fitted model by its own validation figures (see `Reliability`)."""
    reasons: list[str] = []
    v = model.validation
    if v is None or events_per_parameter is None:
        reasons.append(f"the model could not be fitted and validated ({model.status})")
    else:
        if events_per_parameter < MIN_EVENTS_PER_PARAMETER:
            reasons.append(
                f"only {events_per_parameter:.1f} of the rarer outcome per parameter "
                f"(at least {MIN_EVENTS_PER_PARAMETER} needed)"
            )
        if v.calibration_slope is None or v.calibration_slope < MIN_CALIBRATION_SLOPE:
            slope = "unknown" if v.calibration_slope is None else f"{v.calibration_slope:.2f}"
            reasons.append(
                f"its cross-validated calibration slope is {slope} (at least "
                f"{MIN_CALIBRATION_SLOPE:g} needed): its estimates are too extreme"
            )
        if v.auc is None or v.auc <= CHANCE_AUC:
            auc_text = "unknown" if v.auc is None else f"{v.auc:.2f}"
            reasons.append(
                f"its cross-validated AUC is {auc_text}: it does not tell patients apart "
                "better than chance"
            )
    return Reliability(
        reliable=not reasons,
        reasons=reasons,
        criterion=(
            f"shown only with at least {MIN_EVENTS_PER_PARAMETER} of the rarer outcome per "
            f"parameter, a cross-validated calibration slope of at least "
            f"{MIN_CALIBRATION_SLOPE:g} and an AUC above {CHANCE_AUC:g}"
        ),
        sources=[
            EVENTS_PER_PARAMETER_SOURCE,
            CALIBRATION_SLOPE_SOURCE + ("" if CALIBRATION_SLOPE_VERIFIED else " (unverified)"),
        ],
    )


@dataclass(frozen=True, slots=True)
class Prediction:
    probability: float
    ci_low: float
    ci_high: float
    episodes: int
    caveat: str


class PatientIn:
    """A new patient's baseline characteristics."""

    def __init__(
        self,
        *,
        baseline_nprs: float,
        age: float,
        sex: str,
        chronic: bool,
        condition: str,
        exercise: bool,
        manual_therapy: bool,
    ) -> None:
        self.row = {
            "baseline": float(baseline_nprs),
            "age": float(age),
            "sex": sex,
            "chronic": float(chronic),
            "condition": condition,
            "exercise": float(exercise),
            "manual_therapy": float(manual_therapy),
        }


def describe_model(terms: list[str]) -> str:
    """The prognosis model in clinical words: what it estimates, from what."""
    outcome = (
        f"Chance of reaching the NPRS responder threshold by session {PROGNOSIS_SESSION} "
        "(logistic regression)"
    )
    if not terms:
        return f"{outcome}, from no patient characteristic (too little variation to use one)"
    return f"{outcome}, from: " + ", ".join(TERM_WORDS[t] for t in terms)


def model_frame(ws: Workspace) -> Any:
    """Episodes with a known status by session 6, as a pandas frame."""
    frame = ws.sql(f"""
SELECT episode_id, nprs_baseline AS baseline, age, sex, chronic, condition, exercise,
       manual_therapy, coalesce(mcid_ordinal <= {PROGNOSIS_SESSION}, false) AS y
FROM episode_facts
WHERE nprs_n >= 2 AND (mcid_ordinal <= {PROGNOSIS_SESSION}
  OR last_ordinal >= {PROGNOSIS_SESSION} OR status = 'closed')
ORDER BY episode_id
""").df()
    for col in ("chronic", "exercise", "manual_therapy", "y"):
        frame[col] = frame[col].astype(float)
    return frame


class Prognosis:
    """The fitted model (kept by the dashboard cache) and its validation."""

    def __init__(self, ws: Workspace, *, folds: int = FOLDS, seed: int = 0) -> None:
        self.frame = model_frame(ws)
        self.result: Any = None
        terms = [t for t, col in _TERMS if len(self.frame) and self.frame[col].nunique() > 1]
        self.formula = "y ~ " + (" + ".join(terms) if terms else "1")
        events = int(self.frame["y"].sum()) if len(self.frame) else 0
        self.events_per_parameter: float | None = None
        status = "fitted"
        coefficients: dict[str, float] = {}
        validation = None
        if len(self.frame) < 50 or events < 10 or len(self.frame) - events < 10:
            status = "too few episodes (or too few with and without the outcome) to fit"
        else:
            try:
                self.result = _fit(self.formula, self.frame)
                coefficients = {str(k): float(v) for k, v in self.result.params.items()}
                per_parameter = min(events, len(self.frame) - events) / max(
                    1, len(coefficients) - 1
                )
                self.events_per_parameter = per_parameter
                if per_parameter < MIN_EVENTS_PER_PARAMETER:
                    status = (
                        f"fitted, but with only {per_parameter:.1f} of the rarer outcome per "
                        f"parameter (fewer than {MIN_EVENTS_PER_PARAMETER}): expect "
                        "over-fitting; read the cross-validated calibration slope"
                    )
                validation = cross_validate(self.formula, self.frame, folds=folds, seed=seed)
            except (ValueError, np.linalg.LinAlgError) as err:
                status = f"the model could not be fitted: {err}"
                self.result = None
        self.model = PrognosisModel(
            episodes=len(self.frame),
            events=events,
            formula=self.formula.replace("y ~", f"MCID by session {PROGNOSIS_SESSION} ~"),
            described=describe_model(terms),
            status=status,
            coefficients=coefficients,
            validation=validation,
        )
        if validation is None:
            self.events_per_parameter = None
        self.reliability = reliability(self.model, self.events_per_parameter)

    def predict(self, patient: PatientIn) -> Prediction | None:
        """The probability for one patient with its 95 % interval (on the logit scale,
        transformed back); None without a model, when its validation says it is
        unreliable (`self.reliability`), or for a condition it has not seen."""
        if self.result is None or not self.reliability.reliable:
            return None
        import pandas as pd

        if patient.row["condition"] not in set(self.frame["condition"]):
            return None
        frame = self.result.get_prediction(pd.DataFrame([patient.row])).summary_frame(alpha=0.05)
        p, lo, hi = (float(frame[c].iloc[0]) for c in ("mean", "mean_ci_lower", "mean_ci_upper"))
        return Prediction(
            probability=p,
            ci_low=lo,
            ci_high=hi,
            episodes=len(self.frame),
            caveat=CAVEAT,
        )


def _fit(formula: str, frame: Any) -> Any:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    return smf.glm(formula, frame, family=sm.families.Binomial()).fit()


def auc(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float | None:
    """The area under the ROC curve (Mann–Whitney, ties counted half)."""
    from scipy.stats import rankdata

    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration(
    y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]
) -> tuple[float | None, float | None]:
    """Calibration slope and intercept: logistic regression of y on logit(p)."""
    import statsmodels.api as sm

    clipped = np.clip(p, 1e-9, 1 - 1e-9)
    logit = np.log(clipped / (1 - clipped))
    try:
        fit = sm.GLM(y, sm.add_constant(logit), family=sm.families.Binomial()).fit()
    except (ValueError, np.linalg.LinAlgError):
        return None, None
    return float(fit.params[1]), float(fit.params[0])


def cross_validate(formula: str, frame: Any, *, folds: int, seed: int) -> Validation:
    """Out-of-fold predictions for every episode, then AUC, calibration and Brier."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(frame)) % folds
    predicted = np.empty(len(frame))
    for k in range(folds):
        train, test = frame[fold != k], frame[fold == k]
        fitted = _fit(formula, train)
        predicted[fold == k] = np.asarray(fitted.predict(test))
    y = frame["y"].to_numpy()
    slope, intercept = calibration(y, predicted)
    order = np.argsort(predicted, kind="stable")
    bins = [
        CalibrationBin(float(predicted[i].mean()), float(y[i].mean()), len(i))
        for i in np.array_split(order, 10)
        if len(i)
    ]
    return Validation(
        folds=folds,
        episodes=len(frame),
        events=int(y.sum()),
        auc=auc(y, predicted),
        calibration_slope=slope,
        calibration_intercept=intercept,
        brier=float(np.mean((predicted - y) ** 2)),
        bins=bins,
    )
