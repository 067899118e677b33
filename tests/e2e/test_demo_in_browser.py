"""A clinician uses the demo in a real browser: sign in, find a patient, read the chart."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import EMAIL, PASSWORD, shot


def sign_in(page: Any, server: str) -> None:
    page.goto(f"{server}/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/patients")


def test_clinician_signs_in_finds_a_patient_and_reads_the_timeline(page: Any, server: str) -> None:
    page.goto(f"{server}/")
    assert page.title() == "Sign in · Needlepoint"
    shot(page, "01-sign-in")
    sign_in(page, server)
    assert page.locator("p.count").inner_text() == "40 patients."
    assert page.locator("table.list tbody tr").count() == 25  # first page
    shot(page, "02-patient-list")

    page.get_by_label("Search by name or chart number").fill("MRN-000004")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=MRN-000004**")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    shot(page, "03-search")

    rows.first.get_by_role("link").click()
    page.wait_for_selector("ol.timeline")
    assert page.locator("h1").inner_text().count(",") == 1
    timeline = page.locator("ol.timeline").inner_text()
    assert "Episode opened" in timeline
    assert "Numeric Pain Rating Scale" in timeline
    shot(page, "04-patient-timeline")


def test_pages_work_from_the_keyboard_with_a_visible_focus(page: Any, server: str) -> None:
    page.goto(f"{server}/login")
    page.keyboard.press("Tab")  # skip link first
    assert page.evaluate("document.activeElement.className") == "skip"
    tabs = 1
    while page.evaluate("document.activeElement.id") != "email" and tabs < 4:
        page.keyboard.press("Tab")
        tabs += 1
    assert page.evaluate("document.activeElement.id") == "email"  # skip link, brand, email
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/patients")


def test_wrong_password_is_refused_in_the_browser(page: Any, server: str) -> None:
    page.goto(f"{server}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    assert page.url.endswith("/login")
