"""Adverse-event surveillance: rates per 100 sessions by type and severity, with 95 %
Wilson intervals, beside the published rates (REFERENCE §2: Brady 2014, Boyce 2020).

A rate counts sessions with at least one event of the kind (the published studies count
treatments or sessions with an event), over every recorded session of the clinic.

The alert: when the LOWER bound of the clinic's rate of significant or serious events
exceeds the published upper figure, the excess is unlikely to be chance. The published
upper figure is the larger of the studies' (`significant_upper_percent`: Boyce 2020,
< 0.1 %; Brady 2014 observed none, upper risk ≤ 0.04 %), so that a clinic exactly at the
rate Boyce observed does not raise an alarm; both figures are shown."""

from __future__ import annotations

import re
from dataclasses import dataclass

from needlepoint.analytics.responders import Workspace, wilson
from needlepoint.domain.catalogue import AdverseEventStudy, adverse_event_benchmarks


@dataclass(frozen=True, slots=True)
class PublishedRate:
    """A published figure as its source gives it: `percent` is an observed rate of events
    (`percent_is` "observed") or, for significant events, an upper bound of the risk
    (`percent_is` "upper bound": Brady 2014 observed none); `text` says it in words."""

    study: str
    percent: float
    verified: bool
    percent_is: str = "observed"
    text: str = ""


def _short(study: AdverseEventStudy) -> str:
    """'Brady 2014', 'Boyce 2020': the first author and the year of a citation."""
    year = re.search(r"\b(?:19|20)\d\d\b", study.citation)
    author = study.citation.split(",")[0].split()[0]
    return f"{author} {year.group(0)}" if year else author


def _mild(study: AdverseEventStudy, percent: float) -> PublishedRate:
    return PublishedRate(
        study.citation,
        percent,
        study.verified,
        "observed",
        f"{percent:g} % of {study.denominator} ({_short(study)})",
    )


def _significant(study: AdverseEventStudy) -> PublishedRate:
    """The published significant-event figure: the events observed and the upper figure
    of the risk, never the upper figure as if it had been observed."""
    upper = study.significant_upper_percent
    author = _short(study)
    if study.significant_events == 0:
        text = f"0 observed in {study.sample:,} {study.denominator} (upper risk ≤ {upper:g} %)"
    elif study.significant_events is not None:
        text = (
            f"{study.significant_events} observed in {study.sample:,} {study.denominator} "
            f"(< {upper:g} %)"
        )
    else:
        text = f"upper risk ≤ {upper:g} %"
    return PublishedRate(study.citation, upper, study.verified, "upper bound", f"{text} ({author})")


@dataclass(frozen=True, slots=True)
class EventRate:
    kind: str
    severity: str
    events: int
    sessions_with_event: int
    sessions: int
    per_100: float | None
    ci_low_per_100: float | None
    ci_high_per_100: float | None
    published: list[PublishedRate]


@dataclass(frozen=True, slots=True)
class SafetyAlert:
    raised: bool
    rate_per_100: float | None
    ci_low_per_100: float | None
    ci_high_per_100: float | None
    threshold_per_100: float
    threshold_source: str
    message: str


@dataclass(frozen=True, slots=True)
class Safety:
    sessions: int
    by_kind: list[EventRate]
    by_severity: list[EventRate]
    significant_or_serious: EventRate
    alert: SafetyAlert
    sources: list[str]


def _rate(
    kind: str,
    severity: str,
    events: int,
    with_event: int,
    sessions: int,
    published: list[PublishedRate],
) -> EventRate:
    lo, hi = wilson(with_event, sessions)
    return EventRate(
        kind=kind,
        severity=severity,
        events=events,
        sessions_with_event=with_event,
        sessions=sessions,
        per_100=100 * with_event / sessions if sessions else None,
        ci_low_per_100=None if lo is None else 100 * lo,
        ci_high_per_100=None if hi is None else 100 * hi,
        published=published,
    )


def alert_rule(with_event: int, sessions: int) -> SafetyAlert:
    """The surveillance alert for `with_event` sessions with a significant or serious
    event out of `sessions`: raised when the Wilson lower bound exceeds the published
    upper figure (strictly)."""
    studies = adverse_event_benchmarks().studies
    top = max(studies, key=lambda s: s.significant_upper_percent)
    threshold = top.significant_upper_percent
    lo, hi = wilson(with_event, sessions)
    raised = lo is not None and 100 * lo > threshold
    rate = 100 * with_event / sessions if sessions else None
    if sessions == 0:
        message = "No sessions recorded: no rate."
    elif raised:
        message = (
            f"ALERT: significant or serious events in {with_event} of {sessions} sessions; "
            f"even the lower 95 % bound ({100 * (lo or 0):.3f} per 100) exceeds the published "
            f"upper figure ({threshold:g} per 100, {top.citation}). Review these events."
        )
    else:
        message = (
            f"No alert: significant or serious events in {with_event} of {sessions} sessions; "
            f"the lower 95 % bound ({100 * (lo or 0):.3f} per 100) does not exceed the "
            f"published upper figure ({threshold:g} per 100, {top.citation})."
        )
    return SafetyAlert(
        raised=raised,
        rate_per_100=rate,
        ci_low_per_100=None if lo is None else 100 * lo,
        ci_high_per_100=None if hi is None else 100 * hi,
        threshold_per_100=threshold,
        threshold_source=top.citation,
        message=message,
    )


def safety(ws: Workspace) -> Safety:
    """The clinic's adverse-event rates and the alert."""
    bench = adverse_event_benchmarks()
    sessions = int(ws.one("SELECT count(*) FROM sessions")[0])

    def counts(group: str, where: str = "true") -> list[tuple[str, str, int, int]]:
        return [
            (str(a), str(b), int(c), int(d))
            for a, b, c, d in ws.sql(f"""
SELECT {group}, count(*), count(DISTINCT session_id)
FROM adverse_events WHERE {where} GROUP BY ALL ORDER BY 1, 2
""").fetchall()
        ]

    by_kind = []
    for kind, severity, events, with_event in counts("kind, severity"):
        published = [
            _mild(s, s.mild_by_kind_percent[kind])
            for s in bench.studies
            if severity == "mild" and kind in s.mild_by_kind_percent
        ]
        by_kind.append(_rate(kind, severity, events, with_event, sessions, published))
    by_severity = []
    for _, severity, events, with_event in counts("'all' AS kind, severity"):
        if severity == "mild":
            published = [_mild(s, s.mild_percent) for s in bench.studies]
        else:
            published = [_significant(s) for s in bench.studies]
        by_severity.append(_rate("all", severity, events, with_event, sessions, published))
    serious = counts("'all' AS kind, 'significant or serious' AS s", "severity <> 'mild'")
    events, with_event = (serious[0][2], serious[0][3]) if serious else (0, 0)
    combined = _rate(
        "all",
        "significant or serious",
        events,
        with_event,
        sessions,
        [_significant(s) for s in bench.studies],
    )
    return Safety(
        sessions=sessions,
        by_kind=by_kind,
        by_severity=by_severity,
        significant_or_serious=combined,
        alert=alert_rule(with_event, sessions),
        sources=[bench.severity_source, *(s.citation for s in bench.studies)],
    )
