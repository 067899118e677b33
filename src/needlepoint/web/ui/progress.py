"""The progress page: a plot per measure over time (baseline, the band of change smaller
than the responder threshold, every session marked), then the eight-benefit summary with
"not measured" said plainly and the evidence note per benefit, and function / disability
on its own row beside them. Only signed notes count (`queries.outcomes`). Plots are
inline SVG drawn here: no JavaScript, no image library.

Each benefit's headline is a verdict, not a bookkeeping word (`headline`): improved,
unchanged or worse, judged per measure against the instrument's governing threshold (its
responder threshold: the MCID, or the MDC where the MCID lies inside measurement error,
shown with its source under the headline); "not judged" where no threshold is published;
"baseline only" before a follow-up; "not measured" where nothing informs the benefit.
A plot's value axis runs over round steps that hold every value (`nice_axis`), in whole
numbers for counts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from needlepoint.domain.benefits import BenefitSummary, MeasureSummary, kept, summarise_episode
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.errors import DomainError
from needlepoint.domain.instruments import library
from needlepoint.domain.questionnaires import after_care_days
from needlepoint.domain.responders import meaningful_threshold, required_change
from needlepoint.queries.benefits import episode_records
from needlepoint.queries.patients import get_patient
from needlepoint.queries.questionnaires import patient_reported_ids
from needlepoint.web.ui.forms import refusal_page, render, signed_in, to_login

router = APIRouter(include_in_schema=False)
W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    unit: str
    higher_is: str
    line: str
    dots: list[tuple[float, float, str]]
    baseline_y: float | None
    band: tuple[float, float] | None  # y of the band's top and its height
    band_text: str
    sessions: str  # one path: a tick per session
    session_count: int
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    summary: MeasureSummary
    after: list[tuple[float, float, str]] = field(default_factory=list)
    """The patient's answers after discharge: drawn apart from the line, labelled."""


VERDICTS = {
    "responder": "improved",
    "not a responder": "unchanged",
    "worsened": "worse",
    "no published threshold": "not judged: no published threshold",
}


def verdict(m: MeasureSummary) -> str:
    """One measure's change in words, judged against its governing threshold."""
    if m.responder is None:
        return "baseline only" if m.administrations < 2 else "not judged"
    return VERDICTS[m.responder.status]


def headline(b: BenefitSummary) -> str:
    """A benefit's verdict: improved / unchanged / worse (each measure judged against its
    instrument's governing threshold), mixed when its measures disagree, "not judged"
    where no threshold is published, "baseline only", or "not measured"."""
    if b.id == "faster_recovery":
        return recovery_headline(b)
    if not b.measures:
        if b.facts:
            if b.id == "complementary_care":
                return "recorded"  # care given, not a measured benefit
            return "no meaningful improvement recorded"
        return "not measured"
    judged: dict[str, list[str]] = {}
    for m in b.measures:
        word = verdict(m)
        if word in ("improved", "unchanged", "worse"):
            judged.setdefault(word, []).append(m.name)
    if len(judged) == 1:
        return next(iter(judged))
    if judged:
        return "mixed: " + "; ".join(
            f"{word} ({', '.join(dict.fromkeys(names))})"
            for word, names in sorted(judged.items(), key=lambda kv: kv[0])
        )
    if all(m.administrations < 2 for m in b.measures):
        return "baseline only"
    return "not judged: no published threshold"


NOT_COMPARED = "no comparator: whether recovery was faster is not judged"


def first_change(m: MeasureSummary) -> str:
    """When a measure first reached its meaningful-change threshold, as a fact ("first
    reached after 10 days, 2 sessions"), and whether the change was kept at the last
    measurement; empty when it never reached it."""
    days = m.days_to_first_meaningful_improvement
    if days is None:
        return ""
    n = m.sessions_to_first_meaningful_improvement
    sessions = "" if n is None else f", {n} session{'' if n == 1 else 's'}"
    text = f"threshold first reached after {days} day{'' if days == 1 else 's'}{sessions}"
    if not kept(m):
        text += "; not kept at the last measurement"
    return text


def recovery_headline(b: BenefitSummary) -> str:
    """Faster recovery has no comparator: the time to the first meaningful change is said
    as a fact and never called an improvement or "faster" (REFERENCE §5)."""
    m = b.first_reached
    if m is not None:
        return f"{m.label} {first_change(m)}; {NOT_COMPARED}"
    if b.facts:
        return NOT_COMPARED
    return "not measured"


