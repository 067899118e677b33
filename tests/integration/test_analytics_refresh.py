"""Clinic analytics never block and never go stale silently, on SQLite and PostgreSQL.

The analytics are invalidated by the clinic's analytics version, kept in the database by
the write path: a chart view, a sign-in or a token issued leaves it alone; a note signed
moves it, in this process or another. A view never computes: it returns the last
snapshot at once, with when its records were read and whether a refresh is running.
Refreshes are held back with an event (never timed) to look at a view in the middle of
one."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.accounts import Outcome, sign_in
from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.actions.episodes import open_episode
from needlepoint.actions.patients import register_patient
from needlepoint.actions.sessions import record_session, sign_session
from needlepoint.adapters.db.analytics_marks import ANALYSED, Mark, read_mark
from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.db.tables import audit_events, metadata
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics import dataset as datasets
from needlepoint.analytics.dashboard import Dashboards, View, build, dashboards_of
from needlepoint.domain.commands import RegisterUser, SignSession
from needlepoint.domain.entities import Patient, Session
from needlepoint.domain.enums import Role
from needlepoint.queries.reader import open_reader
from needlepoint.web.app import create_app
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd, session_cmd

T = TypeVar("T")
HANG_GUARD_S = 120  # a guard against a hung test, never a timing assertion
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def promptly(fn: Callable[[], T]) -> T:
    """Run `fn` in another thread and fail (rather than hang) if it never returns."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=HANG_GUARD_S)


class HeldBuild:
    """The real snapshot build, held at its start while `gate` is closed."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, data: datasets.Dataset) -> Any:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(HANG_GUARD_S), "the test never released the refresh"
        return build(data)


@dataclass
class Clinic:
    c: ClinicFixture

    @property
    def id(self) -> UUID:
        return self.c.owner.clinic_id

    def view(self, dashboards: Dashboards) -> View:
        c = self.c
        with open_reader(c.engine, self.id, c.clinician.role, c.clinician.id) as r:
            return dashboards.view(r)

    def ready(self, dashboards: Dashboards) -> View:
        """The clinic's current snapshot, waiting for its refresh if need be."""
        first = promptly(lambda: self.view(dashboards))
        if first.refreshing:
            assert dashboards.wait(HANG_GUARD_S)
        view = self.view(dashboards)
        assert view.computed is not None, view
        assert not view.refreshing, view
        return view

    def mark(self) -> Mark:
        with self.c.engine.connect() as conn:
            scope_to_clinic(conn, self.id)
            return read_mark(conn, self.id)

    def audit_count(self) -> int:
        with self.c.engine.connect() as conn:
            scope_to_clinic(conn, self.id)
            q = sa.select(sa.func.count()).where(audit_events.c.clinic_id == self.id)
            return int(conn.execute(q).scalar_one())

    def patient_with_draft(self) -> tuple[Patient, Session]:
        """A patient, screened and consented, with a draft note of one needling session."""
        c = self.c
        patient = register_patient(c.uow(), c.as_clinician, patient_cmd())
        c.prepare_needling(patient.id)
        episode = open_episode(c.uow(), c.as_clinician, episode_cmd(patient.id))
        draft = record_session(c.uow(), c.as_clinician, session_cmd(episode.id))
        return patient, draft

    def sign(self, draft: Session) -> None:
        cmd = SignSession(session_id=draft.id, expected_version=draft.version)
        sign_session(self.c.uow(), self.c.as_clinician, cmd)


@pytest.fixture
def clinic(clinic: ClinicFixture) -> Clinic:
    return Clinic(clinic)


