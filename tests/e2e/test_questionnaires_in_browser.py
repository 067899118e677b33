"""Questionnaires from home end to end in Chromium at phone size (390 × 844 px), with a
real SMTP server (aiosmtpd) and the outbox worker running beside the server: the
clinician sends NDI from the episode, the mail arrives, the link opens, the patient
completes it, the clinician sees the score marked patient-reported. axe-core checks the
patient's pages (no serious or critical violation, no sideways scrolling); the patient's
interactions are counted (`INTERACTIONS`, printed with `-s`)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from needlepoint.actions import episodes, patients
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.mail import MailCatcher, SmtpServer
from needlepoint.outbox import OutboxWorker
from tests.e2e.conftest import clinic_with_clinician, serve_engine, shot
from tests.e2e.test_accessibility import Findings
from tests.factories import episode_cmd, patient_cmd

EMAIL, PASSWORD = "q-e2e@needlepoint.example", "questionnaire-e2e-password"
PATIENT_EMAIL = "nora.phone@patient.example"
PHONE = {"width": 390, "height": 844}
# NDI, the answer chosen for each of its ten items (0 = no difficulty … 5 = the most):
ANSWERS = [2, 1, 2, 1, 2, 1, 2, 1, 2, 1]  # 15 of 50 points = 30 %


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db: Path = tmp_path_factory.mktemp("q-e2e") / "q.db"
    engine, as_pt = clinic_with_clinician(db, EMAIL, PASSWORD)
    p = patients.register_patient(
        SqlUnitOfWork(engine), as_pt, patient_cmd(given_name="Nora", email=PATIENT_EMAIL)
    )
    ep = episodes.open_episode(SqlUnitOfWork(engine), as_pt, episode_cmd(p.id))
    with MailCatcher() as catcher, serve_engine(engine) as url:
        worker = OutboxWorker(engine, SmtpServer.from_url(catcher.url), base_url=url)
        worker.start(poll_seconds=0.3)
        try:
            yield {"url": url, "episode": ep.id, "catcher": catcher}
        finally:
            worker.stop()


def _mail(catcher: MailCatcher, n: int = 1) -> Any:
    for _ in range(300):  # up to 30 s: a loaded CI machine
        mine = [m for m in catcher.messages if PATIENT_EMAIL in m.recipients]
        if len(mine) >= n:
            return mine[n - 1]
        time.sleep(0.1)
    raise AssertionError("the invitation did not arrive at the SMTP server")


def test_a_patient_answers_ndi_on_a_phone_from_the_e_mailed_link(
    browser: Any, world: dict[str, Any]
) -> None:
    url = world["url"]
    findings = Findings()

    # The clinician, on a phone too, sends NDI from the episode.
    clinician = browser.new_context(viewport=PHONE).new_page()
    clinician.goto(f"{url}/login")
    clinician.get_by_label("Email").fill(EMAIL)
    clinician.get_by_label("Password").fill(PASSWORD)
    clinician.get_by_role("button", name="Sign in").click()
    clinician.goto(f"{url}/episodes/{world['episode']}")
    clinician.get_by_role("link", name="Questionnaires from home").click()
    ndi = clinician.get_by_label("Neck Disability Index")
    if not ndi.is_checked():
        ndi.check()
    ticked = clinician.locator("input[name=instrument_ids]:checked").evaluate_all(
        "boxes => boxes.map(b => b.value)"
    )
    for value in ticked:
        if value != "ndi":
            clinician.locator(f"input[name=instrument_ids][value={value}]").uncheck()
    clinician.get_by_role("button", name="Send to the patient by e-mail").click()
    assert clinician.get_by_text("Queued").is_visible()
    findings.check(clinician, "q-clinician-send", 390)

    # The mail arrives at the SMTP server; its link opens the patient's page.
    mail = _mail(world["catcher"])
    link = re.search(r"(http://127\.0\.0\.1:\d+/q/[A-Za-z0-9_\-]+)", mail.body)
    assert link, mail.body
    assert "Harbour Physio" in mail.body
    assert "Neck" not in mail.body

    phone = browser.new_context(viewport=PHONE)
    patient = phone.new_page()
    interactions = 1  # opening the link from the e-mail
    patient.goto(link[1])
    assert patient.get_by_role("heading", name="Neck Disability Index").is_visible()
    findings.check(patient, "q-patient-questionnaire", 390)
    shot(patient, "q-patient-questionnaire-390")
    items = patient.locator("li.p-item")
    assert items.count() == 10
    for i, value in enumerate(ANSWERS):
        choice = items.nth(i).locator(f"input[type=radio][value='{value}']")
        box = items.nth(i).locator("label.p-choice").nth(value).bounding_box()
        assert box is not None
        assert box["height"] >= 44  # a touch target
        choice.click()
        interactions += 1
    patient.get_by_role("button", name="Send my answers").click()
    interactions += 1
    expect(patient.get_by_role("heading", name="Thank you")).to_be_visible()  # waits for the page
    findings.check(patient, "q-patient-thanks", 390)

    # Used once: the link now says so, in plain words.
    patient.goto(link[1])
    assert patient.get_by_text("already sent your answers").is_visible()
    findings.check(patient, "q-patient-used-link", 390)
    # An unknown link: a plain page with a way to ask for a new one.
    patient.goto(f"{url}/q/not-a-link")
    findings.check(patient, "q-patient-unknown-link", 390)

    # The clinician sees the score, marked patient-reported.
    clinician.reload()
    row = clinician.locator("tr", has_text="Neck Disability Index")
    assert "30 %" in row.inner_text()  # units spaced
    assert "patient-reported" in row.inner_text()
    findings.check(clinician, "q-clinician-result", 390)
    outbox = clinician.context.new_page()
    outbox.goto(f"{url}/outbox")
    assert "sent" in outbox.locator("tbody").inner_text()
    findings.check(outbox, "q-outbox", 390)
    outbox.goto(f"{url}/settings/questionnaires")
    findings.check(outbox, "q-plan", 390)

    print(f"\npatient interactions (link open + answers + send): {interactions}")
    assert interactions == 12
    assert not findings.problems, "\n".join(findings.problems)


def test_the_error_page_names_the_question_and_passes_axe(
    browser: Any, world: dict[str, Any]
) -> None:
    """An answer missing when sending: the page names the question, keeps the rest."""
    url = world["url"]
    clinician = browser.new_context(viewport=PHONE).new_page()
    clinician.goto(f"{url}/login")
    clinician.get_by_label("Email").fill(EMAIL)
    clinician.get_by_label("Password").fill(PASSWORD)
    clinician.get_by_role("button", name="Sign in").click()
    clinician.goto(f"{url}/episodes/{world['episode']}/questionnaires")
    clinician.get_by_role("button", name="Send to the patient by e-mail").click()
    mail = _mail(world["catcher"], 2)
    link = re.search(r"(http://127\.0\.0\.1:\d+/q/[A-Za-z0-9_\-]+)", mail.body)
    assert link
    patient = browser.new_context(viewport=PHONE).new_page()
    patient.goto(link[1])
    first = patient.locator("form.p-form").first
    first.locator("li.p-item").first.locator("input[type=radio]").first.click()
    # Saved the moment it was chosen (static/patient.js): a new page shows it, no button
    # pressed.
    again = patient.context.new_page()
    for _ in range(50):
        again.goto(link[1])
        if again.locator("input[type=radio]:checked").count() == 1:
            break
        time.sleep(0.1)
    assert again.locator("input[type=radio]:checked").count() == 1
    first.get_by_role("button", name="Send my answers").click()
    assert patient.get_by_role("alert").is_visible()
    assert "Please answer this question" in patient.get_by_role("alert").inner_text()
    findings = Findings()
    findings.check(patient, "q-patient-missing-answer", 390)
    assert not findings.problems, "\n".join(findings.problems)


@pytest.mark.parametrize("width", [1366, 820])
def test_the_patients_page_passes_axe_on_larger_screens(
    browser: Any, world: dict[str, Any], width: int
) -> None:
    url = world["url"]
    before = len([m for m in world["catcher"].messages if PATIENT_EMAIL in m.recipients])
    clinician = browser.new_context(viewport=PHONE).new_page()
    clinician.goto(f"{url}/login")
    clinician.get_by_label("Email").fill(EMAIL)
    clinician.get_by_label("Password").fill(PASSWORD)
    clinician.get_by_role("button", name="Sign in").click()
    clinician.goto(f"{url}/episodes/{world['episode']}/questionnaires")
    clinician.get_by_role("button", name="Send to the patient by e-mail").click()
    mail = _mail(world["catcher"], before + 1)
    link = re.search(r"(http://127\.0\.0\.1:\d+/q/[A-Za-z0-9_\-]+)", mail.body)
    assert link
    patient = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    patient.goto(link[1])
    findings = Findings()
    findings.check(patient, "q-patient-questionnaire", width)
    staff = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    staff.goto(f"{url}/login")
    staff.get_by_label("Email").fill(EMAIL)
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    for path, name in (
        (f"/episodes/{world['episode']}/questionnaires", "q-clinician-send"),
        ("/outbox", "q-outbox"),
        ("/settings/questionnaires", "q-plan"),
    ):
        staff.goto(f"{url}{path}")
        findings.check(staff, name, width)
    assert not findings.problems, "\n".join(findings.problems)
