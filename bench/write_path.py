"""Write-path benchmark: complete session notes through the JSON API, in process.

Each note has 4 needling sites, an NPRS and a ROM measurement. The API path parses and
validates the request, authenticates the token, runs the `record_session` action (tenant
and permission checks, domain rules, scoring, audit digest) and commits one transaction.
The baseline inserts the same 8 rows (session, 4 sites, 2 measurements, audit event) with
plain SQLAlchemy Core, one transaction per session (the audit event linked into the
clinic's hash chain, as the API does). Target: API >= 0.5 x baseline.

    .venv/bin/python bench/write_path.py [--sessions 500] [--pg URL | --no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from needlepoint.actions.context import Actor
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.domain.audit import GENESIS, row_hash
from needlepoint.synthetic.ready_patient import ready_patient
from needlepoint.web.app import create_app

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
# What the API stores with each note below: the upper trapezius lies over the lung apex.
FLAGS = [
    {"rule": "thorax_pneumothorax", "action": "warn", "site": 0},
    {"rule": "lung_apex", "action": "warn", "site": 0},
]


def site(muscle: str, side: str = "left", depth: float = 15) -> dict[str, Any]:
    return {
        "muscle_id": muscle,
        "side": side,
        "trigger_point": "active",
        "technique": "pistoning",
        "needle_gauge_mm": 0.25,
        "needle_length_mm": 30,
        "depth_mm": depth,
        "insertions": 4,
        "local_twitch_responses": 2,
        "tolerance": "good",
    }


def note(episode_id: uuid.UUID, i: int) -> dict[str, Any]:
    return {
        "episode_id": str(episode_id),
        "started_at": (START + timedelta(hours=i)).isoformat(),
        "subjective": "Neck pain 5/10.",
        "objective": "Active TrPs.",
        "assessment": "Improving.",
        "plan": "Continue.",
        "sites": [
            site("upper_trapezius"),
            site("levator_scapulae"),
            site("splenius_capitis", "right"),
            site("cervical_multifidus", depth=20),
        ],
        "measurements": [
            {"instrument_id": "nprs", "answers": {"item1": 5}},
            {
                "instrument_id": "rom",
                "answers": {"item1": 64},
                "context": {"joint": "cervical_spine", "movement": "rotation", "side": "left"},
            },
        ],
    }


def setup(engine: sa.Engine) -> tuple[str, uuid.UUID, Actor]:
    """A trained clinician's API token, and an open episode of a screened, consented
    patient (needling is checked on every note)."""
    ready = ready_patient(engine, ready_at=START, clinic_name="Bench", with_token=True)
    assert ready.token is not None
    return ready.token, ready.episode.id, ready.actor


def api_path(engine: sa.Engine, n: int) -> float:
    """POST each note through the ASGI app in this process (one event loop, as under
    uvicorn; no network), one request after another.

    The requests are handed to the app as ASGI messages, as a server would, rather than
    through an HTTP client library: the figure is the server's cost (middleware, routing,
    token check, validation, the action, the response), not the client's."""
    token, episode_id, _ = setup(engine)
    app = create_app(engine, secret_key="b" * 40, rate_limit=None)
    bodies = [orjson.dumps(note(episode_id, i)) for i in range(n + 20)]
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]

    async def post(body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/v1/sessions",
            "raw_path": b"/api/v1/sessions",
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        response: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            response.append(message)

        await app(scope, receive, send)
        if response[0]["status"] != 201:
            text = b"".join(m.get("body", b"") for m in response[1:]).decode()
            raise SystemExit(f"API refused a note: {response[0]['status']} {text}")

    async def run() -> float:
        for body in bodies[:20]:  # warm-up
            await post(body)
        started = time.perf_counter()
        for body in bodies[20:]:
            await post(body)
        return n / (time.perf_counter() - started)

    rate = asyncio.run(run())
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(t.sessions.c.safety_flags).where(t.sessions.c.episode_id == episode_id)
        ).scalars()
        if any(flags != FLAGS for flags in stored):
            raise SystemExit("the baseline no longer writes the rows the API writes (flags)")
    return rate


