"""Responder rates per benefit, with Wilson intervals and their denominators.

A `Workspace` is a DuckDB cursor on one `Snapshot` (the clinic's records as native
tables), with temporary views that derive, per episode, its descriptors (condition,
practitioner, technique, co-interventions, period, covariates) and, per benefit, whether it
has a complete pair (baseline and follow-up) and whether the change reached the published
threshold. The views are lazy:
a query computes only what it reads; `materialise()` stores the shared ones once.

How each benefit counts an episode (`CRITERIA` below, shown beside every rate):
- measured benefits (pain, ROM) and function / disability (reported beside the eight): the
  first of the benefit's instruments (in `evidence.yaml` order) with a baseline, a
  follow-up and a published threshold (`domain.responders` semantics: the responder
  threshold, i.e. the MCID or the MDC where the MCID lies inside it; absolute and/or
  percent as the instrument's data say; exactly at the threshold counts; the SQL comes
  from `reach_sql`, the same rule as `domain.responders.reaches`). Pairs on instruments
  without a threshold are counted, not rated.
- tissue healing: not measured (no routine clinic measure; a function score is not
  tissue healing).
- muscle relaxation: not measured. Counted as a proxy (`COUNTED`, status "proxy"): fewer
  needled muscles with an active trigger point at the last needled session than at the
  first (trigger-point status is not muscle relaxation; no published threshold).
- drug-free management: not measured (being drug-free after discharge is under After
  care). Counted as a proxy: fewer analgesic drug-days per week at the last log date than
  at the first (each drug's latest entry counts); episodes without analgesic use are not
  eligible.
- faster recovery: not judged (no comparator). Counted as a proxy: NPRS MCID reached by
  the sixth session.
- complementary care: NPRS MCID reached when needling was combined with exercise or
  manual therapy (the tile sets it beside needling without them).
- blood circulation: not measured."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from needlepoint.analytics.dataset import Dataset, Snapshot
from needlepoint.domain import instruments
from needlepoint.domain.benefits import benefits, describe_threshold
from needlepoint.domain.responders import meaningful_threshold

Z95 = 1.959963984540054
CHRONIC_AFTER_DAYS = 90  # symptoms for more than about three months: chronic
PROGNOSIS_SESSION = 6  # "MCID by the sixth session" (faster recovery, prognosis)
DIMENSIONS = ("overall", "condition", "practitioner", "technique", "co_intervention", "period")
_EPS = 1e-9

CRITERIA: dict[str, str] = {
    "pain_relief": "change reached the responder threshold of the first pain measure with a pair",
    "muscle_relaxation": "not measured: no clinic measure of muscle relaxation; counted "
    "instead, as a proxy, fewer needled muscles with an active trigger point at the last "
    "needled session than at the first (trigger-point status is not muscle relaxation; no "
    "published threshold)",
    "blood_circulation": "not measured",
    "tissue_healing": "not measured: no routine clinic measure of muscle tissue healing "
    "(a function score is not tissue healing)",
    "function_disability": "function score change reached its instrument's responder threshold",
    "flexibility_rom": "range of motion change reached the MDC where one is published",
    "complementary_care": "NPRS responder threshold reached, episodes combining needling with "
    "exercise or manual therapy, beside episodes of needling without them",
    "faster_recovery": "not judged: no comparator, so whether recovery was faster is not "
    f"judged; counted instead: the NPRS responder threshold reached by session "
    f"{PROGNOSIS_SESSION}",
    "drug_free_management": "not measured: being drug-free during care is not counted here; "
    "counted instead, as a proxy, fewer analgesic drug-days per week at the last log than at "
    "the first (fewer drug-days is not drug-free; no published threshold), episodes with "
    "analgesic use; the drug-free share after discharge is under After care",
}

MEASURED = "measured"
PROXY = "proxy"
NOT_MEASURED = "not measured"

# What each benefit's count counts, and whether that is the benefit itself ("measured"),
# a stand-in that is not the benefit ("proxy": the benefit itself is not measured), or
# nothing ("not measured"). A proxy's count is never called "responders".
COUNTED: dict[str, tuple[str, str | None]] = {
    "pain_relief": (MEASURED, "responders"),
    "muscle_relaxation": (PROXY, "fewer active trigger points"),
    "blood_circulation": (NOT_MEASURED, None),
    "tissue_healing": (NOT_MEASURED, None),
    "function_disability": (MEASURED, "responders"),
    "flexibility_rom": (MEASURED, "reached the MDC"),
    "complementary_care": (MEASURED, "responders"),
    "faster_recovery": (PROXY, f"NPRS threshold reached by session {PROGNOSIS_SESSION}"),
    "drug_free_management": (PROXY, "fewer analgesic drug-days"),
}

# The instruments whose responder threshold a benefit's count applies (shown with sources).
_THRESHOLD_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "complementary_care": ("nprs",),
    "faster_recovery": ("nprs",),
}


@dataclass(frozen=True, slots=True)
class ThresholdNote:
    """A threshold a count applies, as a clinician reads it, with its source."""

    instrument: str
    threshold: str
    source: str
    verified: bool


def thresholds_of(benefit_id: str) -> list[ThresholdNote]:
    """The published thresholds a benefit's count applies (from `instruments.yaml`, each
    with its source); none for a benefit counted without a published threshold."""
    library = instruments.library()
    if benefit_id in _THRESHOLD_INSTRUMENTS:
        ids: tuple[str, ...] = _THRESHOLD_INSTRUMENTS[benefit_id]
    elif COUNTED[benefit_id][0] == MEASURED:
        ids = tuple(next(b for b in benefits() if b.id == benefit_id).instruments)
    else:
        ids = ()
    out = []
    for i in ids:
        inst = library[i]
        thr = inst.responder
        if thr is None or (thr.value is None and thr.percent is None):
            continue
        name = inst.name
        if thr.applies_to:
            where = "; ".join(
                ", ".join(v.replace("_", " ") for v in values) for values in thr.applies_to.values()
            )
            name = f"{name}, {where} only"
        out.append(
            ThresholdNote(
                instrument=name,
                threshold=describe_threshold(thr, (thr.basis or "mcid").upper(), inst.unit),
                source=thr.source,
                verified=thr.verified,
            )
        )
    return out


def reach_sql(better: str, baseline: str, value: str, percent: str, both: str) -> str:
    """The SQL twin of `domain.responders.reaches`: whether an improvement `better` from
    `baseline` reaches a threshold of `value` and/or `percent` (SQL expressions or
    literals; NULL = not given), both needed when `both` is true, either otherwise. Every
    responder count of the analytics is built from this one expression."""
    pct = f"(({better}) / abs({baseline}) * 100 >= ({percent}) - {_EPS})"
    absolute = f"(({better}) >= ({value}) - {_EPS})"
    return (
        f"(({better}) > 0 AND CASE WHEN ({both}) THEN "
        f"(({value}) IS NULL OR {absolute}) AND "
        f"(({percent}) IS NULL OR ({baseline}) = 0 OR {pct}) "
        f"ELSE (({value}) IS NOT NULL AND {absolute}) OR "
        f"(({percent}) IS NOT NULL AND ({baseline}) <> 0 AND {pct}) END)"
    )


def _literal(x: float | None) -> str:
    return "NULL::DOUBLE" if x is None else f"{float(x)!r}::DOUBLE"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """The Wilson score interval of a proportion; (None, None) without a denominator."""
    if n <= 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_sql(k: str, n: str) -> tuple[str, str]:
    """The same interval as SQL expressions over count columns `k` and `n`."""
    z2 = Z95 * Z95
    p = f"({k})::DOUBLE / ({n})"
    centre = f"(({p}) + {z2} / (2.0 * ({n})))"
    half = f"({Z95} * sqrt(({p}) * (1 - ({p})) / ({n}) + {z2} / (4.0 * ({n}) * ({n}))))"
    denom = f"(1 + {z2} / ({n}))"
    lo = f"CASE WHEN ({n}) > 0 THEN greatest(0.0, ({centre} - {half}) / {denom}) END"
    hi = f"CASE WHEN ({n}) > 0 THEN least(1.0, ({centre} + {half}) / {denom}) END"
    return lo, hi


@dataclass(frozen=True, slots=True)
class ResponderRow:
    """One benefit's result in one group: never a rate without its denominator."""

    benefit: str
    dimension: str
    level: str
    level_id: str
    episodes: int  # episodes in the group
    eligible: int  # episodes the benefit applies to
    complete: int  # eligible episodes with a baseline and a follow-up (and a threshold)
    missing: int  # eligible episodes without a baseline and follow-up pair
    no_threshold: int  # pairs on a measure without a published threshold (not rated)
    # What `responders` counts (`counted`): episodes whose change reached the published
    # threshold ("responders") only where the benefit is measured; for a proxy (`status`
    # "proxy": the benefit itself is not measured) what the proxy counts. None (and no
    # rate) where nothing was counted: `status` "not measured", never a count of 0.
    responders: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    criterion: str
    status: str = MEASURED  # "measured", "proxy" or "not measured"
    counted: str | None = "responders"