def test_a_chart_view_a_sign_in_and_a_token_leave_the_analytics_as_they_are(
    clinic: Clinic,
) -> None:
    c = clinic.c
    patient, draft = clinic.patient_with_draft()
    clinic.sign(draft)
    dashboards = Dashboards()
    before = clinic.ready(dashboards)
    mark, events = clinic.mark(), clinic.audit_count()
    assert mark is not None

    with open_reader(c.engine, clinic.id, c.clinician.role, c.clinician.id) as r:
        r.one(Patient, patient.id)  # opening the chart: a record.viewed audit event
    email = f"second-{clinic.id.hex[:8]}@test.example"
    register_user(
        c.uow(),
        c.as_owner,
        RegisterUser(email=email, full_name="Second PT", role=Role.CLINICIAN, password=PASSWORD),
    )
    signed_in = sign_in(SqlUnitOfWork(c.engine), email, PASSWORD, address="t", request_id=None)
    assert signed_in.outcome is Outcome.SIGNED_IN
    issue_operator_token(c.uow(), c.clinician, "script", source="test")

    assert clinic.audit_count() >= events + 4  # each of them was on the audit trail
    assert clinic.mark() == mark
    after = promptly(lambda: clinic.view(dashboards))
    assert not after.refreshing
    assert after.computed is before.computed


def test_a_signed_note_is_in_the_figures_after_the_refresh_it_starts(clinic: Clinic) -> None:
    _, first = clinic.patient_with_draft()
    clinic.sign(first)
    dashboards = Dashboards()
    before = clinic.ready(dashboards)
    assert before.computed is not None
    _, draft = clinic.patient_with_draft()
    clinic.ready(dashboards)  # the draft's rows moved the version too: settle it
    mark = clinic.mark()

    clinic.sign(draft)
    assert clinic.mark() != mark
    during = promptly(lambda: clinic.view(dashboards))
    assert during.refreshing
    assert during.computed is not None
    assert during.as_of is not None
    assert dashboards.wait(HANG_GUARD_S)
    after = clinic.view(dashboards)
    assert not after.refreshing
    assert after.computed is not None
    assert after.as_of is not None
    assert after.as_of > during.as_of
    assert after.computed.mark == clinic.mark()
    assert after.computed.dashboard.sessions == before.computed.dashboard.sessions + 1


def test_a_view_during_a_refresh_returns_the_last_snapshot_without_waiting(
    clinic: Clinic,
) -> None:
    _, draft = clinic.patient_with_draft()
    held = HeldBuild()
    dashboards = Dashboards(held)
    old = clinic.ready(dashboards)
    held.gate.clear()
    held.entered.clear()
    clinic.sign(draft)

    first = promptly(lambda: clinic.view(dashboards))  # starts the refresh
    assert held.entered.wait(HANG_GUARD_S)  # the refresh is now held inside its build
    views = [promptly(lambda: clinic.view(dashboards)) for _ in range(3)]
    for v in (first, *views):
        assert v.refreshing
        assert v.computed is old.computed  # the whole old snapshot, nothing newer mixed in
        assert v.as_of == old.as_of
        assert v.refresh_started is not None
    assert held.calls == 2  # one refresh for all those views

    held.gate.set()
    assert dashboards.wait(HANG_GUARD_S)
    new = clinic.view(dashboards)
    assert not new.refreshing
    assert new.computed is not old.computed
    assert new.as_of is not None
    assert old.as_of is not None
    assert new.as_of > old.as_of


def test_the_first_view_says_the_analytics_are_being_prepared(clinic: Clinic) -> None:
    held = HeldBuild()
    held.gate.clear()
    dashboards = Dashboards(held)
    first = promptly(lambda: clinic.view(dashboards))
    assert first.computed is None
    assert first.as_of is None
    assert first.refreshing
    assert first.refresh_started is not None
    held.gate.set()
    assert dashboards.wait(HANG_GUARD_S)
    assert clinic.view(dashboards).computed is not None


def test_a_failed_refresh_keeps_the_last_snapshot_and_says_so(clinic: Clinic) -> None:
    _, draft = clinic.patient_with_draft()
    broken = {"now": False}

    def build_or_fail(data: datasets.Dataset) -> Any:
        if broken["now"]:
            raise RuntimeError("disk full")
        return build(data)

    dashboards = Dashboards(build_or_fail)
    old = clinic.ready(dashboards)
    broken["now"] = True
    clinic.sign(draft)
    promptly(lambda: clinic.view(dashboards))
    assert dashboards.wait(HANG_GUARD_S)
    after = clinic.view(dashboards)
    assert after.computed is old.computed
    assert not after.refreshing  # not retried at every view
    assert after.failure is not None
    assert "disk full" in after.failure


