"""The pages of questionnaires from home (issue 16), on both databases: the clinician
sends NDI from the episode, the mail reaches a real SMTP server, the patient's pages
open from the mail's link, refuse an answer out of range naming the item, save, resume,
submit once; the episode page shows the score marked patient-reported; the outbox page
shows the message's state. A closed link gets a plain page and a way to ask again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions import episodes, patients
from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.mail import MailCatcher, SmtpServer
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.enums import Role
from needlepoint.outbox import OutboxWorker
from needlepoint.web.app import create_app
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd

PASSWORD = "correct horse battery"
LINK = re.compile(r"http://testserver(/q/[A-Za-z0-9_\-]+)")


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher() as c:
        yield c


def _signed_in(c: ClinicFixture) -> TestClient:
    email = f"web-{c.owner.clinic_id.hex[:8]}@test.example"
    register_user(
        SqlUnitOfWork(c.engine),
        c.as_owner,
        RegisterUser(
            email=email, full_name="Web Clinician", role=Role.CLINICIAN, password=PASSWORD
        ),
    )
    client = TestClient(create_app(c.engine, secret_key="k" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found[1]


def test_send_answer_and_see_the_patient_reported_score(
    clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    p = patients.register_patient(
        clinic.uow(), clinic.as_clinician, patient_cmd(email="web@patient.test")
    )
    ep = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(p.id))
    client = _signed_in(clinic)
    page = client.get(f"/episodes/{ep.id}/questionnaires")
    assert page.status_code == 200
    assert 'value="ndi" checked' in page.text  # neck pain's plan: NDI is ticked
    sent = client.post(
        f"/episodes/{ep.id}/questionnaires",
        data={"csrf": _csrf(page.text), "instrument_ids": ["ndi"]},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    outbox = client.get("/outbox")
    assert "web@patient.test" in outbox.text
    assert "Pending: 1" in outbox.text

    OutboxWorker(
        clinic.engine, SmtpServer.from_url(catcher.url), only_clinics=[clinic.owner.clinic_id]
    ).run_once()
    assert "Sent: 1" in client.get("/outbox").text
    mail = next(m for m in catcher.messages if "web@patient.test" in m.recipients)
    path = LINK.search(mail.body)
    assert path, mail.body

    patient = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    opened = patient.get(path[1])
    assert opened.status_code == 200
    assert "Neck Disability Index" in opened.text
    assert opened.headers["cache-control"] == "no-store"
    assignment = re.search(r'name="assignment" value="([^"]+)"', opened.text)
    assert assignment
    # Out of range: refused naming the question, nothing lost of the rest.
    bad = patient.post(path[1], data={"assignment": assignment[1], "item1": "9", "item2": "1"})
    assert bad.status_code == 422
    assert "Pain intensity" in bad.text or "pain intensity" in bad.text
    # Save half, come back later: the answers are there.
    half = {"assignment": assignment[1], "save": "1", **{f"item{i}": "1" for i in range(1, 6)}}
    saved = patient.post(path[1], data=half)
    assert "Your answers are saved" in saved.text
    resumed = patient.get(path[1])
    assert resumed.text.count("checked") == 5
    # Sending with questions left: refused, naming the first one.
    early = patient.post(path[1], data={"assignment": assignment[1], "send": "1"})
    assert early.status_code == 422
    assert "Please answer this question (concentration)" in early.text
    # every question left is named at once, not one per try (clinician review)
    for label in ("work", "driving", "sleeping", "recreation"):
        assert f"Please answer this question ({label})" in early.text, label
    assert "Please check these answers" in early.text
    rest = {"assignment": assignment[1], "send": "1", **{f"item{i}": "1" for i in range(6, 11)}}
    done = patient.post(path[1], data=rest)
    assert done.status_code == 200
    assert "Thank you" in done.text
    again = patient.get(path[1])
    assert again.status_code == 410
    assert "already sent your answers" in again.text

    page = client.get(f"/episodes/{ep.id}/questionnaires")
    assert "20 %" in page.text  # 10 of 50 points
    assert "patient-reported" in page.text
    chart = client.get(f"/patients/{p.id}")
    assert re.search(r"score 20 %[^<]*patient-reported", chart.text)
    progress = client.get(f"/episodes/{ep.id}/progress")
    assert "Answered by the patient from home" in progress.text
    assert "patient-reported" in progress.text


def test_an_unknown_link_gets_a_plain_page_and_no_details(clinic: ClinicFixture) -> None:
    patient = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    page = patient.get("/q/not-a-real-token")
    assert page.status_code == 404
    assert "does not work" in page.text
    asked = patient.post("/q/not-a-real-token/new-link")
    assert asked.status_code == 200
    assert "Please check your e-mail" in asked.text


def test_link_entry_is_rate_limited_per_address(sqlite_engine: sa.Engine) -> None:
    patient = TestClient(create_app(sqlite_engine, secret_key="k" * 40))
    codes = [patient.get(f"/q/guess-{i}").status_code for i in range(100)]
    assert 429 in codes
    assert codes[0] == 404


def test_the_owner_sets_the_clinics_plan_on_a_page(clinic: ClinicFixture) -> None:
    owner_email = f"own-{clinic.owner.clinic_id.hex[:8]}@test.example"
    register_user(
        SqlUnitOfWork(clinic.engine),
        clinic.as_owner,
        RegisterUser(email=owner_email, full_name="Page Owner", role=Role.OWNER, password=PASSWORD),
    )
    client = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    client.post("/login", data={"email": owner_email, "password": PASSWORD, "csrf": csrf[1]})
    page = client.get("/settings/questionnaires?condition=low_back_pain")
    assert page.status_code == 200
    assert 'value="odi:intake" checked' in page.text  # the default: ODI throughout
    saved = client.post(
        "/settings/questionnaires/low_back_pain",
        data={
            "csrf": _csrf(page.text),
            "asked": ["odi:intake", "odi:discharge", "pgic:follow_up"],
            "every_n_days": "14",
            "follow_up_days": "42, 91",
        },
    )
    assert "Plan saved" in saved.text
    assert 'value="pgic:follow_up" checked' in saved.text
    assert 'value="odi:during_care" checked' not in saved.text
    bad = client.post(
        "/settings/questionnaires/low_back_pain",
        data={"csrf": _csrf(page.text), "asked": ["odi:intake"], "follow_up_days": "0"},
    )
    assert bad.status_code == 400
    clinician = _signed_in(clinic)
    refused = clinician.post(
        "/settings/questionnaires/low_back_pain",
        data={
            "csrf": _csrf(clinician.get("/settings/questionnaires").text),
            "asked": ["odi:intake"],
        },
    )
    assert refused.status_code == 400
    assert (
        "Only the clinic's owner changes the plan" in clinician.get("/settings/questionnaires").text
    )


def test_links_e_mailed_to_patients_never_take_the_callers_host(
    clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    """Host-header injection (security review): a link e-mailed to a patient starts with
    the server's configured address, whatever Host the request named: the clinician's
    sending page, the API, and the patient's own unauthenticated "new link" request
    (which could otherwise have had the patient's next token sent to the caller's host)."""
    app = create_app(clinic.engine, secret_key="k" * 40, public_url="https://clinic.example")
    forged = {"Host": "attacker.example"}
    p = patients.register_patient(
        clinic.uow(), clinic.as_clinician, patient_cmd(email="host@patient.test")
    )
    ep = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(p.id))
    token = issue_operator_token(SqlUnitOfWork(clinic.engine), clinic.clinician, "t")
    api = TestClient(app)
    sent = api.post(
        f"/api/v1/episodes/{ep.id}/questionnaires",
        json={"instrument_ids": ["ndi"], "send": True},
        headers={"Authorization": f"Bearer {token}", **forged},
    )
    assert sent.status_code == 201, sent.text

    def last_mail() -> str:
        OutboxWorker(
            clinic.engine, SmtpServer.from_url(catcher.url), only_clinics=[clinic.owner.clinic_id]
        ).run_once()
        return [m for m in catcher.messages if "host@patient.test" in m.recipients][-1].body

    first = re.search(r"https://clinic\.example(/q/([A-Za-z0-9_\-]+))", last_mail())
    assert first, "the invitation's link is not on the configured address"
    # An hour later the patient (or whoever holds the old link) asks for a new one.
    with clinic.engine.begin() as conn:
        conn.execute(
            sa.update(t.questionnaire_links)
            .where(t.questionnaire_links.c.patient_id == p.id)
            .values(created_at=datetime.now(UTC) - timedelta(hours=2))
        )
    asked = TestClient(app).post(f"{first[1]}/new-link", headers=forged)
    assert asked.status_code == 200
    body = last_mail()
    assert "attacker.example" not in body
    second = re.search(r"https://clinic\.example/q/([A-Za-z0-9_\-]+)", body)
    assert second, body
    assert second[1] != first[2]
