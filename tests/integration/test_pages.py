"""The plain web pages: sign in, the patient list with search, a patient's timeline."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.clinics import register_user
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.enums import Role
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.web.app import create_app
from tests.conftest import make_clinic


def signed_in(engine: sa.Engine, email: str, password: str) -> TestClient:
    client = TestClient(create_app(engine, secret_key="k" * 40))
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    r = client.post(
        "/login",
        data={"email": email, "password": password, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def test_a_clinician_signs_in_sees_patients_and_a_timeline(sqlite_engine: sa.Engine) -> None:
    report = generate_clinic(sqlite_engine, patients_count=30, seed=101, clinic_name="Pages")
    from needlepoint.actions.context import Actor

    owner = Actor(report.owner_id, report.clinic_id)
    register_user(
        SqlUnitOfWork(sqlite_engine),
        owner,
        RegisterUser(
            email="pages@test.example",
            full_name="Page Tester",
            role=Role.CLINICIAN,
            password="correct horse battery",
        ),
    )
    client = signed_in(sqlite_engine, "pages@test.example", "correct horse battery")
    listing = client.get("/patients")
    assert listing.status_code == 200
    assert "30 patients" in listing.text
    first = re.search(r'href="/patients/([0-9a-f-]{36})"', listing.text)
    assert first
    chart = client.get(f"/patients/{first[1]}")
    assert chart.status_code == 200
    assert "Episode opened" in chart.text
    assert "Numeric Pain Rating Scale" in chart.text
    assert client.get("/patients", params={"q": "MRN-000007"}).text.count("/patients/") >= 1
    assert "1 patient" in client.get("/patients", params={"q": "MRN-000007"}).text


def test_wrong_password_and_missing_sign_in(sqlite_engine: sa.Engine) -> None:
    client = TestClient(create_app(sqlite_engine, secret_key="k" * 40))
    assert client.get("/patients", follow_redirects=False).headers["location"] == "/login"
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    r = client.post(
        "/login", data={"email": "nobody@test.example", "password": "x" * 10, "csrf": csrf[1]}
    )
    assert r.status_code == 401
    assert "Wrong email or password" in r.text
    forged = client.post("/login", data={"email": "a@b.c", "password": "x" * 10, "csrf": "no"})
    assert forged.status_code == 400


def test_a_patient_of_another_clinic_is_not_shown(sqlite_engine: sa.Engine) -> None:
    here = make_clinic(sqlite_engine)
    register_user(
        SqlUnitOfWork(sqlite_engine),
        here.as_owner,
        RegisterUser(
            email="here@test.example",
            full_name="Here",
            role=Role.CLINICIAN,
            password="another good one",
        ),
    )
    elsewhere = generate_clinic(sqlite_engine, patients_count=3, seed=202)
    with sqlite_engine.connect() as conn:
        foreign = conn.execute(
            sa.text("select id from patients where clinic_id = :c limit 1"),
            {"c": elsewhere.clinic_id.hex},
        ).scalar_one()
    client = signed_in(sqlite_engine, "here@test.example", "another good one")
    r = client.get(
        f"/patients/{foreign[:8]}-{foreign[8:12]}-{foreign[12:16]}-{foreign[16:20]}-{foreign[20:]}"
    )
    assert r.status_code == 404
