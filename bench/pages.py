"""Page benchmark: server time of the patient chart and the progress page for a patient
with 500 signed sessions (3 needling sites and an NPRS each; ROM every 10th session, NDI
every 30th; a re-screening every 80 days). Goal: under 100 ms each on this machine.

The patient is built through the actions (bulk unit of work: the same actions, one flush).
Each page is requested as ASGI messages straight into the app, as uvicorn would hand them
over, so the figure is the server's cost (middleware, session, queries, rendering).

    .venv/bin/python bench/pages.py [--sessions 500] [--repeat 30] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions import screening, sessions
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import BulkUnitOfWork
from needlepoint.domain.commands import (
    MeasurementIn,
    NeedlingSiteIn,
    RecordScreening,
    RecordSession,
    SignSession,
)
from needlepoint.domain.enums import Modality
from needlepoint.domain.screening import questionnaire
from needlepoint.synthetic.ready_patient import ready_patient
from needlepoint.web.app import create_app

PASSWORD = "bench-password-123"
MUSCLES = ("upper_trapezius", "levator_scapulae", "splenius_capitis", "cervical_multifidus")


def build_patient(engine: sa.Engine, n: int) -> tuple[str, uuid.UUID, uuid.UUID]:
    """A clinic, a clinician and one patient with `n` signed sessions; returns the
    clinician's email, the patient id and the episode id."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2 * n + 2)
    ready = ready_patient(
        engine,
        ready_at=start,
        clinic_name="Bench",
        password=PASSWORD,
        screened=False,  # re-screened every 80 days below
        plan=(Modality.DRY_NEEDLING, Modality.EXERCISE),
    )
    actor, patient, episode, signed = ready.actor, ready.patient, ready.episode, ready.consent
    bulk = BulkUnitOfWork(engine)
    bulk.preload([signed])  # the bulk unit of work lists only records it knows
    no = {q.id: False for q in questionnaire().questions}
    for i in range(n):
        at = start + timedelta(days=2 * i, hours=1)
        if i % 40 == 0:  # every 80 days, within the default 90-day validity
            screening.record_screening(
                bulk,
                actor,
                RecordScreening(
                    patient_id=patient.id, answers=no, screened_at=at - timedelta(minutes=30)
                ),
            )
        measures = [MeasurementIn(instrument_id="nprs", answers={"item1": 7 - (5 * i) // n})]
        if i % 10 == 0:
            measures.append(
                MeasurementIn(
                    instrument_id="rom",
                    answers={"item1": 50 + (20 * i) // n},
                    context={"joint": "cervical_spine", "movement": "rotation", "side": "left"},
                )
            )
        if i % 30 == 0:
            measures.append(
                MeasurementIn(instrument_id="ndi", answers={f"item{k}": 2 for k in range(1, 11)})
            )
        sites = [
            NeedlingSiteIn(
                muscle_id=MUSCLES[(i + k) % len(MUSCLES)],
                side="left",
                trigger_point="active" if i < n // 2 else "latent",
                technique="pistoning",
                needle_gauge_mm=0.25,
                needle_length_mm=30,
                depth_mm=12,
                insertions=4,
                local_twitch_responses=2,
                tolerance="good",
            )
            for k in range(3)
        ]
        note = sessions.record_session(
            bulk,
            actor,
            RecordSession(
                episode_id=episode.id,
                started_at=at,
                subjective="Neck pain.",
                sites=sites,
                measurements=measures,
            ),
        )
        sessions.sign_session(
            bulk, actor, SignSession(session_id=note.id, expected_version=note.version)
        )
    bulk.flush()
    return ready.clinician.email, patient.id, episode.id


def session_cookie(app: Any, email: str) -> str:
    """Sign in once through the real form; return the session cookie header."""
    with TestClient(app) as client:
        page = client.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        r = client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf": token.group(1)},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def timed_get(app: Any, path: str, cookie: str, repeat: int) -> list[float]:
    """Milliseconds per request, each handed to the app as ASGI messages."""

    async def get() -> tuple[int, int]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"bench"), (b"cookie", cookie.encode())],
            "client": ("127.0.0.1", 1),
            "server": ("bench", 80),
        }
        status, size = 0, 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))

        await app(scope, receive, send)
        return status, size

    async def run() -> list[float]:
        status, size = await get()  # warm-up (templates compiled, caches filled)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}")
        print(f"  {path}: {size / 1024:.0f} KiB of HTML")
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await get()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--pg", help="a PostgreSQL URL instead of a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        t0 = time.perf_counter()
        email, patient_id, episode_id = build_patient(engine, args.sessions)
        print(
            f"{args.sessions} signed sessions built through the actions in "
            f"{time.perf_counter() - t0:.1f} s ({engine.dialect.name})"
        )
        app = create_app(engine, secret_key="p" * 40, rate_limit=None)
        cookie = session_cookie(app, email)
        for name, path in (
            ("patient chart", f"/patients/{patient_id}"),
            ("progress page", f"/episodes/{episode_id}/progress"),
        ):
            times = timed_get(app, path, cookie, args.repeat)
            p95 = statistics.quantiles(times, n=20)[-1]
            verdict = "meets" if statistics.median(times) < 100 else "MISSES"
            print(
                f"{name:14s} median {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms   "
                f"min {min(times):6.1f} ms   ({verdict} the 100 ms goal)"
            )
        engine.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
