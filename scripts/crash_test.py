"""Crash test: acknowledged writes survive SIGKILL of the server.

Writers post complete session notes (and read them back, which writes read-audit events)
through the JSON API of a real server (uvicorn in a subprocess on 127.0.0.1). At a random
moment the server is killed with SIGKILL, then restarted; after the last round the script
checks, straight in the database, that

* every write the server acknowledged (HTTP 201) is there,
* no session is half written (each has all its sites, measurements and co-interventions,
  and its audit event),
* the database's own integrity check passes (SQLite `PRAGMA integrity_check`; PostgreSQL:
  foreign keys hold and every index is usable by a full scan),
* the audit trail's hash chain verifies.

    .venv/bin/python scripts/crash_test.py [--db sqlite|postgresql|both] [--kills 20]
        [--max-seconds 900] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Exit status 0 when nothing was lost. Every loop is bounded in count and in time; the server
only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.queries.audit import verify_chains
from needlepoint.synthetic.ready_patient import ready_patient

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
WRITERS = 3
SITES, MEASUREMENTS, CO_INTERVENTIONS = 4, 2, 1


@dataclass
class Tally:
    kills: int = 0
    attempted: int = 0
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def note(episode_id: uuid.UUID, i: int) -> dict[str, Any]:
    site = {
        "side": "left",
        "trigger_point": "active",
        "technique": "pistoning",
        "needle_gauge_mm": 0.25,
        "needle_length_mm": 30,
        "depth_mm": 15,
        "insertions": 3,
        "local_twitch_responses": 1,
        "tolerance": "good",
    }
    muscles = ["upper_trapezius", "levator_scapulae", "splenius_capitis", "cervical_multifidus"]
    return {
        "episode_id": str(episode_id),
        "started_at": datetime(2026, 3, 1, 9, tzinfo=UTC).isoformat(),
        "subjective": f"crash test note {i}",
        "objective": "o",
        "assessment": "a",
        "plan": "p",
        "sites": [{**site, "muscle_id": m} for m in muscles[:SITES]],
        "co_interventions": [{"modality": "exercise", "description": "Chin tucks", "minutes": 5}],
        "measurements": [
            {"instrument_id": "nprs", "answers": {"item1": i % 11}},
            {
                "instrument_id": "rom",
                "answers": {"item1": 60},
                "context": {"joint": "cervical_spine", "movement": "rotation", "side": "left"},
            },
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, data_dir: Path, deadline: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NEEDLEPOINT_SECRET_KEY": "crash-test-" + "x" * 32,
        "NEEDLEPOINT_DATA_DIR": str(data_dir),
        # One token writing as fast as it can: the API rate limit would refuse it.
        "NEEDLEPOINT_RATE_LIMIT": "0",
    }
    # One process: the test kills it to crash the writer (a supervisor's workers would
    # outlive a killed supervisor).
    cmd = [sys.executable, "-m", "needlepoint.cli", "serve", "--db", url, "--host", HOST]
    cmd += ["--workers", "1"]
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [*cmd, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    until = min(deadline, time.monotonic() + 60)
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited at start-up (status {proc.returncode})")
        try:
            if (
                httpx.get(f"http://{HOST}:{port}/api/v1/openapi.json", timeout=10).status_code
                == 200
            ):
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start within 60 s")


def writer(
    port: int, token: str, episode_id: uuid.UUID, tally: Tally, stop: threading.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10) as client:
        for i in range(100_000):  # bounded; the kill ends it much sooner
            if stop.is_set():
                return
            with tally.lock:
                tally.attempted += 1
            try:
                r = client.post("/api/v1/sessions", json=note(episode_id, i))
            except httpx.HTTPError:
                return  # the server died: this write was never acknowledged
            if r.status_code != 201:
                with tally.lock:
                    tally.errors.append(f"unexpected answer {r.status_code}: {r.text[:200]}")
                return
            sid = uuid.UUID(r.json()["id"])
            with tally.lock:
                tally.acknowledged.append(sid)
            if i % 3 == 0:  # reads write audit events too
                try:
                    client.get(f"/api/v1/sessions/{sid}")
                except httpx.HTTPError:
                    return


def setup(url: str) -> tuple[str, uuid.UUID]:
    """A clinic, a clinician's API token and an open episode to write notes into (the
    patient screened and consented: needling is checked on every note)."""
    engine = make_engine(url)
    upgrade(engine)
    ready = ready_patient(
        engine,
        ready_at=datetime(2026, 2, 1, 10, tzinfo=UTC),
        clinic_name="Crash Test Clinic",
        with_token=True,
    )
    engine.dispose()
    assert ready.token is not None
    return ready.token, ready.episode.id


def check(url: str, tally: Tally) -> tuple[int, list[str]]:
    """(losses, problems) found in the database after the last kill."""
    engine = make_engine(url)
    problems: list[str] = []
    with engine.connect() as conn:
        present = set(conn.execute(sa.select(t.sessions.c.id)).scalars())
        lost = [sid for sid in tally.acknowledged if sid not in present]
        children = {}
        for table, expected in (
            (t.needling_sites, SITES),
            (t.measurements, MEASUREMENTS),
            (t.co_interventions, CO_INTERVENTIONS),
        ):
            counts = dict(
                conn.execute(
                    sa.select(table.c.session_id, sa.func.count()).group_by(table.c.session_id)
                ).all()
            )
            children[table.name] = counts
            half = [s for s in present if counts.get(s, 0) != expected]
            if half:
                problems.append(f"{len(half)} sessions with {table.name} missing")
        audited = set(
            conn.execute(
                sa.select(t.audit_events.c.entity_id).where(
                    t.audit_events.c.action == "session.recorded"
                )
            ).scalars()
        )
        if present - audited:
            problems.append(f"{len(present - audited)} sessions without their audit event")
        if engine.dialect.name == "sqlite":
            result = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
            if result != ["ok"]:
                problems.append(f"integrity_check: {result[:3]}")
            fk = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if fk:
                problems.append(f"foreign_key_check: {fk[:3]}")
        else:
            for table in t.metadata.sorted_tables:  # every heap and index readable
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            orphans = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.needling_sites)
                .outerjoin(t.sessions, t.sessions.c.id == t.needling_sites.c.session_id)
                .where(t.sessions.c.id.is_(None))
            ).scalar_one()
            if orphans:
                problems.append(f"{orphans} needling sites without their session")
        report = verify_chains(conn)
        if not report.ok:
            problems.append(f"audit chain broken: {report.breaks[0]}")
    engine.dispose()
    print(
        f"  sessions in the database {len(present)}, audit events {report.events} "
        f"in {report.clinics} chain(s), chain {'OK' if report.ok else 'BROKEN'}"
    )
    return len(lost), problems


def run(url: str, kills: int, max_seconds: float, seed: int) -> bool:
    """Run the crash test against `url`; True when no acknowledged write was lost."""
    rng = random.Random(seed)  # noqa: S311 - when to kill, not a secret
    deadline = time.monotonic() + max_seconds
    token, episode_id = setup(url)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="needlepoint-crash-") as data_dir:
        for _ in range(kills):
            if time.monotonic() > deadline:
                print("  time limit reached: stopping early")
                break
            port = free_port()
            proc = start_server(url, port, Path(data_dir), deadline)
            stop = threading.Event()
            threads = [
                threading.Thread(target=writer, args=(port, token, episode_id, tally, stop))
                for _ in range(WRITERS)
            ]
            for th in threads:
                th.start()
            time.sleep(rng.uniform(0.2, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            tally.kills += 1
            stop.set()
            for th in threads:
                th.join(timeout=30)
    losses, problems = check(url, tally)
    problems += tally.errors[:5]
    print(
        f"  kills {tally.kills}, writes attempted {tally.attempted}, "
        f"acknowledged {len(tally.acknowledged)}, lost {losses}"
    )
    for p in problems:
        print(f"  PROBLEM: {p}")
    return losses == 0 and not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg", default=os.environ.get("NEEDLEPOINT_TEST_PG", DEFAULT_PG))
    args = parser.parse_args(argv)
    ok = True
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="needlepoint-crash-db-") as folder:
            print("SQLite")
            ok &= run(f"sqlite:///{folder}/crash.db", args.kills, args.max_seconds, args.seed)
    if args.db in ("postgresql", "both"):
        admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
        name = f"needlepoint_crash_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError as exc:
            print(f"PostgreSQL skipped: not reachable at {args.pg}: {exc.orig}")
            return 0 if ok else 1
        url = sa.engine.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
        try:
            print("PostgreSQL")
            ok &= run(url, args.kills, args.max_seconds, args.seed)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print("OK: no acknowledged write lost" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
