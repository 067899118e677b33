"""Credentials against the clinic's rules, CPT derivation, consent templates, catalogue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain import catalogue
from needlepoint.domain.billing import derive_cpt, icd10_suggestions
from needlepoint.domain.consent import current_consent, get_template, templates
from needlepoint.domain.credentials import check_credentials, jurisdiction
from needlepoint.domain.entities import Clinic, Consent, NeedlingSite, TrainingRecord, User
from needlepoint.domain.enums import (
    ConsentMethod,
    Role,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)
from needlepoint.domain.errors import InvalidInput

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)
CLINIC = Clinic(id=uuid4(), name="C", created_at=NOW)


def user(role: Role = Role.CLINICIAN, licensed_years: float | None = 5) -> User:
    licence = (
        None
        if licensed_years is None
        else date(2026, 3, 1) - timedelta(days=round(365.25 * licensed_years))
    )
    return User(uuid4(), CLINIC.id, "a@b.c", "A", role, NOW, licence_date=licence)


def course(hours: float, online: float = 0) -> TrainingRecord:
    return TrainingRecord(
        uuid4(),
        CLINIC.id,
        uuid4(),
        "P",
        "DN1",
        hours,
        online,
        date(2020, 1, 1),
        True,
        ["neck"],
        NOW,
    )


def test_virginia_needs_54_hours_and_says_so_with_its_unverified_source() -> None:
    va = Clinic(id=CLINIC.id, name="C", created_at=NOW, jurisdiction="us-va")
    short = check_credentials(user(), [course(40, 10)], va, NOW.date())
    assert not short.meets_rules
    (problem,) = short.problems
    assert problem.rule == "training_hours"
    assert "54" in problem.message
    assert problem.as_dict()["caveat"]  # REFERENCE §6 is marked ⚠️
    assert check_credentials(user(), [course(44, 10)], va, NOW.date()).meets_rules


def test_without_jurisdiction_thresholds_only_missing_training_is_a_problem() -> None:
    assert jurisdiction("none").min_training_hours is None
    assert check_credentials(user(), [course(1)], CLINIC, NOW.date()).meets_rules
    (problem,) = check_credentials(user(), [], CLINIC, NOW.date()).problems
    assert problem.rule == "no_training"


def test_a_clinic_policy_can_be_stricter_than_its_jurisdiction() -> None:
    strict = Clinic(id=CLINIC.id, name="C", created_at=NOW, min_licence_years=2)
    check = check_credentials(user(licensed_years=1), [course(60)], strict, NOW.date())
    assert [p.rule for p in check.problems] == ["licence_years"]
    assert "clinic policy" in check.problems[0].message
    assert check_credentials(user(licensed_years=3), [course(60)], strict, NOW.date()).meets_rules


def test_students_are_supervised_rather_than_checked() -> None:
    check = check_credentials(user(Role.STUDENT, None), [], CLINIC, NOW.date())
    assert check.supervised
    assert check.meets_rules


def test_an_unknown_jurisdiction_is_refused_by_field() -> None:
    with pytest.raises(InvalidInput) as err:
        jurisdiction("atlantis")
    assert err.value.field == "jurisdiction"


def needled(muscle: str, side: Side = Side.LEFT) -> NeedlingSite:
    return NeedlingSite(
        uuid4(),
        CLINIC.id,
        uuid4(),
        0,
        muscle,
        side,
        TriggerPoint.ACTIVE,
        Technique.PISTONING,
        0.25,
        30,
        15,
        3,
        1,
        False,
        Tolerance.GOOD,
    )


def test_cpt_counts_distinct_muscles_not_needles() -> None:
    two = [needled("upper_trapezius"), needled("upper_trapezius"), needled("levator_scapulae")]
    cpt = derive_cpt(two, sides_separately=False)
    assert cpt is not None
    assert (cpt.code, cpt.muscles) == ("20560", 2)
    three = [*two, needled("splenius_capitis")]
    assert derive_cpt(three, sides_separately=False).code == "20561"  # type: ignore[union-attr]
    assert derive_cpt([], sides_separately=False) is None


def test_left_and_right_count_twice_only_when_the_clinic_says_so() -> None:
    both = [
        needled("upper_trapezius", Side.LEFT),
        needled("upper_trapezius", Side.RIGHT),
        needled("levator_scapulae"),
    ]
    assert derive_cpt(both, sides_separately=False).code == "20560"  # type: ignore[union-attr]
    assert derive_cpt(both, sides_separately=True).code == "20561"  # type: ignore[union-attr]


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=12))
def test_cpt_code_follows_the_number_of_distinct_muscles(names: list[str]) -> None:
    cpt = derive_cpt([needled(n) for n in names], sides_separately=False)
    assert cpt is not None
    assert cpt.code == ("20560" if len(set(names)) <= 2 else "20561")


def test_icd10_suggestions_lead_with_the_condition_and_show_their_status() -> None:
    codes = icd10_suggestions("neck_pain")
    assert codes[0].code == "M54.2"
    assert any(c.code == "M79.12" for c in codes)
    assert len({c.code for c in codes}) == len(codes)


def test_the_consent_says_it_is_not_acupuncture_and_quotes_the_published_rates() -> None:
    from needlepoint.domain.catalogue import adverse_event_benchmarks

    text = get_template("dry_needling", "1.0").text
    assert "not acupuncture" in text
    brady = adverse_event_benchmarks().study("brady_2014")
    boyce = adverse_event_benchmarks().study("boyce_2020")
    for rate in (brady.mild_percent, *brady.mild_by_kind_percent.values(), boyce.mild_percent):
        assert f"{rate:g} %" in text, rate
    assert f"{boyce.sample:,}" in text
    assert f"{brady.sample:,}" in text
    assert sum(t.current for t in templates() if t.id == "dry_needling") == 1


def consent(signed: datetime, withdrawn: datetime | None = None) -> Consent:
    return Consent(
        uuid4(),
        CLINIC.id,
        uuid4(),
        "dry_needling",
        "1.0",
        "A",
        ConsentMethod.TYPED_NAME,
        signed,
        True,
        uuid4(),
        signed,
        withdrawn_at=withdrawn,
    )


def test_a_withdrawn_consent_stops_needling_from_that_moment() -> None:
    given_consent = consent(NOW, withdrawn=NOW + timedelta(days=10))
    assert current_consent([given_consent], NOW + timedelta(days=5)) is given_consent
    assert current_consent([given_consent], NOW + timedelta(days=10)) is None
    assert current_consent([given_consent], NOW - timedelta(days=1)) is None


def test_the_catalogue_has_over_100_named_muscles_searchable_by_synonym() -> None:
    all_muscles = catalogue.muscles().muscles
    assert len(all_muscles) >= 100
    assert len({m.id for m in all_muscles}) == len(all_muscles)
    assert [m.id for m in catalogue.search_muscles("SCM")] == ["sternocleidomastoid"]
    assert catalogue.search_muscles("glute")[0].region == "hip"
    assert {m.region for m in catalogue.search_muscles("", region="foot")} == {"foot"}
    assert all("calves" in m.chart for m in catalogue.search_muscles("", chart="calves"))


def test_the_clinical_safety_guide_lists_every_rule_in_the_data() -> None:
    from pathlib import Path

    from needlepoint.domain.credentials import jurisdictions
    from needlepoint.domain.screening import questionnaire
    from needlepoint.domain.site_safety import site_rules

    doc = (Path(__file__).parents[2] / "docs" / "clinical-safety.md").read_text()
    rules = site_rules()
    ids = [
        *(q.id for q in questionnaire().questions),
        *rules.area_exclusions,
        *rules.session_rules,
        *rules.cautions,
        *(f"depth_{m}" for m in rules.depth_caveats),
        *jurisdictions(),
    ]
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, f"docs/clinical-safety.md misses {missing}"
