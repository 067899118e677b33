"""After care (issue 16): what patients report 6 weeks and 3 months after discharge.

Read from the snapshot's `after_care` table (patients' answers to follow-up
questionnaires, kept apart from `measurements`: every outcome "up to discharge" of the
other analyses never sees them) and `after_care_medication` (analgesic-log entries dated
after discharge).

Per instrument and follow-up (`domain.questionnaires.FOLLOW_UP_WINDOWS`: a follow-up
counts as "6 weeks" when it was due 21–66 days after discharge, "3 months" when due
67–120 days after):

- due (N): discharged episodes with an in-care value of the instrument (their baseline)
  whose follow-up day has passed (discharge + 42 or 91 days on or before the day the
  records were read), or that have an answer for that follow-up already;
- answered (n): those with a follow-up answer (the first one, if several);
- benefit kept: of the answered, those whose change from the baseline (the first in-care
  value) to the follow-up answer reaches the instrument's responder threshold (the same
  rule and threshold as the discharge responder rates: `responders.reach_sql`,
  `domain.responders.meaningful_threshold`, each with its source), with a 95 % Wilson
  interval;
- "not measured" when no episode answered: never a bare 0 %.

Drug-free after care: of the episodes with an analgesic-log entry in a follow-up's
window (days after discharge 21–66 or 67–120), those whose latest entry per drug adds up
to 0 drug-days per week; "not measured" without such entries. No published threshold:
a share, not a responder rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from needlepoint.analytics.responders import Workspace, reach_sql, wilson
from needlepoint.domain import instruments
from needlepoint.domain.benefits import describe_threshold
from needlepoint.domain.questionnaires import FOLLOW_UP_WINDOWS, is_self_report
from needlepoint.domain.responders import meaningful_threshold

NOT_MEASURED = "not measured"
CRITERION = (
    "benefit kept: the change from the episode's first in-care value to the patient's "
    "follow-up answer reaches the instrument's responder threshold (as at discharge)"
)
DUE_RULE = (
    "eligible: discharged episodes with an in-care value of the instrument whose follow-up "
    "day (discharge + 42 or 91 days) has passed, whether or not the follow-up was asked "
    "(the completion rates below count only what was asked); a follow-up counts as 6 weeks "
    "when it was due 21–66 days after discharge, as 3 months when due 67–120 days after"
)
DRUG_FREE_RULE = (
    "drug-free: the latest analgesic-log entry of each drug in the follow-up's window adds "
    "up to 0 drug-days per week (no published threshold: a share, not a responder rate)"
)


@dataclass(frozen=True, slots=True)
class AfterCareRow:
    """One instrument at one follow-up: n/N answered, and of those, benefit kept."""

    instrument_id: str
    instrument: str
    follow_up: str  # "6 weeks" or "3 months"
    due: int  # N
    answered: int  # n
    kept: int
    rate: float | None  # kept / answered; None when nobody answered
    ci_low: float | None
    ci_high: float | None
    threshold: str  # the responder threshold in words
    source: str
    status: str  # "measured" or "not measured"


@dataclass(frozen=True, slots=True)
class AfterCareDrugs:
    """Drug-free share at one follow-up, from the analgesic log after discharge."""

    follow_up: str
    logged: int  # episodes with an analgesic-log entry in the window
    drug_free: int
    share: float | None
    ci_low: float | None
    ci_high: float | None
    status: str


@dataclass(frozen=True, slots=True)
class AfterCare:
    rows: list[AfterCareRow]
    drugs: list[AfterCareDrugs]
    answers: int  # follow-up answers in the snapshot (all instruments)
    as_of: date | None  # follow-ups due by this day count as due
    measured: bool  # any follow-up answer or analgesic-log entry after discharge
    criterion: str = CRITERION
    due_rule: str = DUE_RULE
    drug_free_rule: str = DRUG_FREE_RULE


def _windows() -> pa.Table:
    return pa.table(
        {
            "follow_up": [w[0] for w in FOLLOW_UP_WINDOWS],
            "nominal": pa.array([w[1] for w in FOLLOW_UP_WINDOWS], pa.int32()),
            "lo": pa.array([w[2] for w in FOLLOW_UP_WINDOWS], pa.int32()),
            "hi": pa.array([w[3] for w in FOLLOW_UP_WINDOWS], pa.int32()),
            "w_order": pa.array(range(len(FOLLOW_UP_WINDOWS)), pa.int32()),
        }
    )


def _thresholds() -> pa.Table:
    """Each self-reported instrument with a published responder threshold."""
    rows: dict[str, list[object]] = {
        k: [] for k in ("instrument_id", "value", "percent", "needs_both", "worse")
    }
    for inst in instruments.library().values():
        thr = meaningful_threshold(inst)
        if thr is None or not is_self_report(inst.id):
            continue
        rows["instrument_id"].append(inst.id)
        rows["value"].append(thr.value)
        rows["percent"].append(thr.percent)
        rows["needs_both"].append(thr.combine == "both")
        rows["worse"].append(inst.higher_is == "worse")
    return pa.table(
        {
            "instrument_id": pa.array(rows["instrument_id"], pa.string()),
            "value": pa.array(rows["value"], pa.float64()),
            "percent": pa.array(rows["percent"], pa.float64()),
            "needs_both": pa.array(rows["needs_both"], pa.bool_()),
            "worse": pa.array(rows["worse"], pa.bool_()),
        }
    )


def after_care(ws: Workspace, as_of: date) -> AfterCare:
    """The after-care analysis of the workspace's snapshot, follow-ups due by `as_of`."""
    con = ws.con
    con.register("ac_windows", _windows())
    con.register("ac_thresholds", _thresholds())
    reached = reach_sql("better", "baseline", "value", "percent", "needs_both")
    rel = con.execute(
        f"""
WITH base AS (
  SELECT m.episode_id, m.instrument_id, arg_min(m.score, m.taken_at) AS baseline
  FROM measurements m JOIN ac_thresholds USING (instrument_id)
  GROUP BY ALL
), answers AS (
  SELECT a.episode_id, a.instrument_id, w.follow_up,
         arg_min(a.score, a.taken_at) AS score
  FROM after_care a
  JOIN ac_windows w ON coalesce(a.follow_up_day, a.after_discharge_days) BETWEEN w.lo AND w.hi
  GROUP BY ALL
), paired AS (
  SELECT b.instrument_id, w.follow_up, w.w_order, b.baseline, a.score,
         CASE WHEN t.worse THEN b.baseline - a.score ELSE a.score - b.baseline END AS better,
         t.value, t.percent, t.needs_both
  FROM base b
  JOIN episodes e USING (episode_id)
  CROSS JOIN ac_windows w
  JOIN ac_thresholds t ON t.instrument_id = b.instrument_id
  LEFT JOIN answers a
    ON a.episode_id = b.episode_id AND a.instrument_id = b.instrument_id
   AND a.follow_up = w.follow_up
  WHERE e.closed_on IS NOT NULL
    AND (e.closed_on + w.nominal <= ?::DATE OR a.score IS NOT NULL)
)
SELECT instrument_id, follow_up, any_value(w_order) AS w_order, count(*) AS due,
       count(score) AS answered,
       count(*) FILTER (WHERE score IS NOT NULL AND {reached}) AS kept
FROM paired GROUP BY ALL
ORDER BY instrument_id, w_order
""",
        [as_of],
    ).fetchall()
    library = instruments.library()
    rows = []
    for instrument_id, follow_up, _order, due, answered, kept in rel:
        inst = library[instrument_id]
        thr = meaningful_threshold(inst)
        basis = (thr.basis or "mcid").upper() if thr else "threshold"
        low, high = wilson(int(kept), int(answered))
        rows.append(
            AfterCareRow(
                instrument_id=instrument_id,
                instrument=inst.name,
                follow_up=follow_up,
                due=int(due),
                answered=int(answered),
                kept=int(kept),
                rate=kept / answered if answered else None,
                ci_low=low,
                ci_high=high,
                threshold=describe_threshold(thr, basis, inst.unit),
                source=thr.source if thr else "",
                status="measured" if answered else NOT_MEASURED,
            )
        )
    drugs = []
    found = {
        r[0]: (int(r[1]), int(r[2]))
        for r in con.execute("""
WITH entries AS (
  SELECT m.episode_id, m.drug, m.days_per_week, m.recorded_on, m.created_at,
         date_diff('day', e.closed_on, m.recorded_on) AS day
  FROM after_care_medication m JOIN episodes e USING (episode_id)
), per_drug AS (
  SELECT x.episode_id, w.follow_up, x.drug,
         arg_max(x.days_per_week, (x.recorded_on, x.created_at)) AS days
  FROM entries x JOIN ac_windows w ON x.day BETWEEN w.lo AND w.hi
  GROUP BY ALL
), per_episode AS (
  SELECT episode_id, follow_up, sum(days) AS days FROM per_drug GROUP BY ALL
)
SELECT follow_up, count(*), count(*) FILTER (WHERE days = 0) FROM per_episode GROUP BY ALL
""").fetchall()
    }
    for label, *_ in FOLLOW_UP_WINDOWS:
        logged, free = found.get(label, (0, 0))
        low, high = wilson(free, logged)
        drugs.append(
            AfterCareDrugs(
                follow_up=label,
                logged=logged,
                drug_free=free,
                share=free / logged if logged else None,
                ci_low=low,
                ci_high=high,
                status="measured" if logged else NOT_MEASURED,
            )
        )
    answers = int(con.execute("SELECT count(*) FROM after_care").fetchall()[0][0])
    con.unregister("ac_windows")
    con.unregister("ac_thresholds")
    return AfterCare(
        rows=rows,
        drugs=drugs,
        answers=answers,
        as_of=as_of,
        measured=any(r.answered for r in rows) or any(d.logged for d in drugs),
    )
