"""The progress page: a plot per measure over time (baseline, the band of change smaller
than the responder threshold, every session marked), then the eight-benefit summary with
"not measured" said plainly and the evidence note per benefit, and function / disability
on its own row beside them. Only signed notes count (`queries.outcomes`). Plots are
inline SVG drawn here: no JavaScript, no image library."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from needlepoint.domain.benefits import MeasureSummary, summarise_episode
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.errors import DomainError
from needlepoint.domain.instruments import library
from needlepoint.domain.responders import meaningful_threshold, required_change
from needlepoint.queries.benefits import episode_records
from needlepoint.queries.patients import get_patient
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


def plot(m: MeasureSummary, session_times: list[datetime]) -> Plot:
    """Scale one series into the plot's pixel box."""
    inst = library().get(m.instrument_id)
    times = [p.taken_at for p in m.points] + session_times
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 86_400.0)
    scores = [p.score for p in m.points]
    lo, hi = inst.score_range if inst else (min(scores), max(scores))
    if m.instrument_id in ("rom", "ppt") or hi - lo > 100:
        lo, hi = min(scores) * 0.9, max(scores) * 1.1 or 1.0
    lo, hi = min([lo, *scores]), max([hi, *scores])  # derived counts may exceed the range
    threshold = meaningful_threshold(inst, m.context) if inst else None
    # The band is the change this patient's baseline needs (both criteria where the rule
    # needs both: 2 points and 30 % of 7 is 2.1 points).
    mcid = (
        required_change(threshold, m.baseline)
        if threshold is not None and m.baseline is not None
        else None
    )
    if m.baseline is not None and mcid is not None:
        lo, hi = min(lo, m.baseline - mcid), max(hi, m.baseline + mcid)
    if hi <= lo:
        hi = lo + 1

    def x(t: datetime) -> float:
        return round(LEFT + (W - LEFT - RIGHT) * (t - t0).total_seconds() / span, 1)

    def y(v: float) -> float:
        return round(TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo)), 1)

    dots = [(x(p.taken_at), y(p.score), f"{p.taken_at:%Y-%m-%d}: {p.score:g}") for p in m.points]
    band = None
    band_text = f"No band drawn: {m.threshold_source or m.threshold}"
    unit = " %" if m.unit == "%" else m.unit
    if m.baseline is not None and mcid is not None:
        better = m.baseline - mcid if m.higher_is == "worse" else m.baseline + mcid
        top, bottom = sorted((y(m.baseline), y(better)))
        band = (top, round(bottom - top, 1))
        band_text = (
            f"Shaded: within {mcid:.3g}{unit} of the baseline, less than the "
            f"{m.threshold_basis or 'threshold'} ({m.threshold}; {m.threshold_source})"
        )
    step = (hi - lo) / 4
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
        y_ticks=[(y(lo + k * step), f"{lo + k * step:.3g}") for k in range(5)],
        x_ticks=[(x(t0), f"{t0:%Y-%m-%d}")]
        + ([(x(t1), f"{t1:%Y-%m-%d}")] if t1.date() != t0.date() else []),
        summary=m,
    )


def fmt(m: MeasureSummary, score: float | None) -> str:
    """A score as the instrument writes it (unit included), or a dash."""
    if score is None:
        return "—"
    inst = library().get(m.instrument_id)
    return inst.format(score) if inst else f"{score:g}{m.unit}"


@router.get("/episodes/{episode_id}/progress", response_model=None)
def progress(request: Request, episode_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            records = episode_records(r, episode_id)
            patient = get_patient(r, records.episode.patient_id)
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
        fmt=fmt,
        W=W,
        H=H,
        LEFT=LEFT,
        TOP=TOP,
        BOTTOM=BOTTOM,
    )
