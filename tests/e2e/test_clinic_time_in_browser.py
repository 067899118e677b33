"""Issue 15's time-zone check, in a real Chromium whose clock is in Los Angeles
(`timezone_id`) for a clinic whose zone is America/Los_Angeles: a new note defaults to
the clinic's date, an evening note is recorded, confirmed and signed, and it reads back
on that evening's date with its zone; an adverse event the evening after the session
is recorded on the signed note with Florida's reporting deadline. Screenshots at 1366,
820 and 390 px, without sideways scrolling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from needlepoint.actions.clinics import register_user
from needlepoint.actions.context import Actor
from needlepoint.actions.credentials import update_clinic_settings
from needlepoint.actions.episodes import open_episode
from needlepoint.actions.patients import register_patient
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterUser, UpdateClinicSettings
from needlepoint.domain.entities import Clinic
from needlepoint.domain.enums import Role
from needlepoint.synthetic.clinic import generate_clinic
from tests.e2e.conftest import serve_engine as serve_engine
from tests.e2e.conftest import shot
from tests.factories import episode_cmd, patient_cmd

LA = "America/Los_Angeles"
EMAIL, PASSWORD = "la@needlepoint.example", "browser-test-password"
WIDTHS = (1366, 820, 390)


@pytest.fixture(scope="module")
def la_clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A clinic in Los Angeles (Florida's rules, for a reporting deadline) with one open
    episode; yields the base URL and the episode id."""
    db: Path = tmp_path_factory.mktemp("e2e-la") / "la.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    report = generate_clinic(engine, patients_count=2, seed=15, clinic_name="Pacific Needling")
    owner = Actor(report.owner_id, report.clinic_id)
    uow = SqlUnitOfWork(engine)
    with uow:
        clinic = uow.get(Clinic, report.clinic_id, report.clinic_id)
    assert clinic is not None
    update_clinic_settings(
        SqlUnitOfWork(engine),
        owner,
        UpdateClinicSettings(expected_version=clinic.version, time_zone=LA, jurisdiction="us-fl"),
    )
    user = register_user(
        SqlUnitOfWork(engine),
        owner,
        RegisterUser(
            email=EMAIL,
            full_name="Lee Angeles",
            role=Role.CLINICIAN,
            password=PASSWORD,
            licence_number="PT 48213",
        ),
    )
    me = Actor(user.id, user.clinic_id)
    patient = register_patient(
        SqlUnitOfWork(engine), me, patient_cmd(given_name="Rosa", family_name="Pacheco")
    )
    episode = open_episode(SqlUnitOfWork(engine), me, episode_cmd(patient.id))
    with serve_engine(engine) as url:
        yield url, str(episode.id)


@pytest.fixture
def la_page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport={"width": 1366, "height": 900}, timezone_id=LA, locale="en-US"
    )
    pg = ctx.new_page()
    yield pg
    ctx.close()


def _shots(page: Any, name: str) -> None:
    """Screenshots at the three widths; this page's own content (`main`) never needs
    sideways scrolling. (The site-wide navigation bar's phone layout is issue 15 item 10,
    another change.)"""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        main = page.evaluate(
            "(() => { const m = document.getElementById('main');"
            " return [m.scrollWidth, m.getBoundingClientRect().right]; })()"
        )
        assert main[0] <= width, (name, width, main)  # wide tables scroll in their own box
        assert main[1] <= width + 1, (name, width, main)
        shot(page, f"tz-{name}-{width}")
    page.set_viewport_size({"width": 1366, "height": 900})