_SIGN_ELSEWHERE = """
import sys
from uuid import UUID
from needlepoint.actions.context import Actor
from needlepoint.actions.sessions import sign_session
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import SignSession

url, user, clinic, session, version = sys.argv[1:]
engine = make_engine(url)
sign_session(
    SqlUnitOfWork(engine),
    Actor(UUID(user), UUID(clinic), source="test"),
    SignSession(session_id=UUID(session), expected_version=int(version)),
)
"""


def test_a_note_signed_in_another_process_refreshes_every_process(clinic: Clinic) -> None:
    _, draft = clinic.patient_with_draft()
    one, two = Dashboards(), Dashboards()  # two server processes' snapshots
    old_one, old_two = clinic.ready(one), clinic.ready(two)
    url = clinic.c.engine.url.render_as_string(hide_password=False)
    subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGN_ELSEWHERE,
            url,
            str(clinic.c.clinician.id),
            str(clinic.id),
            str(draft.id),
            str(draft.version),
        ],
        check=True,
        cwd=ROOT,
        timeout=HANG_GUARD_S,
    )
    for dashboards, old in ((one, old_one), (two, old_two)):
        during = promptly(lambda d=dashboards: clinic.view(d))  # type: ignore[misc]
        assert during.refreshing
        assert during.computed is old.computed
        assert dashboards.wait(HANG_GUARD_S)
    new_one, new_two = clinic.view(one), clinic.view(two)
    assert new_one.computed is not None
    assert new_two.computed is not None
    assert new_one.computed.mark == new_two.computed.mark == clinic.mark()
    assert new_one.computed.dashboard.sessions == new_two.computed.dashboard.sessions


def test_the_api_and_the_page_say_how_old_the_figures_are(clinic: Clinic) -> None:
    c = clinic.c
    app = create_app(c.engine, secret_key="refresh-" + "k" * 40)
    held = HeldBuild()
    held.gate.clear()
    app.state.analytics_dashboards = Dashboards(held)
    assert dashboards_of(app.state) is app.state.analytics_dashboards
    client = TestClient(app)
    token = issue_operator_token(c.uow(), c.clinician, "test", source="test")
    auth = {"Authorization": f"Bearer {token}"}

    preparing = promptly(lambda: client.get("/api/v1/analytics/dashboard", headers=auth))
    assert preparing.status_code == 202, preparing.text
    assert int(preparing.headers["Retry-After"]) > 0
    body = preparing.json()
    assert body["status"] == "preparing"
    assert body["refreshing"] is True
    assert body["as_of"] is None
    assert promptly(lambda: client.get("/api/v1/analytics/safety", headers=auth)).status_code == 202

    held.gate.set()
    assert app.state.analytics_dashboards.wait(HANG_GUARD_S)
    ready = client.get("/api/v1/analytics/dashboard", headers=auth)
    assert ready.status_code == 200, ready.text
    assert ready.json()["refreshing"] is False
    as_of = ready.json()["as_of"]
    assert as_of
    assert ready.headers["Analytics-As-Of"]
    assert ready.headers["Analytics-Refreshing"] == "false"
    sessions = ready.json()["sessions"]

    held.gate.clear()
    _, draft = clinic.patient_with_draft()
    clinic.sign(draft)
    during = promptly(lambda: client.get("/api/v1/analytics/dashboard", headers=auth))
    assert during.status_code == 200
    assert during.json()["refreshing"] is True
    assert during.json()["as_of"] == as_of  # the old snapshot, said to be old
    assert during.headers["Analytics-Refreshing"] == "true"
    listed = promptly(lambda: client.get("/api/v1/analytics/medication", headers=auth))
    assert listed.status_code == 200
    assert listed.headers["Analytics-Refreshing"] == "true"

    # The page, signed in as the clinician, during the same refresh.
    email = f"page-{clinic.id.hex[:8]}@test.example"
    register_user(
        c.uow(),
        c.as_owner,
        RegisterUser(email=email, full_name="Page PT", role=Role.CLINICIAN, password=PASSWORD),
    )
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf[1]})
    shell = promptly(lambda: client.get("/analytics"))
    assert shell.status_code == 200
    assert "newer figures are being computed" in shell.text
    page = promptly(lambda: client.get("/analytics/figures"))  # loaded into it by htmx
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "Figures as of <time" in text
    assert "a refresh is in progress" in text
    assert "Pain relief" in text  # the old figures are shown meanwhile

    held.gate.set()
    assert app.state.analytics_dashboards.wait(HANG_GUARD_S)
    fresh = client.get("/api/v1/analytics/dashboard", headers=auth).json()
    assert fresh["refreshing"] is False
    assert fresh["as_of"] > as_of
    assert fresh["sessions"] == sessions + 1
    page = client.get("/analytics/figures")
    assert "up to date with the clinic" in page.text
    assert "refresh is in progress" not in page.text


