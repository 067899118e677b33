"""Every page of the app, checked with axe-core (axe-playwright-python) in Chromium at the
widths of a laptop (1366 px), a tablet (820 px) and a phone (390 px): no serious or
critical violation, no sideways scrolling on the phone. A screenshot of each page at each
width is kept in `artifacts/screenshots/` (`a11y-<page>-<width>.png`).

The clinic is demo-like: the synthetic clinic, an owner who signs in, a patient screened
and consented with an open episode, a draft note and a signed one; another account with
two-factor sign-in (the code page) and a clinic that requires it (the enrolment pages)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
import uvicorn

from needlepoint.actions import accounts, clinics, consent, episodes, screening, sessions
from needlepoint.actions.context import Actor
from needlepoint.actions.patients import record_referral, register_patient
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.tables import sessions as session_rows
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.totp import code_at
from needlepoint.domain.commands import (
    MfaCode,
    RecordReferral,
    RegisterClinic,
    RegisterUser,
    SignSession,
    TrainingCourse,
    UpdateSecuritySettings,
)
from needlepoint.domain.enums import Role
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.web.app import create_app
from tests.e2e.conftest import ARTIFACTS, _free_port
from tests.factories import consent_cmd, episode_cmd, patient_cmd, screening_cmd, session_cmd

WIDTHS = {1366: 900, 820: 1180, 390: 844}  # width: height
OWNER, MFA_USER, ENROLLING = (
    "owner-a11y@needlepoint.example",
    "mfa-a11y@needlepoint.example",
    "enrol-a11y@needlepoint.example",
)
PASSWORD = "accessible-test-password"
BLOCKING = {"serious", "critical"}
# Violations whose fix is another part of issue 15, done on another branch: the styled
# 404 page and the escaped `autocomplete` attribute of the field macro (item 14), the
# analytics loading state that replaces the page's meta refresh (item 12). They are not
# passed silently: each occurrence is reported as a warning naming the item. Delete an
# entry once its fix is merged (the test then holds those pages to the same rule).
AWAITING: dict[tuple[str, str], str] = {}  # (page, rule) → why, while a fix is pending


@dataclass(frozen=True)
class Clinic:
    url: str
    patient: UUID
    episode: UUID
    draft: UUID
    signed: UUID
    signed_episode: UUID
    colleague: UUID


def _user(engine: sa.Engine, owner: Actor, email: str, role: Role, **extra: Any) -> UUID:
    cmd = RegisterUser(email=email, full_name=email.split("@")[0].title(), role=role, **extra)
    return clinics.register_user(SqlUnitOfWork(engine), owner, cmd).id


def _build(engine: sa.Engine) -> dict[str, UUID]:
    upgrade(engine)
    report = generate_clinic(engine, patients_count=6, seed=2026, clinic_name="A11y Clinic")
    owner = Actor(report.owner_id, report.clinic_id, source="test")
    owner_id = _user(engine, owner, OWNER, Role.OWNER, password=PASSWORD)
    me = Actor(owner_id, report.clinic_id, source="test")
    course = TrainingCourse(
        provider="Course provider",
        course="Dry needling 1",
        hours_in_person=60,
        completed_on=date(2024, 3, 1),
        exam_passed=True,
    )
    clinician_id = _user(
        engine,
        me,
        "clinician-a11y@needlepoint.example",
        Role.CLINICIAN,
        licence_number="PT-1",
        licence_date=date(2015, 1, 1),
        training=[course],
    )
    clinician = Actor(clinician_id, report.clinic_id, source="test")
    uow = lambda: SqlUnitOfWork(engine)  # noqa: E731
    patient = register_patient(uow(), clinician, patient_cmd(given_name="Ada", family_name="Lind"))
    screening.record_screening(uow(), clinician, screening_cmd(patient.id))
    given = consent.record_consent(uow(), clinician, consent_cmd(patient.id))
    record_referral(
        uow(),
        clinician,
        RecordReferral(
            patient_id=patient.id, referrer_name="Dr Ana Ruiz, MD", received_on=date(2026, 1, 5)
        ),
    )
    episode = episodes.open_episode(uow(), clinician, episode_cmd(patient.id))
    signed = sessions.record_session(uow(), clinician, session_cmd(episode.id))
    sessions.sign_session(
        uow(), clinician, SignSession(session_id=signed.id, expected_version=signed.version)
    )
    draft = sessions.record_session(uow(), clinician, session_cmd(episode.id))
    with engine.connect() as c:  # a signed note of the synthetic clinic, with its history
        demo_signed = c.execute(
            sa.select(session_rows.c.id, session_rows.c.episode_id)
            .where(session_rows.c.status == "signed", session_rows.c.clinic_id == report.clinic_id)
            .limit(1)
        ).one()
    # an account with two-factor sign-in: the code page
    mfa_id = _user(engine, me, MFA_USER, Role.CLINICIAN, password=PASSWORD)
    mfa = Actor(mfa_id, report.clinic_id, source="test")
    secret, _uri = accounts.begin_mfa_enrolment(uow(), mfa)
    accounts.confirm_mfa_enrolment(uow(), mfa, MfaCode(code=code_at(secret, datetime.now(UTC))))
    # a clinic that requires two-factor sign-in: the enrolment pages
    other_owner = clinics.register_clinic(
        uow(),
        RegisterClinic(
            name="Strict Clinic", owner_email="strict-owner@needlepoint.example", owner_name="S"
        ),
        source="test",
    )
    strict = Actor(other_owner.id, other_owner.clinic_id, source="test")
    _user(engine, strict, ENROLLING, Role.CLINICIAN, password=PASSWORD)
    accounts.update_security_settings(
        uow(), strict, UpdateSecuritySettings(mfa_required=True), expected_version=1
    )
    return {
        "patient": patient.id,
        "episode": episode.id,
        "draft": draft.id,
        "signed": signed.id,
        "demo_signed": demo_signed.id,
        "demo_episode": demo_signed.episode_id,
        "colleague": clinician_id,
        "consent": given.id,
    }


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, UUID]]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('a11y') / 'a11y.db'}")
    ids = _build(engine)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, secret_key="a" * 40, rate_limit=None),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ids
    server.should_exit = True
    thread.join(timeout=10)


def _signed_in_pages(ids: dict[str, UUID]) -> list[tuple[str, str]]:
    p, e = ids["patient"], ids["episode"]
    return [
        ("patients", "/patients"),
        ("patient-chart", f"/patients/{p}"),
        ("patient-edit", f"/patients/{p}/edit"),
        ("new-patient", "/patients/new"),
        ("screening", f"/patients/{p}/screening"),
        ("consent", f"/patients/{p}/consent"),
        ("new-episode", f"/patients/{p}/episodes/new"),
        ("episode", f"/episodes/{e}"),
        ("new-note", f"/episodes/{e}/sessions/new"),
        ("note-draft", f"/sessions/{ids['draft']}"),
        ("note-signed", f"/sessions/{ids['signed']}"),
        ("note-signed-demo", f"/sessions/{ids['demo_signed']}"),
        ("progress", f"/episodes/{ids['demo_episode']}/progress"),
        ("note-print", f"/sessions/{ids['signed']}/print"),
        ("report-print", f"/episodes/{ids['demo_episode']}/report"),
        ("consent-print", f"/consents/{ids['consent']}/print"),
        ("analytics", "/analytics"),
        ("analytics-completion", "/analytics/completion"),
        ("settings", "/settings"),
        ("staff", "/staff"),
        ("staff-member", f"/staff/{ids['colleague']}"),
        ("account", "/account"),
        ("not-found", "/no-such-page"),
    ]


class Findings:
    """What the pages got wrong, all of them, reported at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked = 0

    def check(self, page: Any, name: str, width: int) -> None:
        from axe_playwright_python.sync_playwright import Axe

        page.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-{width}.png"), full_page=True)
        results = Axe().run(page)
        for v in results.response["violations"]:
            if v["impact"] in BLOCKING:
                targets = "; ".join(", ".join(n["target"]) for n in v["nodes"][:5])
                found = f"{name} @ {width}px: {v['id']} ({v['impact']}): {v['help']} [{targets}]"
                awaiting = AWAITING.get((name, v["id"]))
                if awaiting is not None:
                    warnings.warn(f"{found}: awaiting issue 15 {awaiting}", stacklevel=1)
                else:
                    self.problems.append(found)
        if width <= 390:
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll > inner:
                wide = page.evaluate(
                    """() => [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                          + (e.className && typeof e.className === 'string'
                             ? '.' + e.className.trim().split(/\\s+/).join('.') : ''))"""
                )
                self.problems.append(
                    f"{name} @ {width}px: scrolls sideways ({scroll} > {inner} px): {wide}"
                )
        self.checked += 1


