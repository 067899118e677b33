"""A clinic's day under load: the real server (`needlepoint serve`, a separate process,
over HTTP on loopback) and simulated clinicians, each looping through a visit:

    search patients (API) · search patients (page) · open the chart (page) ·
    read a note (API) · record a complete note: 3–4 needling sites and an NPRS (API) ·
    sign it (API) · open the episode's progress page (page)

at 1, 5, 20, 50 and 100 concurrent clinicians, on SQLite and PostgreSQL, against a
synthetic clinic of 2,000 patients. Each level runs for a bounded time and a bounded
number of requests, then stops by itself. Printed per level: requests per second,
p50/p95/p99 per request type, errors (any answer other than the expected one; 503s
counted apart), the server's CPU (all its processes) and memory.

Goals on the 2-core machine (application and database sharing the cores), from issue 12:
zero errors and no deadlock at every level; at 50 and 100 clients at least 90 % of the
peak throughput; at 20 clients ≥ 230 req/s on SQLite and ≥ 150 req/s on PostgreSQL
(baseline: the single-client figures of the old request path, 115 and 59 req/s); p95
under 100 ms at 20 clients and under 300 ms at 100. The clinicians do not pause between
requests (a closed loop), so the mean latency is clients ÷ throughput (Little's law): the
summary prints it, and the throughput below which each p95 goal cannot be met.

    .venv/bin/python bench/clinic_day.py [--db sqlite|postgresql|both] [--levels 1,5,20]
        [--seconds 20] [--workers N] [--patients 2000] [--pg URL]

The load generator is one asyncio process (uvloop) with one aiohttp session (own cookies,
one keep-alive connection) per clinician; it shares the two cores with the server, as a
real clinic's browsers would not, so the figures are a floor. (aiohttp costs about a
quarter of httpx's CPU per request here: 0.85 against 3.75 ms on the loaded machine.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import aiohttp
import httpx
import sqlalchemy as sa
import uvloop

from needlepoint.actions import consent, episodes, screening
from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.tables import patients, sessions
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.bootstrap import open_database
from needlepoint.domain.catalogue import Region
from needlepoint.domain.commands import (
    OpenEpisode,
    PlanItemIn,
    RecordConsent,
    RecordScreening,
    RegisterUser,
    TrainingCourse,
)
from needlepoint.domain.enums import ConsentMethod, Modality, Role
from needlepoint.domain.screening import questionnaire
from needlepoint.synthetic.clinic import generate_clinic

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "clinic-day-password-1"
CLINICIANS = 12
READY_EPISODES = 1500  # one visit a patient at most levels: histories stay a clinic's
MUSCLES = ("upper_trapezius", "levator_scapulae", "splenius_capitis", "cervical_multifidus")
KINDS = (
    "search_api",
    "search_page",
    "chart_page",
    "read_note",
    "record_note",
    "sign_note",
    "progress_page",
)
MAX_REQUESTS_PER_LEVEL = 60_000
BASELINE = {"sqlite": 115.0, "postgresql": 59.0}  # the old path, 1 client (issue 12)
GOAL_20 = {"sqlite": 230.0, "postgresql": 150.0}
P95_GOAL = {20: 0.100, 100: 0.300}  # seconds, at these many clients (issue 12)


# --- the clinic --------------------------------------------------------------------------


@dataclass
class Clinic:
    url: str
    emails: list[str]
    tokens: list[str]
    episodes: list[tuple[str, str]]  # (patient id, episode id), ready to needle
    names: list[str]  # family names to search for
    note_ids: list[str]  # signed notes to read


def build_clinic(url: str, n_patients: int) -> Clinic:
    """Generate the synthetic clinic, add clinicians (password and API token) and make
    `READY_EPISODES` patients ready to needle today (screened, consented, episode open),
    all through the actions."""
    engine = open_database(url)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = generate_clinic(
            engine,
            patients_count=n_patients,
            seed=1,
            truth_path=Path(tmp) / "truth.json",
            clinic_name="Clinic Day",
        )
    owner = Actor(report.owner_id, report.clinic_id, source="cli")
    emails, tokens = [], []
    for i in range(CLINICIANS):
        email = f"clinician{i}-{uuid.uuid4().hex[:6]}@clinic-day.example"
        user = register_user(
            SqlUnitOfWork(engine),
            owner,
            RegisterUser(
                email=email,
                full_name=f"Clinician {i}",
                role=Role.CLINICIAN,
                password=PASSWORD,
                licence_number=f"PT-DAY-{i:04d}",
                licence_date=date(2018, 6, 1),
                training=[
                    TrainingCourse(
                        provider="Synthetic Institute",
                        course="Dry needling",
                        hours_in_person=54,
                        completed_on=date(2020, 1, 1),
                        exam_passed=True,
                        regions=list(get_args(Region)),
                    )
                ],
            ),
        )
        emails.append(email)
        tokens.append(issue_operator_token(SqlUnitOfWork(engine), user, "clinic day"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(patients.c.id, patients.c.family_name)
            .where(
                patients.c.clinic_id == report.clinic_id,
                patients.c.birth_date < date.today() - timedelta(days=366 * 19),  # adults
            )
            .order_by(patients.c.mrn)
            .limit(READY_EPISODES)
        ).all()
        note_ids = [
            str(r[0])
            for r in conn.execute(
                sa.select(sessions.c.id)
                .where(sessions.c.clinic_id == report.clinic_id, sessions.c.status == "signed")
                .limit(200)
            )
        ]
    now = datetime.now(UTC).replace(microsecond=0)
    clinician = Actor(report.owner_id, report.clinic_id, source="cli")
    ready = []
    clear = {q.id: False for q in questionnaire().questions}
    for patient_id, _name in rows:
        screening.record_screening(
            SqlUnitOfWork(engine),
            clinician,
            RecordScreening(
                patient_id=patient_id, screened_at=now - timedelta(hours=2), answers=clear
            ),
        )
        consent.record_consent(
            SqlUnitOfWork(engine),
            clinician,
            RecordConsent(
                patient_id=patient_id,
                template_id="dry_needling",
                template_version="1.0",
                signed_at=now - timedelta(hours=2),
                signer_name="Clinic Day Patient",
                method=ConsentMethod.TYPED_NAME,
                copy_given=True,
            ),
        )
        episode = episodes.open_episode(
            SqlUnitOfWork(engine),
            clinician,
            OpenEpisode(
                patient_id=patient_id,
                condition="neck_pain",
                onset_date=now.date() - timedelta(days=30),
                opened_on=now.date() - timedelta(days=1),
                goals="Turn the head fully to drive",
                plan=[PlanItemIn(modality=Modality.DRY_NEEDLING)],
            ),
        )
        ready.append((str(patient_id), str(episode.id)))
    engine.dispose()
    print(
        f"  clinic: {n_patients} patients, {report.sessions} sessions, {CLINICIANS} "
        f"clinicians, {len(ready)} episodes ready ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return Clinic(url, emails, tokens, ready, sorted({r[1][:3] for r in rows}), note_ids)


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workers: int | None) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("needlepoint")
    cmd = [str(exe), "serve", "--db", url, "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    # Many clinicians behind one load generator: no API rate limit for the benchmark.
    env = {
        **os.environ,
        "NEEDLEPOINT_SECRET_KEY": "clinic-day-" + "k" * 40,
        "NEEDLEPOINT_RATE_LIMIT": "0",
    }
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _tree(pid: int) -> list[int]:
    """The server and its worker processes."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in found or int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(set(found))


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds used so far by the server and each of its processes."""
    used: dict[int, float] = {}
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# --- the clinicians --------------------------------------------------------------------------


@dataclass
class Answer:
    """What a clinician's browser got back: status, final address and body."""

    status_code: int
    url: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Browser:
    """One clinician's browser: its own cookies and one keep-alive connection. aiohttp on
    uvloop rather than httpx: the load generator shares the two cores with the server, and
    every CPU cycle it spends is one the server does not get."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
            connector=aiohttp.TCPConnector(limit=1),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def request(self, method: str, path: str, **options: Any) -> Answer:
        async with self.session.request(method, self.base + path, **options) as r:
            return Answer(r.status, str(r.url), await r.text())

    async def get(self, path: str, **options: Any) -> Answer:
        return await self.request("GET", path, **options)

    async def post(self, path: str, **options: Any) -> Answer:
        return await self.request("POST", path, **options)

    async def aclose(self) -> None:
        await self.session.close()


CLIENT_ERRORS = (aiohttp.ClientError, TimeoutError)


@dataclass
class Stats:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    busy: int = 0
    wall: float = 0.0  # the measured window: after the sign-ins, until the last answer
    server_cpu: float = 0.0
    process_cpu: list[float] = field(default_factory=list)
    own_cpu: float = 0.0
    requests: int = 0
    samples: list[str] = field(default_factory=list)


async def sign_in(client: Browser, email: str) -> None:
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, "no sign-in form"
    r = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf[1]})
    if r.status_code not in (200, 303) or "/login" in str(r.url):
        raise RuntimeError(f"sign-in failed: {r.status_code}")


def note_body(episode_id: str, rng: random.Random, when: datetime) -> dict[str, Any]:
    side = rng.choice(("left", "right"))
    sites = [
        {
            "muscle_id": m,
            "side": side,  # one side a visit: both sides of the thorax need an override
            "trigger_point": "active",
            "technique": "static",
            "needle_gauge_mm": 0.25,
            "needle_length_mm": 30,
            "depth_mm": 15,
            "insertions": 2,
            "local_twitch_responses": 1,
            "tolerance": "good",
        }
        for m in rng.sample(MUSCLES, rng.choice((3, 4)))
    ]
    return {
        "episode_id": episode_id,
        "started_at": when.isoformat(),
        "subjective": "Neck pain, worse at the desk.",
        "objective": "Active trigger points.",
        "assessment": "Myofascial neck pain.",
        "plan": "Needle weekly; exercise daily.",
        "sites": sites,
        "measurements": [{"instrument_id": "nprs", "answers": {"item1": rng.randint(2, 8)}}],
    }


async def clinician(
    n: int,
    client: Browser,
    clinic: Clinic,
    stop: float,
    stats: Stats,
    rng: random.Random,
) -> None:
    """One signed-in clinician's loop of visits until `stop`."""
    token = clinic.tokens[n % len(clinic.tokens)]
    api = {"Authorization": f"Bearer {token}"}
    note_id = rng.choice(clinic.note_ids)
    while time.monotonic() < stop and stats.requests < MAX_REQUESTS_PER_LEVEL:
        patient_id, episode_id = rng.choice(clinic.episodes)
        name = rng.choice(clinic.names)
        when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=rng.randint(1, 50))
        steps: list[tuple[str, str, str, dict[str, Any], int]] = [
            (
                "search_api",
                "GET",
                "/api/v1/patients",
                {"params": {"q": name}, "headers": api},
                200,
            ),
            ("search_page", "GET", "/patients", {"params": {"q": name}}, 200),
            ("chart_page", "GET", f"/patients/{patient_id}", {}, 200),
            ("read_note", "GET", f"/api/v1/sessions/{note_id}", {"headers": api}, 200),
        ]
        for kind, method, path, options, expected in steps:
            if time.monotonic() >= stop:  # no new request after the window closes
                return
            await _timed(client, stats, kind, method, path, options, expected)
        if time.monotonic() >= stop:
            return
        r = await _timed(
            client,
            stats,
            "record_note",
            "POST",
            "/api/v1/sessions",
            {"json": note_body(episode_id, rng, when), "headers": api},
            201,
        )
        if r is not None and time.monotonic() < stop:
            note = r.json()
            r = await _timed(
                client,
                stats,
                "sign_note",
                "POST",
                f"/api/v1/sessions/{note['id']}/sign",
                {"headers": {**api, "If-Match": f'"{note["version"]}"'}},
                200,
            )
            if r is not None:
                note_id = note["id"]
        if time.monotonic() >= stop:
            return
        await _timed(
            client, stats, "progress_page", "GET", f"/episodes/{episode_id}/progress", {}, 200
        )


