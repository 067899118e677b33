"""Each patient's benefit summary: for one episode, the eight benefits dry needling is said
to bring, the measures that inform each (baseline → latest, change, responder status, time
to first meaningful improvement) beside the published evidence, and "not measured" where
nothing informs a benefit. Pure: the caller loads the episode's records.

Rules a reviewer should know (also in docs/instruments.md):
- A series is one instrument (and, for ROM or PPT, one joint/movement/side or site) within
  the episode; its baseline is the first scorable administration, its latest the last.
- Time to first meaningful improvement counts days from the baseline's date and the
  sessions started before the improving measurement was taken.
- Faster recovery: the days and sessions to the first meaningful change (and whether it
  was kept at the last measurement) are facts; with no comparator recorded, whether
  recovery was faster is never judged (REFERENCE §5: a professional statement only).
- Trigger points: each muscle and side keeps its last recorded status until it is noted
  again; "none" after "active" or "latent" reads as resolved.
- Analgesic use: each drug's latest log entry counts until a newer one (0 days = stopped);
  the score on a date is the sum of days per week over drugs ("drug-days per week")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain import instruments
from needlepoint.domain.catalogue import load_data, muscles
from needlepoint.domain.entities import (
    CoIntervention,
    Episode,
    Measurement,
    MedicationUse,
    NeedlingSite,
    PlanItem,
    Session,
)
from needlepoint.domain.enums import Modality, TriggerPoint
from needlepoint.domain.instruments import NO_THRESHOLD, Instrument, Threshold
from needlepoint.domain.questionnaires import after_care_days, logged_after_care
from needlepoint.domain.responders import (
    Responder,
    classify,
    first_meaningful_improvement,
    meaningful_threshold,
)
from needlepoint.domain.sources import check_cited, sources

# --- the benefit definitions (data/evidence.yaml) ---------------------------------------


class Evidence(BaseModel):
    """What the published evidence says about one benefit. Its sources are cited by id
    (`data/sources.yaml`): `benefits()` fails to load when one does not resolve, so no
    placeholder citation reaches a page. Where none was found, `source_ids` is empty and
    `none_found` says so (REFERENCE ❌); one of the two is always given."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    level: str
    note: str
    source_ids: list[str]
    none_found: str | None = None

    @model_validator(mode="after")
    def _cited_or_said_missing(self) -> Evidence:
        if bool(self.source_ids) == bool(self.none_found):
            raise ValueError("evidence cites its sources or says none was found (not both)")
        return self

    @property
    def source(self) -> str:
        """The citations in one line (or the statement that none was found)."""
        if not self.source_ids:
            return self.none_found or ""
        return "; ".join(sources()[i].citation for i in self.source_ids)

    @property
    def verified(self) -> bool:
        """Every cited source was seen first-hand (none cited: not verified)."""
        return bool(self.source_ids) and all(sources()[i].verified is True for i in self.source_ids)


class Benefit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    instruments: list[str]
    evidence: Evidence
    # Function / disability is not one of the eight claimed benefits: it is reported beside
    # them (DESIGN.md), and never under a benefit's name (a function score is not tissue
    # healing).
    reported_beside: bool = False


class _Benefits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    benefits: list[Benefit]


@cache
def benefits() -> list[Benefit]:
    """The eight benefits, and function / disability reported beside them, in display
    order; every instrument they name exists and informs exactly one of them."""
    defs = _Benefits.model_validate(load_data("evidence.yaml")).benefits
    known = instruments.library()
    owner: dict[str, str] = {}
    for b in defs:
        check_cited(f"evidence.yaml: benefit {b.id}", b.evidence.source_ids)
        for i in b.instruments:
            if i not in known:
                raise ValueError(f"evidence.yaml: benefit {b.id} names unknown instrument {i}")
            if i in owner:
                raise ValueError(f"evidence.yaml: {i} informs both {owner[i]} and {b.id}")
            owner[i] = b.id
    return defs


# --- the summary ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    taken_at: datetime
    score: float


