"""`needlepoint serve --workers 2`: several processes share one database, and everything
that must be shared lives there: web sessions, sign-in lock-outs, the audit chain.

Each request below opens a new connection, so the kernel hands it to either worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from needlepoint.actions.accounts import ACCOUNT_FAILURE_LIMIT
from needlepoint.synthetic.ready_patient import ready_patient
from tests.factories import session_body

PASSWORD = "correct horse battery staple 42"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


@contextmanager
def served(url: str, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("needlepoint")
    env = {**os.environ, "NEEDLEPOINT_SECRET_KEY": "workers-" + "k" * 40}
    proc = subprocess.Popen(
        [str(exe), "serve", "--db", url, "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if (
                    httpx.get(f"{base}/login", timeout=2).status_code == 200
                    and len(_children(proc.pid)) >= workers
                ):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_two_worker_processes_share_sessions_lockouts_and_the_audit_chain(
    engine: sa.Engine,
) -> None:
    from needlepoint.adapters.db.tables import sessions

    ready = ready_patient(
        engine,
        ready_at=datetime.now(UTC) - timedelta(days=1),
        with_token=True,
        password=PASSWORD,
    )
    url = engine.url.render_as_string(hide_password=False)
    with served(url, workers=2) as (base, proc):
        assert len(_children(proc.pid)) >= 2, "two worker processes"

        # a web session opened on one worker is known to the other
        with httpx.Client(base_url=base) as first:
            csrf = re.search(r'name="csrf" value="([^"]+)"', first.get("/login").text)
            assert csrf
            r = first.post(
                "/login",
                data={"email": ready.clinician.email, "password": PASSWORD, "csrf": csrf[1]},
            )
            assert r.status_code == 303, r.text
            cookies = dict(first.cookies)
        for _ in range(6):  # new connections: either worker
            with httpx.Client(base_url=base, cookies=cookies) as other:
                assert other.get(f"/patients/{ready.patient.id}").status_code == 200

        # API writes from several clients at once, on both workers: all saved, in one
        # unbroken audit chain
        results: list[int] = []

        def write(i: int) -> None:
            body = session_body(
                ready.episode.id,
                started_at=(datetime.now(UTC) - timedelta(minutes=i + 1)).isoformat(),
            )
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post(
                    "/api/v1/sessions",
                    json=body,
                    headers={"Authorization": f"Bearer {ready.token}"},
                )
                results.append(r.status_code)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [201] * 8, results
        with engine.connect() as conn:
            written = conn.execute(
                sa.select(sa.func.count()).where(sessions.c.episode_id == ready.episode.id)
            ).scalar_one()
        assert written == 8

        # a sign-in delay earned on any worker holds on every worker
        for _ in range(ACCOUNT_FAILURE_LIMIT):
            with httpx.Client(base_url=base) as c:
                csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
                assert csrf
                r = c.post(
                    "/login",
                    data={"email": ready.clinician.email, "password": "wrong", "csrf": csrf[1]},
                )
                assert r.status_code in (401, 429)
        for _ in range(3):
            with httpx.Client(base_url=base) as c:
                csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
                assert csrf
                r = c.post(
                    "/login",
                    data={"email": ready.clinician.email, "password": PASSWORD, "csrf": csrf[1]},
                )
                assert r.status_code == 429, "paused on every worker"

    from typer.testing import CliRunner

    from needlepoint.cli import app

    clinic = str(ready.clinician.clinic_id)  # (other tests tamper with their own clinics)
    verified = CliRunner().invoke(app, ["audit", "verify", "--db", url, "--clinic", clinic])
    assert verified.exit_code == 0, verified.output