async def _timed(
    client: Browser,
    stats: Stats,
    kind: str,
    method: str,
    path: str,
    options: dict[str, Any],
    expected: int,
) -> Answer | None:
    started = time.perf_counter()
    try:
        r = await client.request(method, path, **options)
    except CLIENT_ERRORS as exc:
        stats.errors[kind] += 1
        if len(stats.samples) < 5:
            stats.samples.append(f"{kind}: {type(exc).__name__} {exc}")
        return None
    stats.times[kind].append(time.perf_counter() - started)
    stats.requests += 1
    if r.status_code == expected and "/login" not in str(r.url):
        return r
    if r.status_code == 503:
        stats.busy += 1
    stats.errors[kind] += 1
    if len(stats.samples) < 5:
        stats.samples.append(f"{kind}: {r.status_code} {r.text[:200]}")
    return None


async def run_level(
    base: str, clinic: Clinic, clients: int, seconds: float, server_pid: int
) -> Stats:
    """Sign every clinician in (not timed: argon2 is slow on purpose, and a clinic's
    day is not a sign-in storm), then run the visits for `seconds`. The window measured
    (wall time, server CPU, this process's CPU) starts after the sign-ins and ends when
    the last request in flight at the stop time has answered."""
    stats = Stats()
    rng = random.Random(clients)
    browsers = [Browser(base) for _ in range(clients)]
    gate = asyncio.Semaphore(4)

    async def signed_in(i: int) -> None:
        async with gate:
            await sign_in(browsers[i], clinic.emails[i % len(clinic.emails)])

    try:
        await asyncio.gather(*(signed_in(i) for i in range(clients)))
        cpu0, t0, own0 = cpu_by_process(server_pid), time.perf_counter(), time.process_time()
        stop = time.monotonic() + seconds
        await asyncio.gather(
            *(
                clinician(i, browsers[i], clinic, stop, stats, random.Random(rng.random()))
                for i in range(clients)
            )
        )
        stats.wall = time.perf_counter() - t0
        cpu1 = cpu_by_process(server_pid)
        # Per process: an uneven share shows connections bunched on one worker.
        stats.process_cpu = sorted(
            (cpu1[p] - cpu0.get(p, 0.0) for p in cpu1 if cpu1[p] - cpu0.get(p, 0.0) > 0.01),
            reverse=True,
        )
        stats.server_cpu = sum(stats.process_cpu)
        stats.own_cpu = time.process_time() - own0
    finally:
        for b in browsers:
            await b.aclose()
    return stats


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(db: str, clients: int, stats: Stats, wall: float, cpu: float, mem: float) -> float:
    rate = stats.requests / wall
    errors = sum(stats.errors.values())
    all_times = [t for ts in stats.times.values() for t in ts]
    print(
        f"\n{db} · {clients} clients · {rate:.0f} req/s · p50 {pct(all_times, 0.5):.0f} ms · "
        f"p95 {pct(all_times, 0.95):.0f} ms · p99 {pct(all_times, 0.99):.0f} ms · "
        f"errors {errors} (503: {stats.busy}) · server CPU {cpu / wall * 100:.0f} % "
        f"({' + '.join(f'{c / wall * 100:.0f}' for c in stats.process_cpu)}) · "
        f"RSS {mem:.0f} MB",
        flush=True,
    )
    for kind in KINDS:
        ts = stats.times.get(kind, [])
        print(
            f"    {kind:<14} n={len(ts):>6}  p50 {pct(ts, 0.5):7.1f}  p95 {pct(ts, 0.95):7.1f}"
            f"  p99 {pct(ts, 0.99):7.1f} ms  errors {stats.errors.get(kind, 0)}"
        )
    for sample in stats.samples:
        print(f"    e.g. {sample}")
    return rate


