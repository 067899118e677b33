"""Analytics benchmark: the clinic dashboard over a registry of 100,000 patients.

Builds (or, with --reuse, reuses) a generated clinic in an SQLite file under /tmp, with the
registry protocol (`synthetic.model.REGISTRY`: returning patients, pressure pain thresholds
and ROM at every session): about 141,000 episodes, 940,000 sessions and 4.2 million
measurements for 100,000 patients. Loads it once into Arrow tables and copies those into
the analytics snapshot (native DuckDB tables): both timed and reported, not part of the
dashboard figure (done once per state of the records). Then times:

1. the full dashboard computation (episode facts, responder table over 5 dimensions x 8
   benefits, Kaplan–Meier curves and log-rank tests, medication, safety, tiles), first
   with the model fitting (two mixed models, logistic model with 5-fold CV), then with
   the fitted models cached, as the web app does; each run derives everything afresh in
   a workspace of its own;
2. the headline responder table (NPRS responders by condition with Wilson intervals)
   through `analytics.responders.headline`, including setting up its workspace;
3. the same table as one hand-written DuckDB SQL query on a cursor of the same snapshot;
4. the same table in straightforward pandas, from pandas' own form of the same snapshot
   (its tables as DataFrames: integer keys, object strings), then again with the strings
   made categorical (pandas' dictionary coding). Neither engine's timing includes load.

Goals: dashboard < 2 s; headline <= 1.5 x hand-written SQL; headline >= 10 x faster
than pandas. Generating 100,000 registry patients takes about 10 minutes: build once,
then --reuse. Timings are medians; the machine's other load shows in them.

    .venv/bin/python bench/analytics.py [--patients 100000] [--db PATH] [--reuse] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd

from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.analytics import dataset
from needlepoint.analytics.dashboard import compute
from needlepoint.analytics.responders import (
    Z95,
    Workspace,
    headline,
    headline_from_facts,
    wilson_sql,
)
from needlepoint.domain.enums import Role
from needlepoint.queries.reader import Reader
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.synthetic.model import REGISTRY

SEED = 2026


def best_and_median(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def build(path: Path, patients: int, reuse: bool) -> dict[str, Any]:
    truth_path = path.with_suffix(".json")
    if reuse and path.exists() and truth_path.exists():
        print(f"reusing {path}")
        return dict(json.loads(truth_path.read_text()))
    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    start = time.perf_counter()
    report = generate_clinic(
        engine, patients_count=patients, seed=SEED, truth_path=truth_path, protocol=REGISTRY
    )
    print(
        f"generated {patients:,} patients, {len(report.truth['episodes']):,} episodes, "
        f"{report.sessions:,} sessions in "
        f"{time.perf_counter() - start:.0f} s -> {path}"
    )
    engine.dispose()
    return dict(json.loads(truth_path.read_text()))


def hand_written_sql(snapshot: dataset.Snapshot) -> list[tuple[Any, ...]]:
    """The headline table as one SQL query, written by hand for this one table, on a cursor
    of the same snapshot."""
    con = snapshot.cursor()
    lo, hi = wilson_sql("responders", "complete")
    return con.sql(f"""
WITH n AS (
  SELECT episode_id, count(*) AS n, arg_min(score, taken_at) AS b, arg_max(score, taken_at) AS l
  FROM measurements WHERE instrument_id = 'nprs' GROUP BY episode_id
), c AS (
  SELECT e.condition, count(*) AS episodes, count(*) FILTER (WHERE n.n >= 2) AS complete,
         count(*) FILTER (WHERE n.n >= 2 AND b - l > 0 AND (b - l >= 2 - 1e-9
           OR (b <> 0 AND (b - l) / abs(b) * 100 >= 30 - 1e-9))) AS responders
  FROM episodes e LEFT JOIN n USING (episode_id) GROUP BY e.condition
)
SELECT condition, episodes, complete, episodes - complete, responders,
       CASE WHEN complete > 0 THEN responders / complete END, {lo}, {hi}
