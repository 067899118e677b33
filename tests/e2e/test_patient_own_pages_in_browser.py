"""Issue 16, second part, in Chromium at phone size (390 × 844 px): the clinician hands
the device to the patient from the chart (kiosk mode): the device shows the patient's
questionnaire and nothing of the clinician's (the chart asks to sign in again); the
patient answers, then reads their own progress and a copy of their consent, and
withdraws it. axe-core finds no serious or critical violation on these pages, and none
scrolls sideways (`tests.e2e.test_accessibility.Findings`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from needlepoint.actions import consent, episodes, patients, questionnaires
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import AssignQuestionnaires
from tests.e2e.conftest import clinic_with_clinician, serve_engine, shot
from tests.e2e.test_accessibility import Findings
from tests.factories import consent_cmd, episode_cmd, patient_cmd

EMAIL, PASSWORD = "kiosk-e2e@needlepoint.example", "kiosk-e2e-password"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db: Path = tmp_path_factory.mktemp("kiosk-e2e") / "k.db"
    engine, as_pt = clinic_with_clinician(db, EMAIL, PASSWORD)
    p = patients.register_patient(
        SqlUnitOfWork(engine), as_pt, patient_cmd(given_name="Nora", email="nora@k.example")
    )
    consent.record_consent(SqlUnitOfWork(engine), as_pt, consent_cmd(p.id))
    ep = episodes.open_episode(SqlUnitOfWork(engine), as_pt, episode_cmd(p.id))
    questionnaires.assign_questionnaires(
        SqlUnitOfWork(engine),
        as_pt,
        AssignQuestionnaires(episode_id=ep.id, instrument_ids=["ndi", "nprs"], send=False),
    )
    with serve_engine(engine) as url:
        yield {"url": url, "patient": p.id}


def test_kiosk_then_the_patients_progress_and_consent_on_a_phone(
    browser: Any, world: dict[str, Any]
) -> None:
    url, findings = world["url"], Findings()
    device = browser.new_context(viewport=PHONE).new_page()
    device.goto(f"{url}/login")
    device.get_by_label("Email").fill(EMAIL)
    device.get_by_label("Password").fill(PASSWORD)
    device.get_by_role("button", name="Sign in").click()
    device.goto(f"{url}/patients/{world['patient']}")
    panel = device.locator("#questionnaires-due")
    assert "due today" in panel.inner_text()
    findings.check(device, "kiosk-chart-panel", 390)
    device.get_by_role("button", name="Hand to patient").click()

    # The device now shows only the patient's questionnaires.
    assert device.get_by_role("heading", name="Neck Disability Index").is_visible()
    assert "/q/" in device.url
    findings.check(device, "kiosk-questionnaire", 390)
    shot(device, "kiosk-questionnaire-390")
    kiosk_url = device.url
    # No way back into the clinician's session: the chart asks to sign in again.
    device.goto(f"{url}/patients/{world['patient']}")
    assert "/login" in device.url
    device.go_back()
    device.goto(kiosk_url)

    nprs = device.locator("form.p-form", has_text="Numeric Pain Rating Scale")
    nprs.locator("input[type=radio][value='3']").first.click()
    nprs.get_by_role("button", name="Send my answers").click()

    # While something is left to answer, the patient's own pages open on the tablet.
    device.get_by_role("link", name="My progress").click()
    assert device.get_by_role("heading", name="My progress").is_visible()
    text = device.locator("main").inner_text()
    assert "sent by you" in text
    assert "source:" in text
    findings.check(device, "patient-progress", 390)
    shot(device, "patient-progress-390")

    device.get_by_role("link", name="My consent").click()
    assert device.get_by_role("heading", name="My consent to dry needling").is_visible()
    assert "Signed by Ada Testperson" in device.locator("main").inner_text()
    findings.check(device, "patient-consent", 390)
    shot(device, "patient-consent-390")
    device.get_by_label("I withdraw my consent to dry needling").check()
    device.get_by_role("button", name="Withdraw my consent").click()
    assert device.get_by_text("Your consent is withdrawn").is_visible()
    assert "Withdrawn on" in device.locator("main").inner_text()
    findings.check(device, "patient-consent-withdrawn", 390)

    device.goto(kiosk_url)
    ndi = device.locator("form.p-form", has_text="Neck Disability Index")
    for i in range(10):
        ndi.locator("li.p-item").nth(i).locator("input[type=radio][value='1']").click()
    ndi.get_by_role("button", name="Send my answers").click()
    expect(device.get_by_role("heading", name="Thank you")).to_be_visible()  # waits for the page
    # The last answer sent, the tablet is for the next person: nothing of this patient's.
    assert "hand the tablet back" in device.locator("main").inner_text()
    assert device.get_by_role("link", name="My progress").count() == 0
    findings.check(device, "kiosk-thanks", 390)
    device.goto(kiosk_url + "/progress")
    assert "This link has been used" in device.locator("main").inner_text()
    assert not findings.problems, "\n".join(findings.problems)
