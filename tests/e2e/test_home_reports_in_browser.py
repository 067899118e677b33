"""Questionnaires from home with their context, in Chromium at phone size (390 × 844 px):
analgesic use (the drug on record and another one), return to work or sport, PSFS with
the activities named at intake, and PSFS 2.0 with activities the patient names. A form
sent empty comes back naming the field; every page passes axe-core (no serious or
critical violation) and does not scroll sideways."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from needlepoint.actions import episodes, outcomes, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    RecordMeasurement,
    RecordMedicationUse,
)
from needlepoint.domain.enums import DrugClass
from tests.e2e.conftest import clinic_with_clinician, serve_engine, shot
from tests.e2e.test_accessibility import Findings
from tests.factories import episode_cmd, patient_cmd

PHONE = {"width": 390, "height": 844}


def test_a_patient_reports_analgesics_return_to_work_and_psfs_on_a_phone(
    browser: Any, tmp_path: Path
) -> None:
    engine, as_pt = clinic_with_clinician(tmp_path / "h.db", "h-e2e@e2e.example", "home-e2e-pw")
    p = patients.register_patient(
        SqlUnitOfWork(engine), as_pt, patient_cmd(given_name="Nora", email="nora@p.example")
    )
    ep = episodes.open_episode(SqlUnitOfWork(engine), as_pt, episode_cmd(p.id))
    outcomes.record_medication_use(
        SqlUnitOfWork(engine),
        as_pt,
        RecordMedicationUse(
            patient_id=p.id,
            episode_id=ep.id,
            drug="Ibuprofen",
            drug_class=DrugClass.NSAID,
            dose_mg=400,
            days_per_week=5,
            recorded_on=date(2026, 2, 1),
        ),
    )
    outcomes.record_measurement(
        SqlUnitOfWork(engine),
        as_pt,
        RecordMeasurement(
            patient_id=p.id,
            episode_id=ep.id,
            instrument_id="psfs",
            answers={"item1": 3, "item2": 4},
            context={"activity1": "Driving to work", "activity2": "Lifting my child"},
        ),
    )
    findings = Findings()
    with serve_engine(engine) as url:
        done = questionnaires.assign_questionnaires(
            SqlUnitOfWork(engine),
            as_pt,
            AssignQuestionnaires(
                episode_id=ep.id,
                instrument_ids=["analgesic_use", "return_to_activity", "psfs", "psfs_2"],
                send=True,
                base_url=url,
            ),
        )
        with engine.connect() as conn:
            link = conn.execute(
                sa.select(t.outbox_messages.c.link_url).where(
                    t.outbox_messages.c.id == done.message.id
                )
            ).scalar_one()
        page = browser.new_context(viewport=PHONE).new_page()
        page.goto(link)
        findings.check(page, "q-home-forms", 390)
        shot(page, "q-home-forms-390")

        # Sent empty: the page names the drug's question, nothing is written.
        medicine = page.locator("form.p-home").filter(has_text="Pain medicine")
        medicine.get_by_role("button", name="Send my answers").click()
        alert = page.get_by_role("alert")
        assert "Please answer how many days you took Ibuprofen" in alert.inner_text()
        findings.check(page, "q-home-analgesics-error", 390)
        shot(page, "q-home-analgesics-error-390")

        medicine = page.locator("form.p-home").filter(has_text="Pain medicine")
        medicine.get_by_role("radiogroup").first.get_by_label("0", exact=True).check()
        medicine.get_by_label("Name of the medicine").fill("Naproxen")
        medicine.get_by_label("anti-inflammatory", exact=False).check()
        medicine.get_by_role("radiogroup").nth(1).get_by_label("2", exact=True).check()
        medicine.get_by_role("button", name="Send my answers").click()

        back = page.locator("form.p-home").filter(has_text="Back to work or sport")
        back.get_by_label("My work").check()
        back.get_by_label("Returned", exact=True).check()
        back.get_by_label("If you have returned: on which day?").fill("2026-02-20")
        back.get_by_role("button", name="Send my answers").click()

        psfs = page.locator("form.p-home").filter(has_text="Driving to work")
        psfs.get_by_role("radiogroup").nth(0).get_by_label("7", exact=True).check()
        psfs.get_by_role("radiogroup").nth(1).get_by_label("6", exact=True).check()
        psfs.get_by_role("button", name="Send my answers").click()

        named = page.locator("form.p-home").filter(has_text="Name one to five activities")
        shot(page, "q-home-psfs-named-390")
        named.get_by_label("Activity 1").fill("Running")
        named.get_by_role("radiogroup").nth(0).get_by_label("4", exact=True).check()
        named.get_by_role("button", name="Send my answers").click()
        page.wait_for_url("**/thanks")
        findings.check(page, "q-home-thanks", 390)

        page.goto(f"{link}/progress")
        findings.check(page, "q-home-progress", 390)
        shot(page, "q-home-progress-390")
        assert "Ibuprofen 0 days a week" in page.content()
        assert "Work: returned on 20 February 2026" in page.content()
    with engine.connect() as conn:
        logged = conn.execute(
            sa.select(t.medication_uses.c.drug, t.medication_uses.c.days_per_week)
            .where(t.medication_uses.c.response_id.is_not(None))
            .order_by(t.medication_uses.c.drug)
        ).all()
    assert [tuple(r) for r in logged] == [("Ibuprofen", 0), ("Naproxen", 2)]
    assert not findings.problems, "\n".join(findings.problems)