FROM c ORDER BY condition
""").fetchall()


def with_pandas(episodes: pd.DataFrame, measurements: pd.DataFrame) -> pd.DataFrame:
    """The headline table in straightforward pandas."""
    nprs = measurements[measurements["instrument_id"] == "nprs"].sort_values("taken_at")
    per = nprs.groupby("episode_id")["score"].agg(["count", "first", "last"])
    merged = episodes[["episode_id", "condition"]].merge(
        per, left_on="episode_id", right_index=True, how="left"
    )
    better = merged["first"] - merged["last"]
    merged["complete"] = merged["count"] >= 2
    merged["responder"] = (
        merged["complete"]
        & (better > 0)
        & (
            (better >= 2 - 1e-9)
            | ((merged["first"] != 0) & (better / merged["first"].abs() * 100 >= 30 - 1e-9))
        )
    )
    table = merged.groupby("condition", observed=True).agg(
        episodes=("episode_id", "size"),
        complete=("complete", "sum"),
        responders=("responder", "sum"),
    )
    n, k = table["complete"].astype(float), table["responders"].astype(float)
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    table["missing"] = table["episodes"] - table["complete"]
    table["rate"], table["ci_low"], table["ci_high"] = p, centre - half, centre + half
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="default /tmp/needlepoint-analytics-N.db"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the generated file if present")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = args.db or Path(f"/tmp/needlepoint-analytics-{args.patients}.db")
    truth = build(path, args.patients, args.reuse)

    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        reader = Reader(conn, UUID(truth["clinic_id"]), Role.OWNER, UUID(int=0))
        start = time.perf_counter()
        data = dataset.load(reader)
        load_s = time.perf_counter() - start
    rows = {name: t.num_rows for name, t in data.tables().items()}
    print(
        f"registry: {len(data.episodes):,} episodes, {rows['sessions']:,} sessions, "
        f"{rows['measurements']:,} measurements, {rows['adverse_events']:,} adverse events"
    )
    snapshot = dataset.Snapshot(data)
    print(
        f"load SQLite -> Arrow {load_s:.2f} s, Arrow -> DuckDB tables {snapshot.built_in_s:.2f} s "
        f"(once a state of the records)"
    )

    start = time.perf_counter()
    first, fitted = compute(snapshot)
    first_s = time.perf_counter() - start
    print(f"dashboard, first computation with model fitting: {first_s:.2f} s  {first.timings_s}")
    print(f"first dashboard after a load, all told: {load_s + snapshot.built_in_s + first_s:.1f} s")
    best, median, result = best_and_median(lambda: compute(snapshot, fitted)[0], args.repeat)
    print(
        f"dashboard, models cached: best {best:.3f} s, median {median:.3f} s  "
        f"{result.timings_s}  (goal < 2 s: {'met' if median < 2 else 'NOT met'})"
    )

    _ours_best, ours, table = best_and_median(lambda: headline(Workspace(snapshot)), args.repeat)
    _sql_best, sql, hand = best_and_median(lambda: hand_written_sql(snapshot), args.repeat)
    assert [(r.condition, r.complete, r.responders) for r in table] == [
        (h[0], h[2], h[4]) for h in hand
    ], "the two SQL versions disagree"
    # pandas from its own form of the same snapshot: the tables as DataFrames (pandas' own
    # dtypes: integer keys, float scores, datetime64, object strings); then the same frames
    # with the strings made categorical, pandas' dictionary coding
    frames = (snapshot.con.table("episodes").df(), snapshot.con.table("measurements").df())
    _pd_best, pdm, pandas_table = best_and_median(lambda: with_pandas(*frames), args.repeat)
    assert list(pandas_table["responders"]) == [r.responders for r in table], "pandas disagrees"
    coded = tuple(
        f.astype({c: "category" for c in f.columns if f[c].dtype == object}) for f in frames
    )
    _pc_best, pdc, coded_table = best_and_median(lambda: with_pandas(*coded), args.repeat)
    assert list(coded_table["responders"]) == [r.responders for r in table], "pandas disagrees"
    ws = Workspace(snapshot)
    ws.materialise()
    _, facts, from_facts = best_and_median(lambda: headline_from_facts(ws), args.repeat)
    assert from_facts == table, "the headline from the episode facts disagrees"
    print(f"headline table (analytics.responders.headline): median {ours * 1000:.1f} ms")
    print(f"headline from the dashboard's episode facts:   median {facts * 1000:.1f} ms")
    print(f"hand-written DuckDB SQL:                       median {sql * 1000:.1f} ms")
    print(f"pandas:                                        median {pdm * 1000:.1f} ms")
    print(f"pandas, strings as categoricals:               median {pdc * 1000:.1f} ms")
    print(
        f"ratio headline / hand-written SQL: {ours / sql:.2f} x (goal <= 1.5: "
        f"{'met' if ours / sql <= 1.5 else 'NOT met'})"
    )
    print(
        f"speed-up over pandas: {pdm / ours:.1f} x from the snapshot's tables (goal >= 10: "
        f"{'met' if pdm / ours >= 10 else 'NOT met'}); {pdc / ours:.1f} x over pandas with "
        f"categorical strings ({'met' if pdc / ours >= 10 else 'NOT met'}); "
        f"{pdm / facts:.0f} x from the dashboard's materialised episode facts (not like for like)"
    )
    for r in table:
        print(
            f"  {r.condition:24s} {r.responders:6d}/{r.complete:<6d} {100 * (r.rate or 0):5.1f} % "
            f"({100 * (r.ci_low or 0):.1f}-{100 * (r.ci_high or 0):.1f}); missing {r.missing}"
        )


if __name__ == "__main__":
    main()
