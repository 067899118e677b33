"""The demo's mailbox (issue 16, "done when"): a newcomer sends a questionnaire from the
demo and answers it as the patient from the caught mail. The demo's wiring: a real local
SMTP server (aiosmtpd) keeping mail in the demo folder, the outbox worker sending to it,
and `/demo/mail` showing it with the link to follow."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from needlepoint.actions.clinics import register_clinic, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.mail import MailCatcher
from needlepoint.bootstrap import build_app, open_database
from needlepoint.commands.outbox import DEMO_PATIENT_EMAIL, demo_patient, worker_for
from needlepoint.config import Settings
from needlepoint.domain.commands import RegisterClinic, RegisterUser
from needlepoint.domain.enums import Role

PASSWORD = "needlepoint-demo-test"


def test_a_newcomer_sends_a_questionnaire_and_answers_it_from_the_caught_mail(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = open_database(url)
    owner = register_clinic(
        SqlUnitOfWork(engine),
        RegisterClinic(name="Demo Clinic", owner_email="o@demo.example", owner_name="Owner"),
        source="test",
    )
    pt = register_user(
        SqlUnitOfWork(engine),
        Actor(owner.id, owner.clinic_id, source="test"),
        RegisterUser(
            email="pt@demo.example", full_name="Demo PT", role=Role.CLINICIAN, password=PASSWORD
        ),
    )
    demo_patient(engine, pt.id, owner.clinic_id)
    with MailCatcher(folder=tmp_path / "mail") as catcher:
        settings = Settings(
            database_url=url,
            data_dir=tmp_path,
            demo=True,
            smtp_url=catcher.url,
            public_url="http://testserver",
            secret_key="d" * 40,
        )
        web = build_app(settings, engine)
        worker = worker_for(settings, engine)
        assert worker is not None
        client = TestClient(web)
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf
        client.post(
            "/login", data={"email": "pt@demo.example", "password": PASSWORD, "csrf": csrf[1]}
        )
        assert "No e-mail yet" in client.get("/demo/mail").text
        found = client.get("/patients", params={"q": "DEMO-Q-1"}).text
        patient = re.search(r'href="/patients/([0-9a-f-]{36})"', found)
        assert patient
        chart = client.get(f"/patients/{patient[1]}").text
        episode = re.search(r'href="/episodes/([0-9a-f-]{36})"', chart)
        assert episode
        page = client.get(f"/episodes/{episode[1]}/questionnaires").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        client.post(
            f"/episodes/{episode[1]}/questionnaires",
            data={"csrf": token[1], "instrument_ids": ["ndi"]},
        )
        assert worker.run_once().sent == 1
        mailbox = client.get("/demo/mail").text
        assert DEMO_PATIENT_EMAIL in mailbox
        link = re.search(r'<a href="http://testserver(/q/[A-Za-z0-9_\-]+)"', mailbox)
        assert link, mailbox
        opened = TestClient(web).get(link[1])
        assert opened.status_code == 200
        assert "Neck Disability Index" in opened.text
        # Another clinic on the same demo server sees none of this clinic's mail (each
        # link opens a patient's questionnaires: security review).
        other = register_clinic(
            SqlUnitOfWork(engine),
            RegisterClinic(name="Other", owner_email="o@other.example", owner_name="Other"),
            source="test",
        )
        register_user(
            SqlUnitOfWork(engine),
            Actor(other.id, other.clinic_id, source="test"),
            RegisterUser(
                email="pt@other.example",
                full_name="Other PT",
                role=Role.CLINICIAN,
                password=PASSWORD,
            ),
        )
        stranger = TestClient(web)
        csrf = re.search(r'name="csrf" value="([^"]+)"', stranger.get("/login").text)
        assert csrf
        stranger.post(
            "/login", data={"email": "pt@other.example", "password": PASSWORD, "csrf": csrf[1]}
        )
        theirs = stranger.get("/demo/mail")
        assert theirs.status_code == 200
        assert DEMO_PATIENT_EMAIL not in theirs.text
        assert "/q/" not in theirs.text
    # Outside a demo there is no mailbox.
    plain = TestClient(build_app(Settings(database_url=url, data_dir=tmp_path), engine))
    assert plain.get("/demo/mail").status_code == 404