def nice_axis(lo: float, hi: float, *, whole: bool, ticks: int = 5) -> tuple[float, float, float]:
    """An axis from `lo` to `hi` widened to round steps (1, 2, 2.5 or 5 × 10ⁿ; 1, 2 or
    5 × 10ⁿ and at least 1 when `whole`), at most about `ticks` of them: (start, end,
    step), start ≤ lo and end ≥ hi."""
    if hi - lo < 1e-9 * max(1.0, abs(lo), abs(hi)):
        hi = lo + 1
    raw = (hi - lo) / ticks
    if whole:
        raw = max(raw, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    factors = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = float(next(f * power for f in factors if f * power >= raw * (1 - 1e-9)))
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    start = start - step if start > lo else start  # rounding of the division
    end = end + step if end < hi else end
    return start, end, step


def _tick(value: float) -> str:
    return f"{round(value, 6):g}"


def meaningful_change(m: MeasureSummary) -> float | None:
    """The change this patient's baseline needs to count as meaningful, against the
    instrument's governing threshold (both criteria where the rule needs both: 2 points
    and 30 % of 7 is 2.1 points); None without a baseline or a published threshold."""
    inst = library().get(m.instrument_id)
    threshold = meaningful_threshold(inst, m.context) if inst else None
    if threshold is None or m.baseline is None:
        return None
    return required_change(threshold, m.baseline)


def plot(m: MeasureSummary, session_times: list[datetime]) -> Plot:
    """Scale one series into the plot's pixel box."""
    inst = library().get(m.instrument_id)
    times = [p.taken_at for p in (*m.points, *m.after_discharge)] + session_times
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 86_400.0)
    scores = [p.score for p in (*m.points, *m.after_discharge)]
    lo, hi = inst.score_range if inst else (min(scores), max(scores))
    if m.instrument_id in ("rom", "ppt") or hi - lo > 100:
        lo, hi = min(scores) * 0.9, max(scores) * 1.1 or 1.0
    lo, hi = min([lo, *scores]), max([hi, *scores])  # derived counts may exceed the range
    mcid = meaningful_change(m)
    if m.baseline is not None and mcid is not None:
        lo, hi = min(lo, m.baseline - mcid), max(hi, m.baseline + mcid)
    whole = all(float(v).is_integer() for v in scores) and m.unit not in ("%", "°")
    lo, hi, step = nice_axis(lo, hi, whole=whole or m.instrument_id == "trigger_points")
    if m.instrument_id != "rom" and inst is not None and inst.score_range[0] >= 0:
        lo = max(lo, 0.0)  # a score that cannot be negative needs no negative axis

    def x(t: datetime) -> float:
        return round(LEFT + (W - LEFT - RIGHT) * (t - t0).total_seconds() / span, 1)

    def y(v: float) -> float:
        return round(TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo)), 1)

    dots = [(x(p.taken_at), y(p.score), f"{p.taken_at:%Y-%m-%d}: {p.score:g}") for p in m.points]
    band = None
    band_text = ""
    unit = " %" if m.unit == "%" else m.unit
    if m.baseline is not None and mcid is not None:
        better = m.baseline - mcid if m.higher_is == "worse" else m.baseline + mcid
        top, bottom = sorted((y(min(max(m.baseline, lo), hi)), y(min(max(better, lo), hi))))
        band = (top, round(bottom - top, 1))
        band_text = (
            f"Shaded: within {mcid:.3g}{unit} of the baseline, less than the "
            f"{(m.threshold_basis or 'threshold').upper()} (its source is under the benefit below)"
        )
    count = round((hi - lo) / step)
    return Plot(
        title=m.label,
        unit=m.unit,
        higher_is=m.higher_is,
        line=" ".join(f"{px},{py}" for px, py, _ in dots),
        dots=dots if len(dots) <= 120 else [],
        baseline_y=y(m.baseline) if m.baseline is not None else None,
        band=band,
        band_text=band_text,
        sessions=" ".join(f"M{x(t)} {H - BOTTOM}v6" for t in session_times),
        session_count=len(session_times),
        y_ticks=[(y(lo + k * step), _tick(lo + k * step)) for k in range(count + 1)],
        x_ticks=[(x(t0), f"{t0:%Y-%m-%d}")]
        + ([(x(t1), f"{t1:%Y-%m-%d}")] if t1.date() != t0.date() else []),
        summary=m,
        after=[
            (x(p.taken_at), y(p.score), f"{p.taken_at:%Y-%m-%d}: {p.score:g} (after discharge)")
            for p in m.after_discharge
        ],
    )


def fmt(m: MeasureSummary, score: float | None) -> str:
    """A score as the instrument writes it, its unit spaced ("34 %", "12 mm"; a
    fraction or an angle stays attached: "4/10", "59°"), or a dash."""
    if score is None:
        return "—"
    unit = m.unit.strip()
    spaced = unit if not unit or unit.startswith(("/", "°")) else f" {unit}"
    return f"{round(score, 1):g}{spaced}"


@router.get("/episodes/{episode_id}/progress", response_model=None)
def progress(request: Request, episode_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            records = episode_records(r, episode_id)
            patient = get_patient(r, records.episode.patient_id)
            reported = patient_reported_ids(r, patient.id)
    except DomainError as err:
        return refusal_page(request, err)
    summary = summarise_episode(records)
    session_times = [s.started_at for s in records.sessions]
    plots: list[Plot] = []
    seen: set[str] = set()
    for b in summary.benefits:
        for m in b.measures:
            if m.points and m.label not in seen:
                seen.add(m.label)
                plots.append(plot(m, session_times))
    cond = conditions().get(records.episode.condition)
    return render(
        request,
        "progress.html",
        patient=patient,
        episode=records.episode,
        condition=cond,
        summary=summary,
        plots=plots,
        sessions=len(records.sessions),
        reported=[m for m in records.measurements if m.id in reported],
        after_care_days=after_care_days,
        library=library(),
        fmt=fmt,
        headline=headline,
        first_change=first_change,
        verdict=verdict,
        W=W,
        H=H,
        LEFT=LEFT,
        TOP=TOP,
        BOTTOM=BOTTOM,
    )