def bench_database(
    db: str, url: str, levels: list[int], seconds: float, workers: int | None, n: int
) -> None:
    print(f"\n== {db}: building the clinic", flush=True)
    clinic = build_clinic(url, n)
    port = free_port()
    proc = start_server(url, port, workers)
    base = f"http://127.0.0.1:{port}"
    rates: dict[int, float] = {}
    p95: dict[int, float] = {}
    try:
        print(f"  server: pid {proc.pid}, {len(_tree(proc.pid))} process(es)", flush=True)
        for clients in levels:
            stats = uvloop.run(run_level(base, clinic, clients, seconds, proc.pid))
            wall, cpu = stats.wall, stats.server_cpu
            print(
                f"  (load generator CPU {stats.own_cpu / wall * 100:.0f} % of a core)",
                flush=True,
            )
            rates[clients] = report(db, clients, stats, wall, cpu, rss_mb(proc.pid))
            all_times = [t for ts in stats.times.values() for t in ts]
            p95[clients] = pct(all_times, 0.95)
            if proc.poll() is not None:
                raise RuntimeError("the server died")
    finally:
        stop_server(proc)
    peak = max(rates.values())
    print(f"\n{db} summary (baseline: old path at 1 client, {BASELINE[db]:.0f} req/s):")
    for clients, rate in rates.items():
        notes = []
        if clients >= 50:
            notes.append(f"{rate / peak:.0%} of peak (goal ≥ 90 %)")
        if clients == 20:
            notes.append(f"goal ≥ {GOAL_20[db]:.0f} req/s")
        if clients in P95_GOAL:
            goal = P95_GOAL[clients]
            notes.append(
                f"p95 goal < {goal * 1000:.0f} ms, reachable only above {clients / goal:.0f} req/s"
            )
        print(
            f"  {clients:>3} clients: {rate:6.0f} req/s = {rate / BASELINE[db]:.2f}× baseline, "
            f"p95 {p95[clients]:.0f} ms, mean {clients / rate * 1000:.0f} ms  " + "; ".join(notes)
        )
    print(
        "  (each clinician sends the next request as soon as the last answers: by Little's "
        "law the mean latency is clients ÷ throughput, and a p95 below a bound needs at "
        "least clients ÷ bound requests a second even if every request took as long)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--levels", default="1,5,20,50,100")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--pg", default=os.environ.get("NEEDLEPOINT_TEST_PG", PG_DEFAULT))
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/clinic-day.db"
            bench_database("sqlite", url, levels, args.seconds, args.workers, args.patients)
    if args.db in ("postgresql", "both"):
        admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
        name = f"needlepoint_clinic_day_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.engine.make_url(args.pg).set(database=name).render_as_string(False)
            bench_database("postgresql", url, levels, args.seconds, args.workers, args.patients)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