@dataclass(frozen=True, slots=True)
class MeasureSummary:
    """One series within the episode: baseline → latest and what the change means."""

    instrument_id: str
    name: str
    label: str  # e.g. "Range of motion: cervical spine rotation left"
    unit: str
    higher_is: str
    context: dict[str, str]
    administrations: int
    baseline: float | None
    baseline_at: datetime | None
    latest: float | None
    latest_at: datetime | None
    responder: Responder | None  # None with a single administration or for ratings
    threshold: str  # what a meaningful change is here, or "no published threshold"
    threshold_basis: str | None  # "MCID" or "MDC": which one governs here
    threshold_source: str | None
    threshold_verified: bool | None
    days_to_first_meaningful_improvement: int | None
    sessions_to_first_meaningful_improvement: int | None
    points: list[Point]
    after_discharge: list[Point] = field(default_factory=list)
    """The patient's answers after the episode's discharge (follow-ups): shown in the
    series, labelled "after discharge", never part of baseline → latest."""


@dataclass(frozen=True, slots=True)
class Fact:
    """A derived finding that is not a score series (e.g. days to discharge)."""

    label: str
    value: str | int | float | None
    unit: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceNote:
    level: str
    note: str
    source: str  # the citations, or the statement that no source was found
    verified: bool
    cited: bool = True  # False: no published source was found (`source` says so)


@dataclass(frozen=True, slots=True)
class BenefitSummary:
    id: str
    name: str
    measured: bool
    status: str  # "measured", "not measured", "baseline only", "recorded"
    reported_beside: bool  # function / disability: shown beside the eight benefits
    measures: list[MeasureSummary]
    facts: list[Fact]
    days_to_first_meaningful_improvement: int | None
    sessions_to_first_meaningful_improvement: int | None
    evidence: EvidenceNote
    first_reached: MeasureSummary | None = None
    """Faster recovery: the measure that first reached its meaningful-change threshold
    (its days and sessions are the benefit's); nothing is compared with it, so it is a
    fact, never a finding that recovery was faster."""


@dataclass(frozen=True, slots=True)
class EpisodeBenefits:
    episode_id: str
    patient_id: str
    condition: str
    opened_on: date
    closed_on: date | None
    sessions: int
    benefits: list[BenefitSummary]
    global_ratings: list[MeasureSummary] = field(default_factory=list)
    library_version: str = ""


@dataclass(frozen=True, slots=True)
class EpisodeRecords:
    """Everything the summary reads for one episode, loaded by the caller."""

    episode: Episode
    sessions: Sequence[Session]
    measurements: Sequence[Measurement]
    medication: Sequence[MedicationUse]
    sites: Sequence[NeedlingSite]
    co_interventions: Sequence[CoIntervention]
    plan: Sequence[PlanItem]


def describe_threshold(threshold: Threshold | None, kind: str, unit: str) -> str:
    """A threshold as a clinician reads it: 'MCID 2/10 and 30 %' (both needed) or
    'MCID 2/10 or 30 %' (either counts)."""
    if threshold is None:
        return NO_THRESHOLD
    parts = []
    spaced = " %" if unit == "%" else unit  # units spaced: "20 %", "2/10", "9.6°"
    if threshold.value is not None:
        parts.append(f"{threshold.value:g}{spaced}")
    if threshold.percent is not None:
        parts.append(f"{threshold.percent:g} % of the baseline")
    joiner = " and " if threshold.combine == "both" else " or "
    text = f"{kind} {joiner.join(parts)}"
    return f"{text} ({threshold.note})" if threshold.note else text


def muscle_name(muscle_id: str) -> str:
    """A muscle as the catalogue names it ("Gastrocnemius (lateral head)"), never its id."""
    known = muscles().get(muscle_id)
    return known.name if known else muscle_id.replace("_", " ")


def _label(instrument: Instrument, context: dict[str, str]) -> str:
    if not context:
        return instrument.name
    where = " ".join(muscle_name(v) for v in context.values())
    return f"{instrument.name}: {where}"


def _sessions_before(sessions: Sequence[Session], moment: datetime) -> int:
    return sum(1 for s in sessions if s.started_at < moment)