def _thresholds(series_keys: list[tuple[int, str, str, str, str, str, str]]) -> pa.Table:
    """The meaningful threshold of each series present (series id, instrument and context),
    from the instrument library, so SQL applies exactly the domain's rule."""
    library = instruments.library()
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "series_id",
            "instrument_id",
            "joint",
            "movement",
            "side",
            "site",
            "location",
            "value",
            "percent",
            "needs_both",
            "worse",
        )
    }
    for key in series_keys:
        inst = library.get(key[1])
        if inst is None:
            continue
        context = dict(zip(("joint", "movement", "side", "site", "location"), key[2:], strict=True))
        thr = meaningful_threshold(inst, {k: v for k, v in context.items() if v})
        for name, value in zip(rows, key, strict=False):
            rows[name].append(value)
        rows["value"].append(thr.value if thr else None)
        rows["percent"].append(thr.percent if thr else None)
        rows["needs_both"].append(thr is not None and thr.combine == "both")
        rows["worse"].append(inst.higher_is == "worse")
    return pa.table(
        {
            "series_id": pa.array(rows["series_id"], pa.int32()),
            **{k: pa.array(rows[k], pa.string()) for k in list(rows)[1:7]},
            "value": pa.array(rows["value"], pa.float64()),
            "percent": pa.array(rows["percent"], pa.float64()),
            "needs_both": pa.array(rows["needs_both"], pa.bool_()),
            "worse": pa.array(rows["worse"], pa.bool_()),
        }
    )


