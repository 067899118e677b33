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

`--during-refresh` times instead what users see while the analytics refresh: a real
server (`needlepoint serve`) over an existing generated clinic (e.g. `needlepoint generate
--patients 20000 --seed 1 --db /tmp/a20k.db`), one client viewing the dashboard API, the
responder-table API and the /analytics page in turn. Phases: the first view (202 while the
first snapshot is prepared, then until it is ready); views of a current snapshot; views
after a chart view and a sign-in (which must not start a refresh); and views after a note
is signed in this (another) process, until the refresh it started is done. Prints per
phase the views' median, 95th percentile and maximum, and what they said (refreshing or
not). Goal: every view under 1 s, also while a refresh runs.

    .venv/bin/python bench/analytics.py --during-refresh --db /tmp/a20k.db [--views 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import numpy as np
import pandas as pd
import sqlalchemy as sa

from needlepoint.actions import consent, episodes, patients, screening, sessions
from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics import dataset
from needlepoint.analytics.dashboard import compute
from needlepoint.analytics.responders import (
    Z95,
    Workspace,
    headline,
    headline_from_facts,
    wilson_sql,
)
from needlepoint.domain.commands import (
    MeasurementIn,
    NeedlingSiteIn,
    OpenEpisode,
    RecordConsent,
    RecordScreening,
    RecordSession,
    RegisterPatient,
    RegisterUser,
    SignSession,
)
from needlepoint.domain.enums import (
    ConsentMethod,
    Role,
    Sex,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)
from needlepoint.domain.screening import questionnaire
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


# --- views during a refresh, over HTTP -------------------------------------------------

PASSWORD = "bench analytics password"
VIEWS = (
    ("dashboard API", "/api/v1/analytics/dashboard"),
    ("responders API", "/api/v1/analytics/benefits?dimension=condition"),
    ("/analytics page", "/analytics"),
)


@dataclass
class Bench:
    engine: sa.Engine
    clinic: UUID
    clinician: Actor  # a generated practitioner: writes the signed notes
    email: str  # the viewer's sign-in
    token: str
    patient: UUID
    episode: UUID


def prepare(path: Path) -> Bench:
    """In the generated clinic: a viewer with a password and an API token, and a new
    patient screened, consented and with an open episode (all through the actions)."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        clinic = conn.execute(
            sa.select(t.patients.c.clinic_id)
            .group_by(t.patients.c.clinic_id)
            .order_by(sa.func.count().desc())
            .limit(1)
        ).scalar_one()
        owner, clinician = (
            conn.execute(
                sa.select(t.users.c.id).where(
                    t.users.c.clinic_id == clinic, t.users.c.role == role.value
                )
            )
            .scalars()
            .first()
            for role in (Role.OWNER, Role.CLINICIAN)
        )
    assert owner is not None, "not a generated clinic"
    assert clinician is not None, "not a generated clinic"
    tag = uuid.uuid4().hex[:8]
    email = f"viewer-{tag}@bench.example"
    viewer = register_user(
        SqlUnitOfWork(engine),
        Actor(owner, clinic, source="cli"),
        RegisterUser(email=email, full_name="Bench Viewer", role=Role.CLINICIAN, password=PASSWORD),
    )
    token = issue_operator_token(SqlUnitOfWork(engine), viewer, "bench", source="cli")
    actor = Actor(clinician, clinic, source="cli")
    now = datetime.now(UTC)
    patient = patients.register_patient(
        SqlUnitOfWork(engine),
        actor,
        RegisterPatient(
            mrn=f"B-{tag}",
            given_name="Bea",
            family_name="Bench",
            birth_date=date(1975, 5, 5),
            sex=Sex.FEMALE,
        ),
    )
    screening.record_screening(
        SqlUnitOfWork(engine),
        actor,
        RecordScreening(
            patient_id=patient.id,
            answers={q.id: False for q in questionnaire().questions},
            screened_at=now - timedelta(hours=1),
        ),
    )
    consent.record_consent(
        SqlUnitOfWork(engine),
        actor,
        RecordConsent(
            patient_id=patient.id,
            template_id="dry_needling",
            template_version="1.0",
            signer_name="Bea Bench",
            method=ConsentMethod.TYPED_NAME,
            signed_at=now - timedelta(hours=1),
            copy_given=True,
        ),
    )
    episode = episodes.open_episode(
        SqlUnitOfWork(engine),
        actor,
        OpenEpisode(
            patient_id=patient.id,
            condition="neck_pain",
            onset_date=now.date() - timedelta(days=30),
            opened_on=now.date(),
        ),
    )
    return Bench(engine, clinic, actor, email, token, patient.id, episode.id)


def sign_a_note(b: Bench, nprs: int) -> None:
    """Record and sign a note of one needling site and an NPRS (another process than the
    server's: the server learns of it through the database)."""
    site = NeedlingSiteIn(
        muscle_id="upper_trapezius",
        side=Side.LEFT,
        trigger_point=TriggerPoint.ACTIVE,
        technique=Technique.PISTONING,
        needle_gauge_mm=0.25,
        needle_length_mm=30,
        depth_mm=12,
        insertions=4,
        tolerance=Tolerance.GOOD,
    )
    note = sessions.record_session(
        SqlUnitOfWork(b.engine),
        b.clinician,
        RecordSession(
            episode_id=b.episode,
            started_at=datetime.now(UTC),
            subjective="Neck pain.",
            sites=[site],
            measurements=[MeasurementIn(instrument_id="nprs", answers={"item1": nprs})],
        ),
    )
    sessions.sign_session(
        SqlUnitOfWork(b.engine),
        b.clinician,
        SignSession(session_id=note.id, expected_version=note.version),
    )


def refreshing(response: httpx.Response) -> bool:
    if response.headers.get("content-type", "").startswith("text/html"):
        return "refresh is in progress" in response.text or "being prepared" in response.text
    return response.headers.get("Analytics-Refreshing") == "true"


def view(client: httpx.Client, path: str, token: str) -> tuple[float, httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
    start = time.perf_counter()
    response = client.get(path, headers=headers)
    return time.perf_counter() - start, response


def report(phase: str, times: dict[str, list[float]], said: str) -> None:
    for name, ts in times.items():
        if not ts:
            continue
        ts = sorted(ts)
        p95 = ts[min(len(ts) - 1, round(0.95 * (len(ts) - 1)))]
        print(
            f"| {phase} | {name} | {len(ts)} | {statistics.median(ts) * 1000:.0f} ms "
            f"| {p95 * 1000:.0f} ms | {ts[-1] * 1000:.0f} ms | {said} |"
        )


def during_refresh(path: Path, views: int, port: int) -> None:
    b = prepare(path)
    server = subprocess.Popen(
        [sys.executable, "-m", "needlepoint.cli", "serve", "--db", str(path), "--port", str(port)],
        env={**os.environ, "NEEDLEPOINT_RATE_LIMIT": "0"},  # a benchmark, not a flood
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        for _ in range(600):
            try:
                if client.get("/login").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        signed = client.post(
            "/login", data={"email": b.email, "password": PASSWORD, "csrf": csrf[1]}
        )
        assert signed.status_code == 303, signed.status_code  # to the home page, signed in
        print("| phase | view | views | median | p95 | max | what the views said |")
        print("|---|---|---|---|---|---|---|")

        # 1. The first view: no snapshot yet.
        times: dict[str, list[float]] = {name: [] for name, _ in VIEWS}
        start, statuses = time.perf_counter(), set()
        while True:
            for name, p in VIEWS:
                took, r = view(client, p, b.token)
                times[name].append(took)
                statuses.add(r.status_code)
            if not any(refreshing(view(client, p, b.token)[1]) for _, p in VIEWS[:1]):
                break
        prepared = time.perf_counter() - start
        report("first view (no snapshot)", times, f"status {sorted(statuses)}: being prepared")
        print(f"|  | first snapshot ready after | | {prepared:.1f} s | | | |")

        # 2. Views of a current snapshot.
        times = {name: [] for name, _ in VIEWS}
        said = set()
        for _ in range(views):
            for name, p in VIEWS:
                took, r = view(client, p, b.token)
                times[name].append(took)
                said.add(refreshing(r))
        report("snapshot current", times, f"refreshing: {sorted(said)}")

        # 3. A chart view (its read-audit event) and a sign-in: no refresh.
        chart = client.get(
            f"/api/v1/patients/{b.patient}", headers={"Authorization": f"Bearer {b.token}"}
        )
        assert chart.status_code == 200, chart.text
        again = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        csrf = re.search(r'name="csrf" value="([^"]+)"', again.get("/login").text)
        assert csrf is not None
        again.post("/login", data={"email": b.email, "password": PASSWORD, "csrf": csrf[1]})
        times = {name: [] for name, _ in VIEWS}
        said = set()
        for _ in range(views):
            for name, p in VIEWS:
                took, r = view(client, p, b.token)
                times[name].append(took)
                said.add(refreshing(r))
        report("after a chart view and a sign-in", times, f"refreshing: {sorted(said)}")

        # 4. A note signed in another process: views during the refresh it starts.
        sign_a_note(b, nprs=6)
        times = {name: [] for name, _ in VIEWS}
        after = {name: [] for name, _ in VIEWS}
        start, done = time.perf_counter(), None
        while done is None or min(len(v) for v in after.values()) < views:
            for name, p in VIEWS:
                took, r = view(client, p, b.token)
                if refreshing(r):
                    times[name].append(took)
                else:
                    if name == VIEWS[0][0] and done is None:
                        done = time.perf_counter() - start
                    after[name].append(took)
        report("while refreshing after a signed note", times, "refreshing: the old snapshot")
        report("after the refresh", after, "refreshing: [False]")
        print(f"|  | refresh done after | | {done:.1f} s | | | |")
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--during-refresh",
        action="store_true",
        help="time the views of a real server while its analytics refresh (needs --db)",
    )
    parser.add_argument("--views", type=int, default=30, help="with --during-refresh")
    parser.add_argument("--port", type=int, default=8767, help="with --during-refresh")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="default /tmp/needlepoint-analytics-N.db"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the generated file if present")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.during_refresh:
        if args.db is None or not args.db.exists():
            parser.error("--during-refresh needs --db: a generated clinic's SQLite file")
        during_refresh(args.db, args.views, args.port)
        return
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
