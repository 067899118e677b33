"""Browser tests: the real product served by uvicorn on a free local port, driven by
playwright-python in Debian's Chromium (`executable_path`; no browser download)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn

from needlepoint.actions.clinics import register_clinic, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterClinic, RegisterUser
from needlepoint.domain.enums import Role
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.web.app import create_app

CHROMIUM = os.environ.get("NEEDLEPOINT_CHROMIUM") or shutil.which("chromium") or ""
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
EMAIL, PASSWORD = "e2e@needlepoint.example", "browser-test-password"
# As the machine's own probe runs it: no background traffic to hosts we cannot reach.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def clinic_with_clinician(db: Path, email: str, password: str) -> tuple[sa.Engine, Actor]:
    """A new database holding one clinic ("Harbour Physio") and a licensed clinician who
    signs in with `email` and `password`; the engine and the clinician as an actor."""
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    owner = register_clinic(
        SqlUnitOfWork(engine),
        RegisterClinic(
            name="Harbour Physio", owner_email=f"o-{db.stem}@e2e.example", owner_name="Owner"
        ),
        source="test",
    )
    clinician = register_user(
        SqlUnitOfWork(engine),
        Actor(owner.id, owner.clinic_id, source="test"),
        RegisterUser(
            email=email,
            full_name="Erin Browser",
            role=Role.CLINICIAN,
            password=password,
            licence_number="PT-1",
            licence_date=date(2015, 1, 1),
        ),
    )
    return engine, Actor(clinician.id, clinician.clinic_id, source="test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(db: Path, patients: int) -> Iterator[str]:
    """The demo product over a new database on a real HTTP server; yields its base URL."""
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    report = generate_clinic(engine, patients_count=patients, seed=2026, clinic_name="E2E Clinic")
    register_user(
        SqlUnitOfWork(engine),
        Actor(report.owner_id, report.clinic_id),
        RegisterUser(email=EMAIL, full_name="Erin Browser", role=Role.CLINICIAN, password=PASSWORD),
    )
    with serve_engine(engine) as url:
        yield url


@contextmanager
def serve_engine(engine: sa.Engine) -> Iterator[str]:
    """The product over a prepared database on a real HTTP server; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(engine, secret_key="e" * 40), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo product (40 patients) on a real HTTP server; yields its base URL."""
    with serve(tmp_path_factory.mktemp("e2e") / "demo.db", 40) as url:
        yield url


@pytest.fixture(scope="module")
def clinic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of its own for tests that add patients (the shared one keeps its counts)."""
    with serve(tmp_path_factory.mktemp("e2e-clinic") / "clinic.db", 5) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM:
        pytest.skip(
            "Chromium not installed (scripts/test installs Debian's chromium with "
            "apt-get; set NEEDLEPOINT_CHROMIUM to use another binary)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    ctx = browser.new_context(viewport={"width": 820, "height": 1180})  # type: ignore[attr-defined]
    pg = ctx.new_page()
    yield pg
    ctx.close()


def shot(page: object, name: str) -> Path:
    """Keep a screenshot as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
