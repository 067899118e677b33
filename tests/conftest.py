"""Shared fixtures: databases (SQLite always; PostgreSQL when a server is reachable),
a fresh clinic per test, and an API client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.clinics import issue_operator_token, register_clinic, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters import sealing
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterClinic, RegisterUser
from needlepoint.domain.entities import User
from needlepoint.domain.enums import Role
from needlepoint.web.app import create_app

# The tests' key for secrets sealed in the database (the wiring would otherwise take the
# data directory's sealing.key); fixed, so every engine of the run reads what another wrote.
TEST_SEALING_KEY = sealing.parse_key("dGVzdHMtc2VhbGluZy1rZXktMzItYnl0ZXMtbG9uZyE")
sealing.configure([TEST_SEALING_KEY], replace=True)

PG_ADMIN_URL = os.environ.get(
    "NEEDLEPOINT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_pg_unreachable: str | None = None


def _pg_admin() -> sa.Engine | None:
    global _pg_unreachable
    if _pg_unreachable is not None:
        return None
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        _pg_unreachable = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.orig}"
        return None
    return engine


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """A migrated SQLite database file shared by the session."""
    path = tmp_path_factory.mktemp("sqlite") / "needlepoint.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[sa.Engine]:
    """A migrated PostgreSQL database created for this run and dropped after it; the
    PostgreSQL cases skip, with the reason, when no server is reachable."""
    admin = _pg_admin()
    if admin is None:
        pytest.skip(f"PostgreSQL cases skipped: {_pg_unreachable}")
    name = f"needlepoint_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    eng = make_engine(url)
    try:
        upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    """Each integration test runs on both databases; each test uses its own clinic."""
    fixture = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@dataclass
class ClinicFixture:
    engine: sa.Engine
    owner: User
    clinician: User
    assistant: User

    def actor(self, user: User) -> Actor:
        return Actor(user.id, user.clinic_id, source="test")

    @property
    def as_owner(self) -> Actor:
        return self.actor(self.owner)

    @property
    def as_clinician(self) -> Actor:
        return self.actor(self.clinician)

    @property
    def as_assistant(self) -> Actor:
        return self.actor(self.assistant)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def prepare_needling(self, patient_id: uuid.UUID) -> None:
        """Screen the patient (all clear) and record their consent, as before needling."""
        from needlepoint.actions.consent import record_consent
        from needlepoint.actions.screening import record_screening
        from tests.factories import consent_cmd, screening_cmd

        record_screening(self.uow(), self.as_clinician, screening_cmd(patient_id))
        record_consent(self.uow(), self.as_clinician, consent_cmd(patient_id))


def make_clinic(engine: sa.Engine, name: str = "Test Clinic") -> ClinicFixture:
    """A new clinic with an owner, a clinician and an assistant."""
    tag = uuid.uuid4().hex[:10]
    owner = register_clinic(
        SqlUnitOfWork(engine),
        RegisterClinic(name=name, owner_email=f"owner-{tag}@test.example", owner_name="Owner"),
        source="test",
    )
    owner_actor = Actor(owner.id, owner.clinic_id, source="test")
    clinician = register_user(
        SqlUnitOfWork(engine),
        owner_actor,
        RegisterUser(
            email=f"pt-{tag}@test.example", full_name="Pat Therapist", role=Role.CLINICIAN
        ),
    )
    assistant = register_user(
        SqlUnitOfWork(engine),
        owner_actor,
        RegisterUser(email=f"desk-{tag}@test.example", full_name="Front Desk", role=Role.ASSISTANT),
    )
    return ClinicFixture(engine, owner, clinician, assistant)


@pytest.fixture
def clinic(engine: sa.Engine) -> ClinicFixture:
    return make_clinic(engine)


@pytest.fixture
def other_clinic(engine: sa.Engine) -> ClinicFixture:
    return make_clinic(engine, "Other Clinic")


@dataclass
class Api:
    client: TestClient
    clinic: ClinicFixture
    tokens: dict[str, str]

    def headers(self, who: str = "clinician", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def prepare_needling(self, patient_id: str) -> None:
        """Screen the patient (all clear) and record their consent through the API."""
        from tests.factories import SCREENED, consent_body, screening_body

        screening = {**screening_body(), "screened_at": SCREENED.isoformat()}
        r = self.client.post(
            f"/api/v1/patients/{patient_id}/screenings", json=screening, headers=self.headers()
        )
        assert r.status_code == 201, r.text
        r = self.client.post(
            f"/api/v1/patients/{patient_id}/consents", json=consent_body(), headers=self.headers()
        )
        assert r.status_code == 201, r.text


def make_api(engine: sa.Engine, clinic: ClinicFixture) -> Api:
    app = create_app(engine, secret_key="test-secret-key-" + "x" * 32)
    tokens = {
        who: issue_operator_token(SqlUnitOfWork(engine), user, "test", source="test")
        for who, user in (
            ("owner", clinic.owner),
            ("clinician", clinic.clinician),
            ("assistant", clinic.assistant),
        )
    }
    return Api(TestClient(app), clinic, tokens)


@pytest.fixture
def api(engine: sa.Engine, clinic: ClinicFixture) -> Api:
    return make_api(engine, clinic)


# --- figures printed at the end of a run (the fuzzer's case counts) -----------------------
_FIGURES: list[tuple[str, object]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the figures tests recorded with `record_property("fuzz …", n)` (also from
    xdist workers: user properties travel with the reports)."""
    if report.when == "call":
        _FIGURES.extend(
            (name, value) for name, value in report.user_properties if name.startswith("fuzz")
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for name, value in sorted(_FIGURES):
            terminalreporter.write_line(f"{name}: {value}")
