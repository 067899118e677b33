"""What a clinician reads about site safety, in a real Chromium: the chart's status card
names the affected limb in clinical words, and a refused site says why at that site.
Screenshots are kept in `artifacts/screenshots/` (30-…, 31-…)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from needlepoint.actions import consent, episodes, patients, screening
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.tables import users
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import OpenEpisode, RecordConsent, RecordScreening
from needlepoint.domain.screening import questionnaire
from tests.e2e.conftest import EMAIL, serve, shot
from tests.e2e.test_demo_in_browser import sign_in
from tests.factories import consent_body, patient_cmd

INTERNAL_ID = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b[a-z_]+:[a-z_]+\b")


@pytest.fixture(scope="module")
def lymphoedema_chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A server with one patient screened today: lymphoedema of the left arm and
    anticoagulants; consented; a neck pain episode. Yields (url, patient id, episode id)."""
    db: Path = tmp_path_factory.mktemp("e2e-wording") / "clinic.db"
    with serve(db, 3) as url:
        engine = make_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(users.c.id, users.c.clinic_id).where(users.c.email == EMAIL)
            ).one()
        actor = Actor(row.id, row.clinic_id)
        uow = lambda: SqlUnitOfWork(engine)  # noqa: E731
        patient = patients.register_patient(
            uow(), actor, patient_cmd(mrn="MRN-LYM-1", given_name="Lena", family_name="Arm")
        )
        answers = {q.id: False for q in questionnaire().questions}
        answers |= {"lymphoedema": True, "anticoagulants": True}
        now = datetime.now(UTC).replace(microsecond=0)
        screening.record_screening(
            uow(),
            actor,
            RecordScreening(
                patient_id=patient.id,
                answers=answers,
                lymphoedema_areas=["upper_limb:left"],
                acknowledged_precautions=["anticoagulants", "lymphoedema"],
                screened_at=now - timedelta(minutes=5),
            ),
        )
        consent.record_consent(
            uow(),
            actor,
            RecordConsent(
                patient_id=patient.id,
                **{**consent_body(), "signed_at": now - timedelta(minutes=4)},
            ),
        )
        episode = episodes.open_episode(
            uow(),
            actor,
            OpenEpisode(
                patient_id=patient.id,
                condition="shoulder_pain",
                onset_date=date.today() - timedelta(days=30),
                opened_on=date.today() - timedelta(days=1),
            ),
        )
        yield url, str(patient.id), str(episode.id)
        engine.dispose()


def test_the_status_card_and_a_refused_site_speak_clinically(
    page: Any, lymphoedema_chart: tuple[str, str, str]
) -> None:
    url, patient_id, episode_id = lymphoedema_chart
    sign_in(page, url)
    page.goto(f"{url}/patients/{patient_id}")
    card = page.locator("section.card.status")
    text = card.inner_text()
    assert "Lymphoedema of the left arm: never needle this limb." in text
    assert "Anticoagulant or antithrombotic medicine: Needle with caution" in text
    assert "upper_limb" not in text
    assert "Does the patient" not in text
    assert not INTERNAL_ID.search(text), text
    card.screenshot(path=str(shot(page, "30-status-card").with_name("30-status-card-only.png")))
    page.goto(f"{url}/episodes/{episode_id}/sessions/new")
    page.get_by_label("Subjective").fill("Left shoulder pain.")
    region = "svg[data-view=front] a.region[data-chart-key=biceps][data-side=left]"
    page.locator(region).click()
    page.locator("#muscle-list").get_by_role("button", name="Biceps brachii").click()
    site = page.locator("#sites li.site").last
    site.get_by_label("Depth (mm)").fill("10")
    site.get_by_label("Insertions").fill("2")
    page.wait_for_selector("#site-0 .finding.action-refuse")
    findings = page.locator("#site-0 .site-problems").inner_text()
    assert "Lymphoedema of the left arm: never needle this limb." in findings
    assert "Anticoagulant or antithrombotic medicine" in findings  # at the point of needling
    assert not INTERNAL_ID.search(findings), findings
    shot(page, "31-refused-site")
    page.locator("#site-0").screenshot(
        path=str(shot(page, "31-refused-site").with_name("31-refused-site-only.png"))
    )
