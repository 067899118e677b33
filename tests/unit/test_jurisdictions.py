"""Every US jurisdiction is in the data, each with its source or an explicit "no rule
recorded"; the rules our reference gives (REFERENCE §6) are kept, and none is invented."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.credentials import _Jurisdictions, jurisdictions

US = [
    "al",
    "ak",
    "az",
    "ar",
    "ca",
    "co",
    "ct",
    "de",
    "dc",
    "fl",
    "ga",
    "hi",
    "id",
    "il",
    "in",
    "ia",
    "ks",
    "ky",
    "la",
    "me",
    "md",
    "ma",
    "mi",
    "mn",
    "ms",
    "mo",
    "mt",
    "ne",
    "nv",
    "nh",
    "nj",
    "nm",
    "ny",
    "nc",
    "nd",
    "oh",
    "ok",
    "or",
    "pa",
    "ri",
    "sc",
    "sd",
    "tn",
    "tx",
    "ut",
    "vt",
    "va",
    "wa",
    "wv",
    "wi",
    "wy",
]


def test_all_fifty_states_and_the_district_of_columbia_are_there() -> None:
    assert len(US) == 51
    ids = set(jurisdictions())
    assert {f"us-{c}" for c in US} <= ids
    assert ids - {f"us-{c}" for c in US} == {"none"}


def test_each_jurisdiction_has_its_source_or_says_no_rule_is_recorded() -> None:
    for j in jurisdictions().values():
        if j.no_rule_recorded:
            assert j.sources == []
            assert (j.min_training_hours, j.min_licence_years, j.adverse_event_report_days) == (
                None,
                None,
                None,
            )
            assert j.consent_copy_required is False
        else:
            assert j.sources, j.id


def test_only_the_rules_of_the_reference_are_recorded() -> None:
    recorded = {j.id: j for j in jurisdictions().values() if not j.no_rule_recorded}
    assert set(recorded) == {"us-va", "us-co", "us-fl"}
    assert recorded["us-va"].min_training_hours == 54  # Virginia: at least 54 h
    assert recorded["us-va"].consent_copy_required
    assert recorded["us-co"].consent_copy_required
    assert recorded["us-fl"].adverse_event_report_days == 15  # Florida: 15 days


def test_a_rule_without_a_source_or_a_no_rule_entry_with_a_value_fails_to_load() -> None:
    data = load_data("jurisdictions.yaml")
    sourceless = [dict(j, sources=[]) if j["id"] == "us-va" else j for j in data["jurisdictions"]]
    with pytest.raises(ValidationError, match="without its source"):
        _Jurisdictions.model_validate({**data, "jurisdictions": sourceless})
    invented = [
        dict(j, min_training_hours=30) if j["id"] == "us-tx" else j for j in data["jurisdictions"]
    ]
    with pytest.raises(ValidationError, match="no rule recorded"):
        _Jurisdictions.model_validate({**data, "jurisdictions": invented})
