"""An outcome measure over time as a PNG, for print: the scores, the baseline, the band of
change smaller than the responder threshold (the MCID, or the MDC where it governs), and
a tick per session. Dates are the clinic's; drawn with matplotlib (no browser)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_LINE = "#0b5cad"
_BAND = "#f2c14e"


@dataclass(frozen=True, slots=True)
class Series:
    """What one plot shows, in the measure's own units."""

    title: str
    unit: str  # as printed after a value on the axis label ("/10", "mm", "%", "")
    higher_is: str  # "better" | "worse"
    points: list[tuple[datetime, float]]
    baseline: float | None
    band: tuple[float, float] | None  # the values within the threshold of the baseline
    band_label: str  # "within 2 points of the baseline (less than the MCID)"
    sessions: list[datetime]
    value_range: tuple[float, float] | None  # the instrument's range, when it has one


def _day(moment: datetime) -> float:
    """A time as matplotlib's date number (days since its epoch, in UTC)."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def measure_png(series: Series, tz: ZoneInfo, *, dpi: int = 120) -> bytes:
    """The plot as PNG bytes (about 16 × 6 cm at print size)."""
    buffer = io.BytesIO()
    measure_figure(series, tz).savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _date_axis(ax: Any, moments: list[float], tz: ZoneInfo) -> None:
    """Dates on the x axis, one label per day at most: around the measures and sessions
    with a day's margin (a lone point was centred in six years of axis), ticked by day
    over a fortnight or less (an hourly tick printed the same date six times)."""
    if not moments:
        return
    first, last = min(moments), max(moments)
    pad = max(1.0, (last - first) * 0.05)
    ax.set_xlim(first - pad, last + pad)
    days = last - first + 2 * pad
    locator = (
        mdates.DayLocator(interval=max(1, round(days / 6)), tz=tz)  # type: ignore[no-untyped-call]
        if days <= 14
        else mdates.AutoDateLocator(tz=tz, maxticks=6)  # type: ignore[no-untyped-call]
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d", tz=tz))  # type: ignore[no-untyped-call]


def measure_figure(series: Series, tz: ZoneInfo) -> Figure:
    """The plot as a matplotlib figure (see `measure_png`)."""
    fig = Figure(figsize=(6.4, 2.5))
    ax = fig.add_subplot()
    times = [_day(t) for t, _ in series.points]
    values = [v for _, v in series.points]
    if series.band is not None:
        lo, hi = sorted(series.band)
        ax.axhspan(lo, hi, color=_BAND, alpha=0.35, lw=0, label=series.band_label)
    if series.baseline is not None:
        ax.axhline(series.baseline, color="#555", lw=0.9, ls="--", label="baseline")
    for i, t in enumerate(series.sessions):
        ax.axvline(_day(t), color="#999", lw=0.6, ls=":", label="a session" if i == 0 else None)
    ax.plot(times, values, "o-", color=_LINE, lw=1.6, ms=4, label="score", zorder=3)
    if series.value_range is not None:
        lo, hi = series.value_range
        seen = [*values, *(series.band or ()), *([series.baseline] if series.baseline else [])]
        lo, hi = min(lo, *seen), max(hi, *seen)
        pad = (hi - lo) * 0.04 or 0.5
        ax.set_ylim(lo - pad, hi + pad)
    if all(float(v).is_integer() for v in values):
        if series.value_range is None and values and max(values) - min(values) < 2:
            # whole counts (active trigger points): whole ticks need at least a unit either side
            low = min(values) - 1
            ax.set_ylim(max(low, 0) if min(values) >= 0 else low, max(values) + 1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    better = "lower" if series.higher_is == "worse" else "higher"
    word = series.unit.strip()
    name = word if word.isalpha() else f"score ({word})" if word else "score"
    ax.set_ylabel(f"{name}\n{better} is better", fontsize=7.5)
    ax.set_title(series.title, fontsize=9, loc="left")
    _date_axis(ax, [*times, *(_day(t) for t in series.sessions)], tz)
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", color="#ddd", lw=0.5)
    ax.legend(fontsize=6.5, loc="best", framealpha=0.85)
    return fig