def _benefit_instruments() -> pa.Table:
    library = instruments.library()
    names, ids, pos = [], [], []
    for b in benefits():
        for i, inst in enumerate(b.instruments):
            if library[inst].change == "from_baseline" and library[inst].recorded_as in (
                None,
                "measurement",
            ):
                names.append(b.id)
                ids.append(inst)
                pos.append(i)
    return pa.table({"benefit": names, "instrument_id": ids, "pos": pos})


_MATERIALISED = (
    "session_order",
    "nprs_points",
    "series",
    "nprs_course",
    "episode_facts",
    "measured_outcomes",
    "episode_outcomes",
)


class Workspace:
    """A cursor on a snapshot's tables, with the episode-level views (temporary: each
    workspace derives its own; a `Dataset` given instead is made into a snapshot first)."""

    def __init__(self, data: Dataset | Snapshot, *, threads: int | None = None) -> None:
        self.snapshot = data if isinstance(data, Snapshot) else Snapshot(data, threads=threads)
        self.con = self.snapshot.cursor()
        self.con.register("benefit_instruments", _benefit_instruments())
        self.con.register("thresholds", _thresholds([]))  # filled on first use
        self._thresholds_ready = False
        nprs = meaningful_threshold(instruments.library()["nprs"])
        assert nprs is not None
        self.nprs_value = nprs.value
        self.nprs_percent = nprs.percent
        self.nprs_both = nprs.combine == "both"
        self.materialised = False

    def nprs_reach(self, better: str, baseline: str) -> str:
        """SQL: the improvement `better` from `baseline` reaches the NPRS responder
        threshold (the same rule as every other measure, via `reach_sql`)."""
        return reach_sql(
            better,
            baseline,
            _literal(self.nprs_value),
            _literal(self.nprs_percent),
            "true" if self.nprs_both else "false",
        )

    def sql(self, query: str, params: list[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Run a query on the workspace."""
        self._ensure_thresholds()
        return self.con.sql(query, params=params)

    def one(self, query: str) -> tuple[Any, ...]:
        """The first row of a query's result."""
        rows = self.sql(query).fetchall()
        assert rows, query
        return tuple(rows[0])

    def rows(self, query: str) -> list[dict[str, Any]]:
        rel = self.sql(query)
        names = rel.columns
        return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]

    def series_of(self, instrument_id: str, alias: str = "") -> str:
        """A condition on measurements: the instrument's series, as literal series ids (an
        integer test that skips the other series' row groups, not a comparison of text)."""
        ids = [
            str(r[0])
            for r in self.con.execute(
                "SELECT series_id FROM measurement_series WHERE instrument_id = ?", [instrument_id]
            ).fetchall()
        ]
        column = f"{alias}.series_id" if alias else "series_id"
        return f"{column} IN ({', '.join(ids)})" if ids else "false"

    def _ensure_thresholds(self) -> None:
        """Define the views and find the threshold of every series present (one pass over
        the measurements), on first use."""
        if self._thresholds_ready:
            return
        self._define_views()  # on first use: the headline table reads the base tables only
        keys = self.con.sql(
            "SELECT series_id, instrument_id, joint, movement, side, site, location "
            "FROM measurement_series WHERE instrument_id IN "
            "(SELECT instrument_id FROM benefit_instruments)"
        ).fetchall()
        self.con.register("thresholds", _thresholds([tuple(k) for k in keys]))
        self._thresholds_ready = True

    def materialise(self) -> None:
        """Compute the shared views once, in dependency order (the dashboard reads each
        several times)."""
        if self.materialised:
            return
        self._ensure_thresholds()
        for view in _MATERIALISED:
            self.con.execute(f"CREATE TEMP TABLE {view}_t AS SELECT * FROM {view}")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {view}_t")
        self.materialised = True

    def _define_views(self) -> None:
        reach_nprs = self.nprs_reach("b.baseline - m.score", "b.baseline")
        reach_any = reach_sql("better", "baseline", "value", "percent", "needs_both")
        ranges = {
            i.id: i.score_range
            for i in instruments.library().values()
            if i.id in _FUNCTION_INSTRUMENTS
        }
        self.con.register(
            "function_ranges",
            pa.table(
                {
                    "instrument_id": list(ranges),
                    "lo": [float(r[0]) for r in ranges.values()],
                    "hi": [float(r[1]) for r in ranges.values()],
                }
            ),
        )
        self.con.execute(f"""
CREATE TEMP VIEW session_order AS
SELECT session_id, episode_id, started_at,
       row_number() OVER (PARTITION BY episode_id ORDER BY started_at, session_id) AS ordinal
FROM sessions;

CREATE TEMP VIEW nprs_points AS
SELECT m.episode_id, m.score, m.taken_at, coalesce(o.ordinal, 0) AS ordinal
FROM measurements m LEFT JOIN session_order o ON o.session_id = m.session_id
WHERE {self.series_of("nprs", "m")};

CREATE TEMP VIEW nprs_course AS
WITH b AS (
  SELECT episode_id, count(*) AS n, arg_min(score, taken_at) AS baseline,
         arg_max(score, taken_at) AS latest, min(taken_at) AS first_at,
         max(taken_at) AS last_at, max(ordinal) AS last_ordinal
  FROM nprs_points GROUP BY episode_id
), r AS (
  SELECT m.episode_id, min(m.taken_at) AS mcid_at, min(m.ordinal) AS mcid_ordinal
  FROM nprs_points m JOIN b USING (episode_id)
  WHERE m.taken_at > b.first_at AND {reach_nprs}
  GROUP BY m.episode_id
)
SELECT b.*, r.mcid_at, r.mcid_ordinal FROM b LEFT JOIN r USING (episode_id);

CREATE TEMP VIEW plan_flags AS
SELECT episode_id,
       bool_or(modality = 'exercise') AS exercise,
       bool_or(modality = 'manual_therapy') AS manual_therapy
FROM plan GROUP BY episode_id;

CREATE TEMP VIEW episode_technique AS
SELECT episode_id, first(technique ORDER BY sites DESC, technique) AS technique
FROM (SELECT episode_id, technique, sum(sites) AS sites FROM techniques GROUP BY ALL)
GROUP BY episode_id;

CREATE TEMP VIEW episode_sessions AS
SELECT episode_id, count(*) AS sessions FROM sessions GROUP BY episode_id;

CREATE TEMP VIEW series AS
SELECT episode_id, series_id, count(*) AS n, arg_min(score, taken_at) AS baseline,
       arg_max(score, taken_at) AS latest
FROM measurements
WHERE series_id IN (SELECT series_id FROM thresholds)
GROUP BY ALL;

CREATE TEMP VIEW function_course AS
SELECT s.episode_id, t.instrument_id, s.baseline, s.latest, s.n,
       (CASE WHEN t.worse THEN s.baseline - s.latest ELSE s.latest - s.baseline END
         * 100.0 / nullif(i.hi - i.lo, 0)) AS change_pct,
       CASE WHEN t.worse THEN s.baseline - i.lo ELSE i.hi - s.baseline END
         * 100.0 / nullif(i.hi - i.lo, 0) AS baseline_pct
FROM series s JOIN thresholds t USING (series_id)
JOIN function_ranges i USING (instrument_id)
QUALIFY row_number() OVER (PARTITION BY s.episode_id ORDER BY s.n DESC, t.instrument_id) = 1;

CREATE TEMP VIEW episode_facts AS
SELECT e.episode_id, e.patient_id, e.practitioner_id, e.practitioner, e.condition,
       e.status, e.sex, e.opened_on, e.closed_on,
       date_diff('day', e.onset_date, e.opened_on) > {CHRONIC_AFTER_DAYS} AS chronic,
       floor(date_diff('day', e.birth_date, e.opened_on) / 365.25) AS age,
       coalesce(p.exercise, false) AS exercise,
       coalesce(p.manual_therapy, false) AS manual_therapy,
       CASE WHEN coalesce(p.exercise, false) AND coalesce(p.manual_therapy, false)
              THEN 'needling + exercise + manual therapy'
            WHEN coalesce(p.exercise, false) THEN 'needling + exercise'
            WHEN coalesce(p.manual_therapy, false) THEN 'needling + manual therapy'
            ELSE 'needling alone' END AS co_intervention,
       strftime(e.opened_on, '%Y') || '-Q' || quarter(e.opened_on) AS period,
       coalesce(t.technique, 'none recorded') AS technique,
       coalesce(s.sessions, 0) AS sessions,
       n.n AS nprs_n, n.baseline AS nprs_baseline, n.latest AS nprs_latest,
       n.first_at AS nprs_first_at, n.last_at AS nprs_last_at, n.last_ordinal,
       n.mcid_at, n.mcid_ordinal,
       f.instrument_id AS function_instrument, f.n AS function_n,
       f.baseline_pct AS function_baseline_pct, f.change_pct AS function_change_pct
FROM episodes e
LEFT JOIN plan_flags p USING (episode_id)
LEFT JOIN episode_technique t USING (episode_id)
LEFT JOIN episode_sessions s USING (episode_id)
LEFT JOIN nprs_course n USING (episode_id)
LEFT JOIN function_course f USING (episode_id);

CREATE TEMP VIEW measured_outcomes AS
WITH s AS (
  SELECT bi.benefit, bi.pos, s.episode_id, s.n,
         (t.value IS NOT NULL OR t.percent IS NOT NULL) AS has_threshold,
         CASE WHEN t.worse THEN s.baseline - s.latest ELSE s.latest - s.baseline END AS better,
         s.baseline, t.value, t.percent, t.needs_both
  FROM series s
  JOIN thresholds t USING (series_id)
  JOIN benefit_instruments bi USING (instrument_id)
), u AS (
  SELECT *, n >= 2 AND has_threshold AS usable,
         n >= 2 AND {reach_any} AS reached
  FROM s
), ranked AS (
  SELECT *, min(CASE WHEN usable THEN pos END)
              OVER (PARTITION BY episode_id, benefit) AS best
  FROM u
)
SELECT episode_id, benefit, true AS eligible, bool_or(usable) AS complete,
       bool_or(n >= 2) AND NOT bool_or(usable) AS no_threshold,
       coalesce(bool_or(reached) FILTER (WHERE usable AND pos = best), false) AS responder
FROM ranked GROUP BY episode_id, benefit;

CREATE TEMP VIEW trigger_point_outcomes AS
WITH s AS (
  SELECT o.episode_id, x.active_trigger_points AS active, o.ordinal
  FROM sites x JOIN session_order o USING (session_id)
)
SELECT episode_id, 'muscle_relaxation' AS benefit, true AS eligible,
       count(*) >= 2 AS complete, false AS no_threshold,
       count(*) >= 2 AND arg_max(active, ordinal) < arg_min(active, ordinal) AS responder
FROM s GROUP BY episode_id;

CREATE TEMP VIEW analgesic_days AS
WITH latest_per_drug AS (
  SELECT episode_id, drug, drug_class,
         arg_min(days_per_week, (recorded_on, created_at)) AS first_days,
         arg_max(days_per_week, (recorded_on, created_at)) AS last_days,
         min(recorded_on) AS first_on
  FROM medication GROUP BY ALL
), first_day AS (
  SELECT episode_id, min(recorded_on) AS first_on, count(DISTINCT recorded_on) AS log_days
  FROM medication GROUP BY episode_id
)
SELECT l.episode_id, l.drug_class,
       sum(CASE WHEN l.first_on = f.first_on THEN l.first_days ELSE 0 END) AS before_days,
       sum(l.last_days) AS after_days, any_value(f.log_days) AS log_days
FROM latest_per_drug l JOIN first_day f USING (episode_id)
GROUP BY l.episode_id, l.drug_class;

CREATE TEMP VIEW analgesic_outcomes AS
SELECT episode_id, 'drug_free_management' AS benefit, true AS eligible,
       any_value(log_days) >= 2 AS complete, false AS no_threshold,
       any_value(log_days) >= 2 AND sum(after_days) < sum(before_days) AS responder
FROM analgesic_days GROUP BY episode_id;

CREATE TEMP VIEW derived_outcomes AS
SELECT episode_id, 'faster_recovery' AS benefit, nprs_n >= 1 AS eligible,
       nprs_n >= 2 AND (mcid_ordinal <= {PROGNOSIS_SESSION}
         OR last_ordinal >= {PROGNOSIS_SESSION} OR status = 'closed') AS complete,
       false AS no_threshold,
       coalesce(mcid_ordinal <= {PROGNOSIS_SESSION}, false) AS responder
FROM episode_facts WHERE nprs_n IS NOT NULL
UNION ALL
SELECT f.episode_id, 'complementary_care', true, coalesce(m.complete, false),
       coalesce(m.no_threshold, false), coalesce(m.responder, false)
FROM episode_facts f LEFT JOIN measured_outcomes m
  ON m.episode_id = f.episode_id AND m.benefit = 'pain_relief'
WHERE f.exercise OR f.manual_therapy;

CREATE TEMP VIEW episode_outcomes AS
SELECT * FROM measured_outcomes
UNION ALL SELECT * FROM trigger_point_outcomes
UNION ALL SELECT * FROM analgesic_outcomes
UNION ALL SELECT * FROM derived_outcomes;
""")


_FUNCTION_INSTRUMENTS = ("ndi", "odi", "quickdash", "lefs", "psfs", "psfs_2")


def responder_table(ws: Workspace) -> list[ResponderRow]:
    """Every benefit × dimension × level: episodes, eligible, complete pairs, missing,
    responders, rate and 95 % Wilson interval."""
    ws.materialise()
    names = [b.id for b in benefits()]
    ws.con.register("benefit_names", pa.table({"benefit": names, "b_order": range(len(names))}))
    dims = {
        "condition": ("condition", "condition"),
        "practitioner": ("practitioner", "practitioner_id"),
        "technique": ("technique", "technique"),
        "co_intervention": ("co_intervention", "co_intervention"),
        "period": ("period", "period"),
    }
    sets = ", ".join(["()"] + [f"({label}, {key})" for label, key in dims.values()])
    sets_b = ", ".join(["(o.benefit)"] + [f"(o.benefit, {a}, {b})" for a, b in dims.values()])
    flag = " || ".join(
        f"CASE WHEN GROUPING({key}) = 0 THEN '{d}' ELSE '' END" for d, (_, key) in dims.items()
    )
    level = "coalesce(" + ", ".join(label for label, _ in dims.values()) + ", 'all episodes')"
    level_id = "coalesce(" + ", ".join(key for _, key in dims.values()) + ", 'all')"
    rel = ws.sql(f"""
WITH groups AS (
  SELECT coalesce(nullif({flag}, ''), 'overall') AS dimension, {level} AS level,
         {level_id} AS level_id, count(*) AS episodes
  FROM episode_facts GROUP BY GROUPING SETS ({sets})
), agg AS (
  SELECT coalesce(nullif({flag}, ''), 'overall') AS dimension, {level_id} AS level_id,
         o.benefit,
         count(*) FILTER (WHERE o.eligible) AS eligible,
         count(*) FILTER (WHERE o.eligible AND o.complete) AS complete,
         count(*) FILTER (WHERE o.eligible AND o.no_threshold) AS no_threshold,
         count(*) FILTER (WHERE o.eligible AND o.complete AND o.responder) AS responders
  FROM episode_outcomes o JOIN episode_facts f USING (episode_id)
  GROUP BY GROUPING SETS ({sets_b})
)
SELECT b.benefit, g.dimension, g.level, g.level_id, g.episodes,
       coalesce(a.eligible, CASE WHEN b.benefit IN ('blood_circulation', 'pain_relief',
         'tissue_healing', 'function_disability', 'flexibility_rom', 'muscle_relaxation')
         THEN g.episodes ELSE 0 END)
         AS eligible,
       coalesce(a.complete, 0) AS complete, coalesce(a.no_threshold, 0) AS no_threshold,
       coalesce(a.responders, 0) AS responders
FROM groups g CROSS JOIN benefit_names b
LEFT JOIN agg a ON a.dimension = g.dimension AND a.level_id = g.level_id
  AND a.benefit = b.benefit
ORDER BY b.b_order, list_position({list(DIMENSIONS)!r}, g.dimension), g.level
""")
    out = []
    for benefit, dim, level, level_id, n, eligible, complete, no_thr, resp in rel.fetchall():
        low, high = wilson(resp, complete)
        kind, counted = COUNTED[benefit]
        status = NOT_MEASURED if kind == NOT_MEASURED or not complete else kind
        out.append(
            ResponderRow(
                benefit=benefit,
                dimension=dim,
                level=level,
                level_id=level_id,
                episodes=n,
                eligible=eligible,
                complete=complete,
                missing=eligible - complete - no_thr,
                no_threshold=no_thr,
                responders=resp if complete else None,
                rate=resp / complete if complete else None,
                ci_low=low,
                ci_high=high,
                criterion=CRITERIA[benefit],
                status=status,
                counted=counted,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class HeadlineRow:
    condition: str
    episodes: int
    complete: int
    missing: int
    responders: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


def headline(ws: Workspace) -> list[HeadlineRow]:
    """The headline table: NPRS responders by condition (baseline → latest reached the
    responder threshold), with complete pairs, missing pairs and the 95 % Wilson interval."""
    lo, hi = wilson_sql("responders", "complete")
    reached = ws.nprs_reach("n.baseline - n.latest", "n.baseline")
    rows = ws.con.sql(f"""
WITH c AS (
  SELECT e.condition, count(*) AS episodes,
         count(*) FILTER (WHERE n.n >= 2) AS complete,
         count(*) FILTER (WHERE n.n >= 2 AND {reached}) AS responders
  FROM episodes e LEFT JOIN (
    SELECT episode_id, count(*) AS n, arg_min(score, taken_at) AS baseline,
           arg_max(score, taken_at) AS latest
    FROM measurements WHERE {ws.series_of("nprs")} GROUP BY episode_id
  ) n USING (episode_id)
  GROUP BY e.condition
)
SELECT condition, episodes, complete, episodes - complete, responders,
       CASE WHEN complete > 0 THEN responders / complete END, {lo}, {hi}
FROM c ORDER BY condition
""").fetchall()
    return [HeadlineRow(*r) for r in rows]


def headline_from_facts(ws: Workspace) -> list[HeadlineRow]:
    """The headline table from the workspace's materialised episode facts (what the
    dashboard holds once computed): the same numbers as `headline`."""
    ws.materialise()
    lo, hi = wilson_sql("responders", "complete")
    reached = ws.nprs_reach("nprs_baseline - nprs_latest", "nprs_baseline")
    rows = ws.sql(f"""
WITH c AS (
  SELECT condition, count(*) AS episodes, count(*) FILTER (WHERE nprs_n >= 2) AS complete,
         count(*) FILTER (WHERE nprs_n >= 2 AND {reached}) AS responders
  FROM episode_facts GROUP BY condition
)
SELECT condition, episodes, complete, episodes - complete, responders,
       CASE WHEN complete > 0 THEN responders / complete END, {lo}, {hi}
FROM c ORDER BY condition
""").fetchall()
    return [HeadlineRow(*r) for r in rows]
