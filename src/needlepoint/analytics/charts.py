"""Static charts for the dashboard page, drawn server-side with matplotlib (no browser
scripts: the page's CSP forbids them) and returned as `data:` URIs of PNG images."""

from __future__ import annotations

import base64
import io
import math

from matplotlib.figure import Figure

from needlepoint.analytics.practitioners import PractitionerModel
from needlepoint.analytics.prognosis import Validation
from needlepoint.analytics.recovery import RecoveryComparison
from needlepoint.analytics.responders import Z95

_DPI = 100
_WORDS = {"co_intervention": "co-intervention"}


def _words(value: str) -> str:
    """An id as words for a chart: a condition's label, or the id's words."""
    from needlepoint.domain.catalogue import conditions

    labels = {c.id: c.label for c in conditions().conditions}
    return labels.get(value) or _WORDS.get(value) or value.replace("_", " ")


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def funnel(model: PractitionerModel) -> str | None:
    """Each practitioner's risk-adjusted mean change against their number of patients,
    with 95 % and 99.8 % control limits around the clinic average (0)."""
    if not model.converged or not model.funnel or model.residual_sd is None:
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    sigma = model.residual_sd
    top = max(p.patients for p in model.funnel)
    ns = [max(1.0, top * i / 200) for i in range(1, 201)]
    for z, style, label in ((Z95, "--", "95 % limits"), (3.09, ":", "99.8 % limits")):
        ax.plot(ns, [z * sigma / math.sqrt(n) for n in ns], "k" + style, lw=1, label=label)
        ax.plot(ns, [-z * sigma / math.sqrt(n) for n in ns], "k" + style, lw=1)
    ax.axhline(0, color="#555", lw=0.8)
    colours = ["#0b5cad" if p.inside_95 else "#a4161a" for p in model.funnel]
    ax.scatter(
        [p.patients for p in model.funnel],
        [p.adjusted_mean for p in model.funnel],
        c=colours,
        s=18,
        zorder=3,
    )
    ax.axvline(model.min_patients, color="#999", lw=0.8)
    ax.set_xlabel(f"patients analysed (ranked from {model.min_patients})")
    ax.set_ylabel("observed − expected change")
    ax.set_title(f"Funnel plot: {model.label}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def caterpillar(model: PractitionerModel) -> str | None:
    """Shrunken practitioner effects with 95 % intervals, best first."""
    shown = [e for e in model.effects if e.effect is not None]
    if not shown:
        return None
    fig = Figure(figsize=(6.4, max(2.5, 0.16 * len(shown) + 1)))
    ax = fig.add_subplot()
    ys = list(range(len(shown)))[::-1]
    for y, e in zip(ys, shown, strict=True):
        colour = "#0b5cad" if e.ranked else "#999"
        ax.plot([e.ci_low or 0.0, e.ci_high or 0.0], [y, y], color=colour, lw=1.2)
        ax.plot([e.effect or 0.0], [y], "o", color=colour, ms=3)
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_yticks(ys, [e.practitioner for e in shown], fontsize=6)
    ax.set_xlabel("effect vs the clinic's average practitioner (grey: not ranked)")
    ax.set_title(f"Practitioner effects: {model.label}", fontsize=10)
    return _png(fig)


def recovery_curves(comparison: RecoveryComparison) -> str | None:
    """Kaplan–Meier curves as the cumulative share improved, one line per group."""
    if not comparison.curves:
        return None
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    for curve in comparison.curves:
        if not curve.points:
            continue
        ax.step(
            [p.day for p in curve.points],
            [p.improved for p in curve.points],
            where="post",
            lw=1.2,
            label=f"{_words(curve.group)} (n = {curve.episodes})",
        )
    ax.set_xlabel("days since baseline")
    ax.set_ylabel("share reaching the NPRS MCID")
    ax.set_ylim(0, 1)
    ax.set_title(f"Time to meaningful improvement by {_words(comparison.by)}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def calibration_plot(validation: Validation | None) -> str | None:
    """Observed against predicted probability by tenths of prediction (cross-validated)."""
    if validation is None or not validation.bins:
        return None
    fig = Figure(figsize=(4.0, 4.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
    ax.plot(
        [b.predicted for b in validation.bins],
        [b.observed for b in validation.bins],
        "o-",
        color="#0b5cad",
        ms=4,
        label="tenths of predicted risk",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability (out of fold)")
    ax.set_ylabel("observed share")
    ax.set_title("Calibration", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)