def summarise_series(
    instrument: Instrument,
    context: dict[str, str],
    points: Sequence[Point],
    sessions: Sequence[Session],
) -> MeasureSummary:
    """Baseline → latest for one series, classified, with time to first improvement."""
    pts = sorted(points, key=lambda p: p.taken_at)
    threshold = meaningful_threshold(instrument, context)
    kind = (threshold.basis or "mcid").upper() if threshold is not None else None
    responder = None
    days = sessions_n = None
    if len(pts) >= 2 and instrument.change == "from_baseline":
        responder = classify(instrument, pts[0].score, pts[-1].score, context)
        first = first_meaningful_improvement(instrument, [p.score for p in pts], context)
        if first is not None:
            days = (pts[first].taken_at.date() - pts[0].taken_at.date()).days
            sessions_n = _sessions_before(sessions, pts[first].taken_at)
    return MeasureSummary(
        instrument_id=instrument.id,
        name=instrument.name,
        label=_label(instrument, context),
        unit=instrument.unit.strip(),
        higher_is=instrument.higher_is,
        context=context,
        administrations=len(pts),
        baseline=pts[0].score if pts else None,
        baseline_at=pts[0].taken_at if pts else None,
        latest=pts[-1].score if pts else None,
        latest_at=pts[-1].taken_at if pts else None,
        responder=responder,
        threshold=describe_threshold(threshold, kind or "", instrument.unit),
        threshold_basis=kind,
        threshold_source=threshold.source if threshold else instrument.no_threshold_text,
        threshold_verified=threshold.verified if threshold else None,
        days_to_first_meaningful_improvement=days,
        sessions_to_first_meaningful_improvement=sessions_n,
        points=pts,
    )


def measurement_series(
    measurements: Sequence[Measurement],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[Measurement]]:
    """Scored measurements grouped by instrument and the context keys that separate its
    series (ROM: joint, movement, side), oldest first."""
    library = instruments.library()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], list[Measurement]] = defaultdict(list)
    for m in sorted(measurements, key=lambda m: (m.taken_at, str(m.id))):
        known = library.get(m.instrument_id)
        if known is None or m.score is None:
            continue
        ctx = m.context or {}
        key = tuple((k, str(ctx.get(k, ""))) for k in known.series_by)
        out[(m.instrument_id, key)].append(m)
    return out


# --- derived series: trigger points, analgesic use --------------------------------------


def trigger_point_course(
    sessions: Sequence[Session], sites: Sequence[NeedlingSite]
) -> tuple[list[Point], dict[tuple[str, str], list[str]]]:
    """The number of muscles with an active trigger point after each session that noted
    any, and each muscle's (muscle, side) course of statuses: active / latent / none /
    resolved. A muscle keeps its last status until noted again; "none" after "active" or
    "latent" is "resolved"."""
    by_session: dict[Any, list[NeedlingSite]] = defaultdict(list)
    for s in sites:
        by_session[s.session_id].append(s)
    state: dict[tuple[str, str], str] = {}
    course: dict[tuple[str, str], list[str]] = defaultdict(list)
    points: list[Point] = []
    for session in sorted(sessions, key=lambda s: s.started_at):
        noted = by_session.get(session.id)
        if not noted:
            continue
        for site in sorted(noted, key=lambda x: x.position):
            key = (site.muscle_id, site.side.value)
            status = site.trigger_point.value
            if site.trigger_point == TriggerPoint.NONE and state.get(key) in (
                "active",
                "latent",
                "resolved",
            ):
                status = "resolved"
            state[key] = status
            if not course[key] or course[key][-1] != status:
                course[key].append(status)
        active = sum(1 for v in state.values() if v == TriggerPoint.ACTIVE.value)
        points.append(Point(session.started_at, float(active)))
    return points, dict(course)


def analgesic_course(
    medication: Sequence[MedicationUse],
) -> tuple[list[Point], dict[str, list[MedicationUse]]]:
    """Drug-days per week on each log date (each drug's latest entry carried forward) and
    each drug's entries (by lower-case name), oldest first."""
    per_drug: dict[str, list[MedicationUse]] = defaultdict(list)
    current: dict[str, int] = {}
    points: list[Point] = []
    ordered = sorted(medication, key=lambda u: (u.recorded_on, u.created_at))
    for day in sorted({u.recorded_on for u in ordered}):
        for use in (u for u in ordered if u.recorded_on == day):
            drug = use.drug.strip().lower()
            current[drug] = use.days_per_week
            per_drug[drug].append(use)
        points.append(
            Point(datetime.combine(day, time(), tzinfo=UTC), float(sum(current.values())))
        )
    return points, dict(per_drug)


# --- the summary for one episode --------------------------------------------------------