def test_an_evening_note_in_los_angeles_keeps_its_local_date_and_zone(
    la_page: Any, la_clinic: tuple[str, str]
) -> None:
    page = la_page
    url, episode_id = la_clinic
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == LA
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/patients")

    tz = ZoneInfo(LA)
    before = datetime.now(tz).date()
    page.goto(f"{url}/episodes/{episode_id}/sessions/new")
    default = page.get_by_label("Session started").input_value()
    after = datetime.now(tz).date()
    # The clinic's date, not UTC's: in the evening in Los Angeles UTC is already tomorrow.
    assert default[:10] in (before.isoformat(), after.isoformat())
    assert LA in page.locator("label[for=f-started_at]").inner_text()

    evening = datetime.combine(before - timedelta(days=1), datetime.min.time()).replace(
        hour=21, minute=30, tzinfo=tz
    )  # yesterday 21:30 in Los Angeles: 05:30 or 04:30 UTC today
    zone = evening.tzname()
    assert zone in ("PST", "PDT")
    day = evening.date().isoformat()
    page.get_by_label("Session started").fill(evening.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Subjective").fill("Evening visit after work: neck pain 6/10.")
    page.locator("label[for=nprs-6]").click()
    page.get_by_role("button", name="Sign note").click()

    page.wait_for_selector("#confirm-sign")
    assert page.locator("#confirm-when").inner_text() == f"{day} 21:30 {zone}"
    assert "Numeric Pain Rating Scale: 6/10" in page.locator("main").inner_text()
    _shots(page, "confirm")
    page.get_by_role("button", name="Sign and lock").click()

    page.wait_for_selector("#signed-h")
    assert page.locator("#note-when").inner_text() == f"{day} 21:30 {zone}"
    signed = page.locator("#signed-h").inner_text()
    assert signed.startswith("Signed ")
    assert "PST" in signed or "PDT" in signed
    signer = page.locator("#signer").inner_text()
    assert "Lee Angeles" in signer
    assert "licence PT 48213" in signer
    assert page.locator("#note-patient").inner_text() == "Pacheco, Rosa"

    # Next-day story: bruising noticed later that evening, recorded against the note.
    later = evening + timedelta(hours=1, minutes=15)
    page.get_by_label("Event", exact=True).select_option("bruising")
    page.locator("#late-sev").select_option("mild")  # nothing is chosen for the clinician
    page.get_by_label(f"Onset ({LA})").fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("What happened", exact=True).fill("Bruise over the left upper trapezius")
    page.get_by_label("Reportable to the board").check()
    page.get_by_role("button", name="Record adverse event").click()
    page.wait_for_selector(".ae-record")
    record = page.locator(".ae-record").first
    assert f"onset {day} 22:45 {zone}" in record.locator("h3").inner_text()
    deadline = record.locator(".deadline").inner_text()
    assert "within 15 days" in deadline
    assert (evening.date() + timedelta(days=15)).isoformat() in deadline
    _shots(page, "signed-note")


def test_a_refused_sign_marks_the_field_and_says_why_below_the_save_status(
    la_page: Any, la_clinic: tuple[str, str]
) -> None:
    page = la_page
    url, episode_id = la_clinic
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/patients")
    page.goto(f"{url}/episodes/{episode_id}/sessions/new")
    tomorrow = datetime.now(ZoneInfo(LA)) + timedelta(days=1)
    page.get_by_label("Session started").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Subjective").fill("Typed before the clock was checked.")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign note").click()
    summary = page.locator("#sign-problems")
    assert summary.is_visible()
    assert "Not signed" in summary.inner_text()
    assert "in the future" in summary.inner_text()
    field = page.locator("#f-started_at")
    page.wait_for_function(
        "document.getElementById('f-started_at').getAttribute('aria-invalid') === 'true'"
    )
    assert "sign-problems" in (field.get_attribute("aria-describedby") or "")
    border = page.evaluate(
        "getComputedStyle(document.getElementById('f-started_at')).borderTopColor"
    )
    assert border == "rgb(164, 22, 26)"  # --bad: visibly marked
    order = page.evaluate(
        "document.getElementById('save-status').compareDocumentPosition("
        "document.getElementById('sign-problems')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert order  # the reason comes below the save status line, never above it
    assert page.get_by_label("Subjective").input_value() == "Typed before the clock was checked."
    _shots(page, "sign-refused")
