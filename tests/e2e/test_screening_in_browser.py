"""The screening and the chart in a real Chromium: a woman with lymphoedema of the left arm
and a left knee replacement is screened (findings in clinical words, the status card names
the limb), then screened again without them: the page asks what changed and why, and the
chart's screening history shows it. A man's screening asks nothing about pregnancy.
Screenshots in `artifacts/screenshots/` (30-…)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import shot
from tests.e2e.test_demo_in_browser import sign_in


def _register(page: Any, given: str, family: str, mrn: str, sex: str, born: str) -> None:
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("Given name").fill(given)
    page.get_by_label("Family name").fill(family)
    page.get_by_label("Date of birth").fill(born)
    page.get_by_label("Sex").select_option(sex)
    page.get_by_label("Chart number (MRN)").fill(mrn)
    page.get_by_role("button", name="Register patient").click()
    page.wait_for_selector(f"h1:has-text('{family}, {given}')")


def _answer_all_no(page: Any) -> None:
    questions = page.locator("fieldset.question")
    for i in range(questions.count()):
        questions.nth(i).get_by_label("No", exact=True).check()


def test_findings_name_the_limb_and_clearing_one_says_why(page: Any, clinic_server: str) -> None:
    sign_in(page, clinic_server)
    page.goto(f"{clinic_server}/patients")
    _register(page, "Maren", "Lindqvist", "E2E-SCR-1", "female", "1971-08-30")
    page.get_by_role("link", name="Screen now").click()
    _answer_all_no(page)
    page.locator("#q-lymphoedema").get_by_label("Yes", exact=True).check()
    page.locator("#q-lymphoedema").get_by_label("left arm", exact=True).check()
    page.locator("#q-prosthetic_joint").get_by_label("Yes", exact=True).check()
    page.locator("#q-prosthetic_joint").get_by_label("left knee", exact=True).check()
    shot(page, "30-screening-questions")
    page.get_by_role("button", name="Review decision").click()
    page.wait_for_selector("#decision-h")
    text = page.locator("section.card").first.inner_text()
    assert "Lymphoedema of the left arm: never needle this limb." in text
    assert "Joint replacement of the left knee: Never needle into the joint capsule" in text
    assert "upper_limb" not in text
    assert "Does the patient" not in text
    for box in page.locator("input[name=ack]").all():
        box.check()
    shot(page, "31-screening-review")
    page.get_by_role("button", name="Record screening").click()
    page.wait_for_selector("#status-h")
    card = page.locator("section.status").inner_text()
    assert "Lymphoedema of the left arm" in card
    assert "the left knee" in card
    # the finding drawn: the left arm greyed on the chart card's body chart
    assert page.locator(".avoid-chart polygon.avoid").count() >= 4
    assert "lymphoedema" in page.locator("#avoid-cap").inner_text()
    shot(page, "32-chart-status-card")

    page.get_by_role("link", name="Screen again").click()
    # a re-screening starts from the last answers
    assert page.locator("#q-lymphoedema-yes").is_checked()
    _answer_all_no(page)
    page.get_by_label("Nothing has changed in this section", exact=False).first.check()
    page.locator("#unchanged-precaution").check()
    page.get_by_role("button", name="Review decision").click()
    page.wait_for_selector("#clearance")
    assert "Lymphoedema of the left arm" in page.locator("#clearance").inner_text()
    page.get_by_role("button", name="Record screening").click()
    page.wait_for_selector("[data-field=clearance]")
    page.get_by_label("What changed").select_option("recorded_in_error")
    page.get_by_label("Why it no longer applies").fill(
        "Swelling was post-operative oedema, not lymphoedema; the knee was the right one."
    )
    shot(page, "33-screening-clearance")
    page.get_by_role("button", name="Record screening").click()
    page.wait_for_selector("#screening-history")
    history = page.locator("#screening-history").inner_text()
    assert (
        "Cleared: Lymphoedema of the left arm; Joint replacement of the left knee. "
        "What changed: recorded in error. Why: Swelling was" in history
    )
    assert "What changed: recorded in error." in history
    assert "Erin Browser" in history
    shot(page, "34-chart-screening-history")


def test_a_mans_screening_does_not_ask_about_pregnancy(page: Any, clinic_server: str) -> None:
    sign_in(page, clinic_server)
    page.goto(f"{clinic_server}/patients")
    _register(page, "Tomas", "Berg", "E2E-SCR-2", "male", "1990-02-11")
    page.get_by_role("link", name="Screen now").click()
    assert page.locator("#q-pregnancy").count() == 0
    assert "pregnancy is not asked" in page.locator("main").inner_text()
    shot(page, "35-screening-male")