def _status(measures: Sequence[MeasureSummary]) -> str:
    if not measures:
        return "not measured"
    if all(m.administrations < 2 for m in measures):
        return "baseline only"
    return "measured"


def first_reached(measures: Sequence[MeasureSummary]) -> MeasureSummary | None:
    """The measure whose meaningful-change threshold was reached first (fewest days, then
    fewest sessions), or None when none reached it."""
    timed = [m for m in measures if m.days_to_first_meaningful_improvement is not None]
    return min(
        timed,
        key=lambda m: (
            m.days_to_first_meaningful_improvement or 0,
            m.sessions_to_first_meaningful_improvement or 0,
        ),
        default=None,
    )


def kept(m: MeasureSummary) -> bool:
    """The change that once reached the threshold still reaches it at the last measurement."""
    return m.responder is not None and m.responder.status == "responder"


def _first(measures: Sequence[MeasureSummary]) -> tuple[int | None, int | None]:
    m = first_reached(measures)
    if m is None:
        return None, None
    return m.days_to_first_meaningful_improvement, m.sessions_to_first_meaningful_improvement


def summarise_episode(records: EpisodeRecords) -> EpisodeBenefits:
    """The benefit summary of one episode, from its records."""
    episode = records.episode
    sessions = sorted(records.sessions, key=lambda s: s.started_at)
    library = instruments.library()
    # Up to discharge only: the patient's answers after care are shown beside each series
    # ("after discharge"), never as its latest value (issue 16).
    in_care = [m for m in records.measurements if after_care_days(m.context) is None]
    later = measurement_series(
        [m for m in records.measurements if after_care_days(m.context) is not None]
    )
    series = measurement_series(in_care)
    summaries: dict[str, list[MeasureSummary]] = defaultdict(list)
    for (instrument_id, key), ms in series.items():
        summary = summarise_series(
            library[instrument_id],
            dict(key),
            [Point(m.taken_at, float(m.score or 0)) for m in ms],
            sessions,
        )
        after = [
            Point(m.taken_at, float(m.score or 0)) for m in later.get((instrument_id, key), [])
        ]
        summaries[instrument_id].append(replace(summary, after_discharge=after))

    tp_points, tp_course = trigger_point_course(sessions, records.sites)
    tp_facts = [
        Fact(f"{muscle_name(muscle)} ({side})", " → ".join(statuses))
        for (muscle, side), statuses in sorted(tp_course.items())
    ]
    if tp_points:
        summaries["trigger_points"].append(
            summarise_series(library["trigger_points"], {}, tp_points, sessions)
        )
    med_points, med_course = analgesic_course(
        [u for u in records.medication if not logged_after_care(episode.closed_on, u.recorded_on)]
    )
    med_facts = [
        Fact(
            uses[-1].drug + (f" {uses[-1].dose_mg:g} mg" if uses[-1].dose_mg else ""),
            " → ".join(str(u.days_per_week) for u in uses),
            "days/week",
        )
        for drug, uses in sorted(med_course.items())
    ]
    if med_points:
        summaries["analgesic_use"].append(
            summarise_series(library["analgesic_use"], {}, med_points, sessions)
        )

    per_benefit = {
        b.id: [
            m for i in b.instruments if library[i].change != "event" for m in summaries.get(i, [])
        ]
        for b in benefits()
    }
    # Faster recovery reads the first meaningful improvement of pain, function and ROM.
    improving = [
        m
        for b in ("pain_relief", "function_disability", "flexibility_rom")
        for m in per_benefit.get(b, [])
    ]
    # Return to work or sport is an event, not a score to compare: a return the patient
    # reports after discharge (its day may fall in care) is the episode's answer too,
    # said to be reported after discharge.
    returns = [m for m in records.measurements if m.instrument_id == "return_to_activity"]
    out: list[BenefitSummary] = []
    for benefit in benefits():
        measures = per_benefit[benefit.id]
        days, sessions_n = _first(measures)
        facts: list[Fact] = []
        if benefit.id == "muscle_relaxation":
            facts = tp_facts
        elif benefit.id == "drug_free_management":
            facts = med_facts
        elif benefit.id == "complementary_care":
            facts = _complementary_facts(records, sessions)
        elif benefit.id == "faster_recovery":
            facts = _recovery_facts(episode, returns, improving)
            days, sessions_n = _first(improving)
        status = _status(measures)
        if benefit.id == "faster_recovery" and facts:
            # days and sessions counted from the signed record: facts, with nothing to
            # compare them with, so whether recovery was faster is not judged
            status = "recorded"
        elif benefit.id == "complementary_care" and facts:
            # what else the plan and the notes hold: a record of care given, not a
            # measurement of any benefit (the comparison lives in the clinic analytics)
            status = "recorded"
        out.append(
            BenefitSummary(
                id=benefit.id,
                name=benefit.name,
                measured=status != "not measured",
                status=status,
                reported_beside=benefit.reported_beside,
                measures=measures,
                facts=facts,
                days_to_first_meaningful_improvement=days,
                sessions_to_first_meaningful_improvement=sessions_n,
                first_reached=first_reached(improving) if benefit.id == "faster_recovery" else None,
                evidence=EvidenceNote(
                    level=benefit.evidence.level,
                    note=benefit.evidence.note,
                    source=benefit.evidence.source,
                    verified=benefit.evidence.verified,
                    cited=bool(benefit.evidence.source_ids),
                ),
            )
        )
    ratings = [
        m for i, inst in library.items() if inst.change == "rating" for m in summaries.get(i, [])
    ]
    return EpisodeBenefits(
        episode_id=str(episode.id),
        patient_id=str(episode.patient_id),
        condition=episode.condition,
        opened_on=episode.opened_on,
        closed_on=episode.closed_on,
        sessions=len(sessions),
        benefits=out,
        global_ratings=ratings,
        library_version=instruments.library_version(),
    )


