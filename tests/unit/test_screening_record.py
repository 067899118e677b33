"""The screening takes what the record knows from the record: age from the date of birth
(a minor is flagged, an unknown age stops needling), no pregnancy question for a male
patient; and a contraindication never silently disappears from one screening to the
next. Site-level consequences of pregnancy, surgery, joint replacements and implants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.commands import Clearance, NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.consent import check_signer
from needlepoint.domain.entities import Patient, Screening
from needlepoint.domain.enums import ScreeningDecision, Sex, Side
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.screening import (
    PatientFacts,
    age_on,
    check_clearance,
    cleared_findings,
    evaluate,
    questionnaire,
)
from needlepoint.domain.site_conditions import review, site_conditions
from needlepoint.domain.site_safety import decide
from tests.factories import consent_cmd

QUESTIONS = questionnaire().questions
ADULT = PatientFacts(Sex.FEMALE, date(1980, 5, 17))
MAN = PatientFacts(Sex.MALE, date(1980, 5, 17))
DAY = date(2026, 3, 1)


def asked_no(patient: PatientFacts | None) -> dict[str, bool]:
    return {q.id: False for q in questionnaire().asked(patient)}


def answers(patient: PatientFacts | None = ADULT, **extra: object) -> ScreeningAnswers:
    yes = {k: v for k, v in extra.items() if isinstance(v, bool)}
    details = {k: v for k, v in extra.items() if not isinstance(v, bool)}
    return ScreeningAnswers.model_validate({"answers": asked_no(patient) | yes, **details})


# --- age from the date of birth ---------------------------------------------------------


def test_the_child_question_is_gone_and_refused_with_a_reason() -> None:
    assert "child" not in {q.id for q in QUESTIONS}
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=asked_no(ADULT) | {"child": False}), ADULT, DAY)
    assert err.value.field == "answers.child"
    assert "date of birth" in err.value.detail


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)), st.integers(0, 120))
def test_age_is_completed_years_and_changes_exactly_on_the_birthday(born: date, years: int) -> None:
    try:
        birthday = born.replace(year=born.year + years)
    except ValueError:  # born on 29 February; the birthday counts from 1 March
        birthday = date(born.year + years, 3, 1)
    if birthday.year > 9999 or birthday < born:
        return
    assert age_on(born, birthday) == years
    if birthday > born:
        assert age_on(born, birthday - timedelta(days=1)) == years - 1


def test_a_minor_is_flagged_from_the_date_of_birth_until_the_18th_birthday() -> None:
    teen = PatientFacts(Sex.MALE, date(2010, 3, 2))
    on_eve = evaluate(answers(teen), teen, date(2028, 3, 1))
    assert on_eve.decision is ScreeningDecision.PRECAUTIONS
    (minor,) = on_eve.reasons
    assert minor.rule == "minor"
    assert "17 years old" in minor.message
    assert "parent or legal guardian" in minor.message
    assert on_eve.to_acknowledge == ["minor"]
    adult = evaluate(answers(teen), teen, date(2028, 3, 2))
    assert adult.decision is ScreeningDecision.CLEAR


def test_an_unknown_date_of_birth_stops_needling_until_it_is_recorded() -> None:
    unknown = PatientFacts(Sex.FEMALE, None)
    result = evaluate(answers(unknown), unknown, DAY)
    assert result.decision is ScreeningDecision.CONTRAINDICATED
    assert result.reasons[0].rule == "age_unknown"


@given(st.sampled_from(list(Sex)), st.dates(date(1920, 1, 1), date(2025, 12, 31)))
def test_a_male_patient_is_never_asked_or_flagged_for_pregnancy(sex: Sex, born: date) -> None:
    patient = PatientFacts(sex, born)
    asked = {q.id for q in questionnaire().asked(patient)}
    assert ("pregnancy" in asked) == (sex is not Sex.MALE)
    result = evaluate(answers(patient), patient, DAY)
    assert all(r.rule != "pregnancy" for r in result.reasons)
    assert "pregnancy" not in result.answers.answers or sex is not Sex.MALE


def test_a_no_to_pregnancy_for_a_man_is_dropped_and_a_yes_refused_by_name() -> None:
    dropped = evaluate(answers(MAN, pregnancy=False), MAN, DAY)
    assert "pregnancy" not in dropped.answers.answers
    with pytest.raises(InvalidInput) as err:
        evaluate(answers(MAN, pregnancy=True), MAN, DAY)
    assert err.value.field == "answers.pregnancy"
    assert "male" in err.value.detail


def test_a_woman_must_answer_pregnancy() -> None:
    missing = {k: v for k, v in asked_no(ADULT).items() if k != "pregnancy"}
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=missing), ADULT, DAY)
    assert err.value.field == "answers.pregnancy"


def test_a_minors_consent_needs_a_parent_or_guardian() -> None:
    now = datetime(2026, 2, 1, 8, tzinfo=UTC)
    child = Patient(uuid4(), uuid4(), "M1", "Kim", "Young", date(2012, 1, 1), Sex.FEMALE, now, now)
    with pytest.raises(InvalidInput) as err:
        check_signer(child, consent_cmd(child.id))
    assert err.value.field == "signer_relationship"
    check_signer(
        child, consent_cmd(child.id, signer_name="Pat Young", signer_relationship="parent")
    )
    grown = Patient(uuid4(), uuid4(), "M2", "Lee", "Old", date(2008, 2, 1), Sex.MALE, now, now)
    check_signer(grown, consent_cmd(grown.id))  # 18 on the day of signing


# --- findings in clinical words ---------------------------------------------------------


def test_area_findings_name_the_limb_in_clinical_words() -> None:
    result = evaluate(
        answers(
            lymphoedema=True,
            lymphoedema_areas=["upper_limb:left"],
            prosthetic_joint=True,
            prosthetic_joints=["knee:right"],
        ),
        ADULT,
        DAY,
    )
    text = " ".join(r.message for r in result.reasons)
    assert "Lymphoedema of the left arm" in text
    assert "the right knee" in text
    assert "upper_limb" not in text
    assert "Does the patient" not in text


@pytest.mark.parametrize(
    ("question", "detail", "value"),
    [
        ("recent_surgery", "surgery_areas", ["lower_limb:left"]),
        ("prosthetic_joint", "prosthetic_joints", ["hip:left"]),
        ("breast_implants", "breast_implant_sides", ["left"]),
        ("other_implant", "implant_areas", ["upper_limb:right"]),
    ],
)
def test_surgery_and_implant_questions_need_their_areas(
    question: str, detail: str, value: list[str]
) -> None:
    with pytest.raises(InvalidInput) as err:
        evaluate(answers(**{question: True}), ADULT, DAY)
    assert err.value.field == detail
    with pytest.raises(InvalidInput) as err:
        evaluate(answers(**{detail: value}), ADULT, DAY)
    assert err.value.field == detail
    result = evaluate(answers(**{question: True, detail: value}), ADULT, DAY)
    assert result.reasons[0].action == "site"


# --- a contraindication never silently disappears ----------------------------------------


def stored(result_answers: ScreeningAnswers, patient: PatientFacts = ADULT) -> Screening:
    result = evaluate(result_answers, patient, DAY)
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    return Screening(
        id=uuid4(),
        clinic_id=uuid4(),
        patient_id=uuid4(),
        answers=result.answers.model_dump(mode="json"),
        decision=result.decision,
        reasons=[r.as_dict() for r in result.reasons],
        rules_version="x",
        screened_by=uuid4(),
        screened_at=at,
        created_at=at,
    )


def test_clearing_an_absolute_finding_or_a_limb_needs_what_changed_and_why() -> None:
    before = stored(
        answers(
            needle_phobia=True,
            lymphoedema=True,
            lymphoedema_areas=["upper_limb:left", "lower_limb:left"],
        )
    )
    now = evaluate(answers(lymphoedema=True, lymphoedema_areas=["lower_limb:left"]), ADULT, DAY)
    cleared = cleared_findings(before, now)
    assert set(cleared) == {"needle_phobia", "lymphoedema:upper_limb:left"}
    assert "Lymphoedema of the left arm" in cleared["lymphoedema:upper_limb:left"]
    with pytest.raises(InvalidInput) as err:
        check_clearance(cleared, None)
    assert err.value.field == "clearance"
    kept = check_clearance(
        cleared, Clearance(reason="recorded_in_error", explanation="Arm swelling was a bruise.")
    )
    assert {c["finding"] for c in kept} == set(cleared)
    assert cleared_findings(before, evaluate(before_answers(before), ADULT, DAY)) == {}


def before_answers(screening: Screening) -> ScreeningAnswers:
    return ScreeningAnswers.model_validate(screening.answers)


def test_a_precaution_may_change_without_a_clearance() -> None:
    before = stored(answers(diabetes=True))
    assert cleared_findings(before, evaluate(answers(), ADULT, DAY)) == {}
    with pytest.raises(InvalidInput):
        check_clearance({}, Clearance(reason="resolved", explanation="Nothing was cleared here."))


# --- what the conditions mean at each site ------------------------------------------------


def site(muscle: str, side: Side = Side.LEFT, **extra: object) -> NeedlingSiteIn:
    return NeedlingSiteIn.model_validate(
        {
            "muscle_id": muscle,
            "side": side,
            "trigger_point": "active",
            "technique": "pistoning",
            "needle_gauge_mm": 0.25,
            "needle_length_mm": 40,
            "depth_mm": 15,
            "insertions": 3,
            "tolerance": "good",
            **extra,
        }
    )


PREGNANT = answers(pregnancy=True)


def test_pregnancy_refuses_the_abdomen_and_needs_a_reason_for_the_lower_back_and_estim() -> None:
    sites = [
        site("rectus_abdominis"),
        site("quadratus_lumborum"),
        site(
            "upper_trapezius",
            electrical_stimulation=True,
            estim_params={"frequency_hz": 2, "minutes": 10},
        ),
        site("extensor_carpi_radialis_brevis"),
    ]
    found = review(sites, PREGNANT)
    assert {(f.rule, f.site, f.action) for f in found} == {
        ("pregnancy_abdomen", 0, "refuse"),
        ("pregnancy_lumbopelvic", 1, "refuse_override"),
        ("pregnancy_estim", 2, "refuse_override"),
    }
    assert review(sites, answers()) == []
    assert review(sites, answers(MAN)) == []


def test_a_structured_override_passes_the_lower_back_in_pregnancy_but_never_the_abdomen() -> None:
    reason = "Pelvic girdle pain; treated lying on the side, shallow insertion only."
    overridden = {"override_code": "technique_modified", "override_reason": reason}
    sites = [
        site("rectus_abdominis", **overridden),
        site("lumbar_multifidus", **overridden),
    ]
    decision = decide(sites, review(sites, PREGNANT))
    assert [f.rule for f in decision.refused] == ["pregnancy_abdomen"]
    assert [f.rule for f in decision.overridden] == ["pregnancy_lumbopelvic"]
    # the same structured override as every site rule: text alone, or a code with a
    # reason too short to say anything, does not lift the refusal
    for partial in (
        {"override_reason": reason},
        {"override_code": "technique_modified", "override_reason": "side lying"},
    ):
        sites = [site("lumbar_multifidus", **partial)]
        decision = decide(sites, review(sites, PREGNANT))
        assert [f.rule for f in decision.refused] == ["pregnancy_lumbopelvic"]


def test_joint_replacements_and_implants_reach_the_muscles_near_them_on_their_side() -> None:
    screen = answers(
        prosthetic_joint=True,
        prosthetic_joints=["knee:left"],
        breast_implants=True,
        breast_implant_sides=["right"],
        recent_surgery=True,
        surgery_areas=["upper_limb:left"],
        other_implant=True,
        implant_areas=["lower_limb:right"],
    )
    sites = [
        site("popliteus", Side.LEFT),
        site("popliteus", Side.RIGHT),
        site("pectoralis_major", Side.RIGHT),
        site("pectoralis_major", Side.LEFT),
        site("biceps_brachii", Side.LEFT),
        site("soleus", Side.RIGHT),
    ]
    found = {(f.rule, f.site): f for f in review(sites, screen)}
    assert set(found) == {
        ("prosthetic_joint_near", 0),
        ("implant_near", 1),  # the right leg's implant, not the left knee's replacement
        ("breast_implant_near", 2),
        ("recent_surgery_site", 4),
        ("implant_near", 5),
    }
    assert "left knee replacement" in found["prosthetic_joint_near", 0].message
    assert "left arm" in found["recent_surgery_site", 4].message
    assert found["implant_near", 5].action == "warn"


def test_every_condition_rule_cites_sources_and_the_forbidden_points_are_not_rules() -> None:
    rules = site_conditions().rule_ids()
    assert all(r.sources for r in rules.values())
    assert not any("forbidden" in rule_id for rule_id in rules)
    hand = [site("first_dorsal_interosseous"), site("adductor_pollicis")]
    assert review(hand, PREGNANT) == []