def _until_analytics_ready(page: Any) -> None:
    """The first view starts computing the clinic's analytics: check the page with its
    figures (tables and plots), not the "being prepared" notice."""
    for _ in range(90):
        page.wait_for_load_state("networkidle")
        if page.get_by_text("being prepared").count() == 0:
            return
        time.sleep(1)
        page.reload()
    raise AssertionError("the analytics were not ready after 90 reloads")


def _sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_passes_axe_and_fits_the_screen(
    browser: Any, clinic: tuple[str, dict[str, UUID]], width: int
) -> None:
    url, ids = clinic
    findings = Findings()
    viewport = {"width": width, "height": WIDTHS[width]}

    # signed out: sign-in, password reset, the two-factor pages
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    page.goto(f"{url}/login")
    findings.check(page, "login", width)
    page.goto(f"{url}/password-reset")
    findings.check(page, "password-reset", width)
    _sign_in(page, url, MFA_USER)
    assert page.url.endswith("/login/code")
    findings.check(page, "mfa-code", width)
    ctx.close()
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    _sign_in(page, url, ENROLLING)
    assert page.url.endswith("/login/enrol")
    findings.check(page, "mfa-enrol", width)
    ctx.close()

    # signed in as the owner: every page of the app
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    _sign_in(page, url, OWNER)
    assert page.url.endswith("/patients")
    for name, path in _signed_in_pages(ids):
        response = page.goto(f"{url}{path}")
        assert response is not None
        expected = 404 if name == "not-found" else 200
        assert response.status == expected, (name, response.status)
        if name == "analytics":
            _until_analytics_ready(page)
        findings.check(page, name, width)
    ctx.close()

    assert findings.checked == 4 + len(_signed_in_pages(ids))
    assert not findings.problems, "\n".join(findings.problems)


def test_the_api_docs_work_offline_under_the_content_security_policy(
    browser: Any, clinic: tuple[str, dict[str, UUID]]
) -> None:
    """Swagger UI renders the operations from the app's own files: no request leaves the
    server, and the browser reports no Content-Security-Policy violation."""
    url, _ids = clinic
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/api/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    assert page.locator(".opblock").count() > 20
    assert [r for r in requested if not r.startswith(url)] == []
    assert not [e for e in errors if "Content Security Policy" in e], errors
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS) / "a11y-api-docs-1366.png"))
    ctx.close()