def _complementary_facts(records: EpisodeRecords, sessions: Sequence[Session]) -> list[Fact]:
    facts = [
        Fact(f"planned: {p.modality.value.replace('_', ' ')}", p.description)
        for p in records.plan
        if p.modality != Modality.DRY_NEEDLING
    ]
    per_modality: dict[str, set[Any]] = defaultdict(set)
    for c in records.co_interventions:
        per_modality[c.modality.value].add(c.session_id)
    for modality, ids in sorted(per_modality.items()):
        facts.append(
            Fact(
                f"given with needling: {modality.replace('_', ' ')}",
                f"{len(ids)} of {len(sessions)} sessions",
            )
        )
    return facts


def _recovery_facts(
    episode: Episode, returns: Sequence[Measurement], improving: Sequence[MeasureSummary]
) -> list[Fact]:
    facts: list[Fact] = []
    if episode.closed_on is not None:
        stay = (episode.closed_on - episode.opened_on).days
        facts.append(Fact("days to discharge", stay, "days"))
    latest: dict[str, Measurement] = {}
    returned_on: dict[str, date] = {}
    reported_later: set[str] = set()
    for m in sorted(returns, key=lambda m: m.taken_at):
        activity = str((m.context or {}).get("activity", "activity"))
        latest[activity] = m
        if m.score is not None and m.score >= 1 and activity not in returned_on:
            day = (m.context or {}).get("returned_on")
            returned_on[activity] = date.fromisoformat(str(day)) if day else m.taken_at.date()
            if after_care_days(m.context) is not None:
                reported_later.add(activity)
    for activity in sorted(latest):
        if activity in returned_on:
            said = returned_on[activity].isoformat()
            if activity in reported_later:
                said += " (reported after discharge)"
            facts.append(Fact(f"returned to {activity} on", said))
            away = (returned_on[activity] - episode.opened_on).days
            facts.append(Fact(f"days to return to {activity}", away, "days"))
        else:
            later = after_care_days(latest[activity].context) is not None
            facts.append(
                Fact(
                    f"returned to {activity}",
                    "not yet (asked after discharge)" if later else "not yet",
                )
            )
    first = first_reached(improving)
    if first is not None:
        facts.append(Fact("meaningful-change threshold first reached by", first.label))
        facts.append(
            Fact(
                "days to first meaningful change",
                first.days_to_first_meaningful_improvement,
                "days",
            )
        )
        facts.append(
            Fact(
                "sessions to first meaningful change",
                first.sessions_to_first_meaningful_improvement,
                "sessions",
            )
        )
        facts.append(
            Fact(
                "change kept at the last measurement",
                "yes" if kept(first) else "no: below the threshold again",
            )
        )
    if facts:
        facts.append(Fact("compared with", "nothing: whether recovery was faster is not judged"))
    return facts
