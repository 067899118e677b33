"""A re-screening starts from the patient's last answers, and a section left as it was
counts only once the clinician confirms with the patient that nothing has changed; a first
screening answers a whole section "no" in one tap (without JavaScript too). SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from needlepoint.actions.screening import record_screening
from tests.conftest import make_clinic
from tests.factories import screening_body, screening_cmd
from tests.integration.test_web_app import patient_with_episode, sign_in


def _checked(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="q-([a-z_]+)" value="(yes|no)" checked', page))


def test_a_rescreening_starts_from_the_last_answers_and_needs_each_section_confirmed(
    engine: sa.Engine,
) -> None:
    clinic = make_clinic(engine)
    client = sign_in(engine, clinic)
    patient, _ = patient_with_episode(clinic, prepared=False)
    body = screening_body()
    body["answers"]["anticoagulants"] = True
    record_screening(
        clinic.uow(),
        clinic.as_clinician,
        screening_cmd(
            patient.id,
            answers=body["answers"],
            acknowledged_precautions=["anticoagulants"],
            screened_at=datetime.now(UTC) - timedelta(days=100),
        ),
    )
    page = client.get(f"/patients/{patient.id}/screening").text
    before = _checked(page)
    assert before["anticoagulants"] == "yes"  # the last answer, not a blank form
    assert before["needle_phobia"] == "no"
    assert "Nothing has changed in this section" in page
    assert "No to every question in this section" not in page
    answers = {f"q-{k}": v for k, v in before.items()}
    refused = client.post(f"/patients/{patient.id}/screening", data=answers)
    assert refused.status_code == 400
    for section in ("absolute", "site", "precaution"):
        assert f'data-field="unchanged.{section}"' in refused.text
    assert "Decision:" not in refused.text
    # the patient stopped the anticoagulant: that section changed, the others confirmed
    changed = {
        **answers,
        "q-anticoagulants": "no",
        "unchanged-absolute": "yes",
        "unchanged-site": "yes",
    }
    review = client.post(f"/patients/{patient.id}/screening", data=changed)
    assert review.status_code == 200, review.text
    assert "Decision: no contraindication or precaution found" in review.text
    done = client.post(
        f"/patients/{patient.id}/screening",
        data={**changed, "intent": "record"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


def test_a_first_screening_answers_a_section_no_in_one_tap_without_javascript(
    engine: sa.Engine,
) -> None:
    clinic = make_clinic(engine)
    client = sign_in(engine, clinic)
    patient, _ = patient_with_episode(clinic, prepared=False)
    page = client.get(f"/patients/{patient.id}/screening").text
    assert page.count("No to every question in this section") == 3
    assert "Nothing has changed" not in page
    assert _checked(page) == {}
    after = client.post(f"/patients/{patient.id}/screening", data={"intent": "none-absolute"})
    assert after.status_code == 200
    checked = _checked(after.text)
    assert checked.get("needle_phobia") == "no"
    assert "anticoagulants" not in checked  # another section: still to be asked
