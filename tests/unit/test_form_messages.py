"""A form's validation messages are in words: they name the field as its label does and
say what to do, not the validator's own sentence (a clinician's review found "Input
should be a valid number" and "Input should be 'left', 'right' or 'midline'" beside a
needling site before anything was typed)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from needlepoint.domain.commands import AmendmentText, NeedlingSiteIn, RegisterPatient
from needlepoint.web.ui.forms import field_errors, field_label

SITE: dict[str, Any] = {
    "muscle_id": "upper_trapezius",
    "side": "left",
    "trigger_point": "active",
    "technique": "static",
    "needle_gauge_mm": 0.25,
    "needle_length_mm": 30,
    "depth_mm": 15,
    "insertions": 2,
    "tolerance": "good",
}


def _errors(model: Any, data: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return field_errors(caught.value, prefix)


def test_labels_keep_units_apart() -> None:
    assert field_label("depth_mm") == "Depth (mm)"
    assert field_label("needle_gauge_mm") == "Needle gauge (mm)"
    assert field_label("local_twitch_responses") == "Local twitch responses"
    assert field_label("sex") == "Sex"


def test_a_sites_errors_name_the_field_and_what_to_do() -> None:
    found = _errors(
        NeedlingSiteIn,
        {**SITE, "side": "", "depth_mm": "deep", "insertions": "two", "needle_gauge_mm": 2},
        "sites.0.",
    )
    assert found["sites.0.side"] == ["Choose the side: left, right or midline"]
    assert found["sites.0.depth_mm"] == ["Depth (mm) must be a number"]
    assert found["sites.0.insertions"] == ["Insertions must be a whole number"]
    assert found["sites.0.needle_gauge_mm"] == ["Needle gauge (mm) must be at most 0.5"]
    shown = " ".join(m for ms in found.values() for m in ms)
    assert "Input should" not in shown


def test_missing_and_empty_fields_ask_to_be_filled_in() -> None:
    found = _errors(AmendmentText, {"reason": "", "text": "x"})
    assert found["reason"] == ["Please fill in reason"]
    site = {k: v for k, v in SITE.items() if k != "tolerance"}
    assert _errors(NeedlingSiteIn, site)["tolerance"] == ["Please fill in tolerance"]


def test_a_choice_in_words_without_internal_spellings() -> None:
    found = _errors(
        RegisterPatient,
        {
            "mrn": "M1",
            "given_name": "Ada",
            "family_name": "Test",
            "birth_date": "1980-01-01",
            "sex": "x",
        },
    )
    assert found["sex"] == ["Choose the sex: female, male, other or unknown"]


def test_our_own_validators_words_are_kept() -> None:
    found = _errors(NeedlingSiteIn, {**SITE, "depth_mm": 40})
    assert any("deeper than the needle is long" in m for m in found[""])


def test_stored_ids_read_as_clinical_phrases() -> None:
    from needlepoint.domain.enums import AdverseEventKind
    from needlepoint.web.ui.forms import label

    assert label(AdverseEventKind.PAIN_DURING) == "pain during needling"
    assert label("pain_after") == "pain after needling"
    assert label(AdverseEventKind.NERVE_INJURY) == "nerve injury"
    assert all("_" not in label(kind) for kind in AdverseEventKind)


def test_every_consent_method_has_its_words() -> None:
    from needlepoint.domain.consent import METHOD_WORDS
    from needlepoint.domain.enums import ConsentMethod

    assert set(METHOD_WORDS) == set(ConsentMethod)  # the chart and the PDF index it
    assert all("_" not in words for words in METHOD_WORDS.values())