def core_baseline(engine: sa.Engine, n: int) -> float:
    _, episode_id, actor = setup(engine)
    with engine.connect() as conn:
        patient_id = conn.execute(
            sa.select(t.episodes.c.patient_id).where(t.episodes.c.id == episode_id)
        ).scalar_one()

    def rows(i: int) -> dict[sa.Table, list[dict[str, Any]]]:
        sid, now, at = uuid.uuid4(), datetime.now(UTC), START + timedelta(hours=i)
        common = {"clinic_id": actor.clinic_id}
        body = note(episode_id, i)
        return {
            t.sessions: [
                {
                    **common,
                    "id": sid,
                    "patient_id": patient_id,
                    "episode_id": episode_id,
                    "clinician_id": actor.user_id,
                    "started_at": at,
                    "subjective": "s",
                    "objective": "o",
                    "assessment": "a",
                    "plan": "p",
                    "status": "draft",
                    "created_at": now,
                    "updated_at": now,
                    "signed_by": None,
                    "signed_at": None,
                    "version": 1,
                    "safety_flags": FLAGS,
                    "cpt_code": None,
                    "billing_muscles": None,
                }
            ],
            t.needling_sites: [
                {
                    **common,
                    **s,
                    "id": uuid.uuid4(),
                    "session_id": sid,
                    "position": k,
                    "electrical_stimulation": False,
                    "estim_params": None,
                    "notes": None,
                    "override_reason": None,
                }
                for k, s in enumerate(body["sites"])
            ],
            t.measurements: [
                {
                    **common,
                    "id": uuid.uuid4(),
                    "patient_id": patient_id,
                    "instrument_id": m["instrument_id"],
                    "instrument_version": "1.0",
                    "answers": m["answers"],
                    "taken_at": at,
                    "recorded_by": actor.user_id,
                    "created_at": now,
                    "score": float(m["answers"]["item1"]),
                    "episode_id": episode_id,
                    "session_id": sid,
                    "context": m.get("context"),
                }
                for m in body["measurements"]
            ],
            t.audit_events: [
                {
                    **common,
                    "id": uuid.uuid4(),
                    "action": "session.recorded",
                    "entity_type": "session",
                    "entity_id": sid,
                    "occurred_at": now,
                    "source": "bench",
                    "actor_user_id": actor.user_id,
                    "patient_id": patient_id,
                    "before_digest": None,
                    "after_digest": "0" * 64,
                    "request_id": None,
                }
            ],
        }

    heads = t.audit_chain_heads
    head_q = sa.select(heads.c.last_seq, heads.c.last_hash).where(
        heads.c.clinic_id == actor.clinic_id
    )
    if engine.dialect.name != "sqlite":
        head_q = head_q.with_for_update()

    def one(i: int) -> None:
        with engine.begin() as conn:
            data = rows(i)
            # The audit event extends the clinic's hash chain, as the API's does.
            seq, prev = conn.execute(head_q).first() or (0, GENESIS)
            event = data[t.audit_events][0]
            event.update(outcome="success", source_address=None, seq=seq + 1, prev_hash=prev)
            event["hash"] = row_hash(event)
            for table, values in data.items():
                conn.execute(table.insert(), values)

    for i in range(20):
        one(i)
    started = time.perf_counter()
    for i in range(n):
        one(i)
    return n / (time.perf_counter() - started)


def measure(name: str, make: Callable[[], sa.Engine], n: int, repeats: int) -> None:
    api, base = [], []
    for _ in range(repeats):
        api.append(api_path(make(), n))
        base.append(core_baseline(make(), n))
    a, b = statistics.median(api), statistics.median(base)
    print(
        f"{name:<11} API {a:8.1f} sessions/s   Core baseline {b:8.1f} sessions/s   "
        f"ratio {a / b:4.2f}  (target >= 0.50; median of {repeats} runs of {n})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine load (1 min) before: {load:.2f} on {os.cpu_count()} cores")
    if load > 1.0:  # the bench itself keeps about one core busy
        print("  (busy machine: other processes compete for the CPU and the disk's fsyncs)")

    with tempfile.TemporaryDirectory() as tmp:

        def sqlite_engine() -> sa.Engine:
            engine = make_engine(f"sqlite:///{Path(tmp) / (uuid.uuid4().hex + '.db')}")
            upgrade(engine)
            return engine

        measure("SQLite", sqlite_engine, args.sessions, args.repeats)

    if args.no_pg:
        return
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL  skipped: not reachable at {args.pg} ({exc.orig})", file=sys.stderr)
        return
    name = f"needlepoint_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(sa.engine.make_url(args.pg).set(database=name))
    try:
        upgrade(engine)
        measure("PostgreSQL", lambda: engine, args.sessions, args.repeats)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