def test_the_first_page_view_says_the_analytics_are_being_prepared(clinic: Clinic) -> None:
    c = clinic.c
    app = create_app(c.engine, secret_key="refresh-" + "k" * 40)
    held = HeldBuild()
    held.gate.clear()
    app.state.analytics_dashboards = Dashboards(held)
    client = TestClient(app)
    email = f"first-{clinic.id.hex[:8]}@test.example"
    register_user(
        c.uow(),
        c.as_owner,
        RegisterUser(email=email, full_name="First PT", role=Role.CLINICIAN, password=PASSWORD),
    )
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf[1]})
    shell = promptly(lambda: client.get("/analytics"))
    page = promptly(lambda: client.get("/analytics/figures"))
    held.gate.set()
    assert shell.status_code == 200
    assert "Computing…" in shell.text
    assert 'hx-trigger="load"' in shell.text
    assert page.status_code == 200
    assert "being prepared" in page.text
    assert 'hx-trigger="load delay:5s"' in page.text  # asks again by itself
    assert "Pain relief" not in page.text
    assert app.state.analytics_dashboards.wait(HANG_GUARD_S)


def test_the_version_covers_every_column_the_analytics_read(clinic: Clinic) -> None:
    """Every `table.column` in the SQL `analytics.dataset.load` sends is one whose change
    moves the analytics version (`ANALYSED`): a column added to the loader must be added
    there too, or its changes would go unseen."""
    clinic.patient_with_draft()
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engine = clinic.c.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with open_reader(engine, clinic.id, clinic.c.owner.role, clinic.c.owner.id) as r:
            datasets.load(r)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    read: set[tuple[str, str]] = set()
    for statement in sent:
        for table, column in re.findall(r"\b([a-z_]+)\.([a-z_]+)\b", statement):
            if table in metadata.tables and column in metadata.tables[table].c:
                read.add((table, column))
    assert read  # the loader's statements name their columns
    missing = {(t, c) for t, c in read if c not in ANALYSED.get(t, frozenset())}
    assert not missing, f"read by the analytics but not in ANALYSED: {sorted(missing)}"


def test_an_api_view_when_the_first_snapshot_failed_is_a_503_to_retry(clinic: Clinic) -> None:
    c = clinic.c

    def failing(data: datasets.Dataset) -> Any:
        raise RuntimeError("out of memory")

    app = create_app(c.engine, secret_key="refresh-" + "k" * 40)
    app.state.analytics_dashboards = Dashboards(failing)
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {issue_operator_token(c.uow(), c.clinician, 't')}"}
    first = promptly(lambda: client.get("/api/v1/analytics/recovery", headers=auth))
    assert first.status_code == 202
    assert "Analytics-As-Of" not in first.headers  # nothing to date yet
    assert app.state.analytics_dashboards.wait(HANG_GUARD_S)
    failed = promptly(lambda: client.get("/api/v1/analytics/recovery", headers=auth))
    assert failed.status_code == 503
    assert int(failed.headers["Retry-After"]) > 0
    assert "out of memory" not in failed.text  # the reason goes to the log, not the caller
