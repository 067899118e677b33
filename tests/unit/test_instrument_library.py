"""The instrument library: each instrument's published scoring worked through by hand,
its refusals naming the item, and properties that hold for every possible set of answers.

Rules and examples cite REFERENCE §3 (/work/shared/clinical/REFERENCE.md) unless noted."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlepoint.domain import instruments
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.instruments import Instrument
from needlepoint.domain.outcomes import rescore, score_submission


def items(values: list[Any]) -> dict[str, Any]:
    return {f"item{i + 1}": v for i, v in enumerate(values)}


def score(instrument_id: str, values: list[Any]) -> float | None:
    inst = instruments.get(instrument_id)
    return instruments.score(inst, instruments.validate_answers(inst, items(values)))


# --- published worked examples ----------------------------------------------------------


def test_nprs_and_vas_score_their_single_item() -> None:
    assert score("nprs", [7]) == 7
    assert score("vas", [63.5]) == 63.5  # millimetres on a 100 mm line


def test_ndi_all_sections_answered_summing_20_is_40_percent() -> None:
    # NDI: 10 sections x 0-5, % = total x 2 (REFERENCE §3)
    assert score("ndi", [2] * 10) == 40.0


def test_ndi_nine_sections_summing_18_is_18_of_45_that_is_40_percent() -> None:
    # NDI missing section: % = sum / (5 x answered) x 100
    assert score("ndi", [2] * 9 + [None]) == pytest.approx(18 / 45 * 100) == 40.0


def test_odi_uses_the_same_rule_each_unanswered_section_lowers_the_denominator_by_5() -> None:
    assert score("odi", [2] * 10) == 40.0
    assert score("odi", [None, 2, 2, 2, 2, 2, 2, 2, 2, 2]) == pytest.approx(40.0)
    assert score("odi", [5] * 8 + [None, None]) == 100.0


def test_quickdash_all_items_3_is_50_and_one_missing_item_is_still_scorable() -> None:
    # QuickDASH: (sum/n - 1) x 25; not scorable with more than 1 item missing
    assert score("quickdash", [3] * 11) == (33 / 11 - 1) * 25 == 50
    assert score("quickdash", [1] * 11) == 0
    assert score("quickdash", [5] * 11) == 100
    assert score("quickdash", [3] * 10 + [None]) == 50
    assert score("quickdash", [3] * 9 + [None, None]) is None


def test_quickdash_modules_score_the_same_way_but_need_all_four_items() -> None:
    # IWH, Scoring the DASH: module = (sum/4 - 1) x 25, all four items answered
    assert score("quickdash_work", [2, 2, 2, 2]) == 25
    assert score("quickdash_sports", [5, 5, 5, 5]) == 100
    assert score("quickdash_work", [2, 2, 2, None]) is None


def test_lefs_is_the_sum_of_20_items_and_an_incomplete_form_is_not_scored() -> None:
    # LEFS: 20 items x 0-4, total 0-80; no published missing-item rule, so none allowed
    assert score("lefs", [3] * 20) == 60
    assert score("lefs", [4] * 19 + [None]) is None
    assert instruments.get("lefs").higher_is == "better"


def test_psfs_is_the_mean_of_the_one_to_five_activities_the_patient_chose() -> None:
    assert score("psfs", [3, 5, 7]) == 5.0
    assert score("psfs", [4]) == 4.0
    assert score("psfs", [2, 4, 6, 8, 10]) == 6.0
    assert score("psfs", [None] * 5) is None


def test_psfs_version_is_stored_and_version_2_reverses_the_direction() -> None:
    original, reversed_ = instruments.get("psfs"), instruments.get("psfs_2")
    assert (original.version, original.higher_is) == ("1.0", "better")
    assert (reversed_.version, reversed_.higher_is) == ("2.0", "worse")
    assert score_submission("psfs_2", items([7]), None).instrument_version == "2.0"


def test_pressure_pain_threshold_is_the_mean_of_three_trials_at_a_named_site() -> None:
    ctx = {"site": "treated", "location": "left upper trapezius"}
    scored = score_submission("ppt", items([300, 320, 340]), ctx)
    assert scored.score == 320
    assert score_submission("ppt", items([300, 320, None]), ctx).score is None
    with pytest.raises(InvalidInput) as err:
        score_submission("ppt", items([300, 320, 340]), {"site": "elsewhere", "location": "x"})
    assert err.value.field == "context.site"


def test_range_of_motion_needs_joint_movement_and_side() -> None:
    ctx = {"joint": "cervical_spine", "movement": "rotation", "side": "left"}
    assert score_submission("rom", items([62]), ctx).score == 62
    with pytest.raises(InvalidInput) as err:
        score_submission("rom", items([62]), {"joint": "cervical_spine", "movement": "rotation"})
    assert err.value.field == "context.side"


def test_global_ratings_keep_their_own_scales() -> None:
    assert score("groc", [5]) == 5
    assert score("groc", [-7]) == -7
    assert score("pgic", [6]) == 6
    with pytest.raises(InvalidInput, match="between -7 and 7"):
        score("groc", [8])
    with pytest.raises(InvalidInput, match="between 1 and 7"):
        score("pgic", [0])


def test_headache_days_are_at_most_31_a_month() -> None:
    assert score("headache_days", [12]) == 12
    with pytest.raises(InvalidInput, match="between 0 and 31"):
        score("headache_days", [32])


def test_return_to_work_names_the_activity_and_a_real_date() -> None:
    scored = score_submission(
        "return_to_activity", items([1]), {"activity": "work", "returned_on": "2026-03-02"}
    )
    assert scored.score == 1
    with pytest.raises(InvalidInput) as err:
        score_submission(
            "return_to_activity", items([1]), {"activity": "work", "returned_on": "2 March"}
        )
    assert err.value.field == "context.returned_on"
    with pytest.raises(InvalidInput) as err:
        score_submission("return_to_activity", items([1]), {"activity": "gardening"})
    assert err.value.field == "context.activity"


@pytest.mark.parametrize("instrument_id", ["analgesic_use", "trigger_points"])
def test_analgesic_use_and_trigger_points_are_recorded_where_they_already_live(
    instrument_id: str,
) -> None:
    with pytest.raises(InvalidInput, match="not as a measurement") as err:
        score_submission(instrument_id, items([1]), None, field_prefix="measurements.0.")
    assert err.value.field == "measurements.0.instrument_id"


def test_a_stored_score_is_recomputed_from_its_stored_answers() -> None:
    stored = score_submission("ndi", items([3] * 9 + [None]), None)
    assert rescore("ndi", stored.answers) == stored.score


# --- refusals name the item --------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument_id", "answers", "field", "message"),
    [
        ("ndi", {"item4": 6}, "answers.item4", "item4 must be between 0 and 5"),
        ("quickdash", {"item11": 0}, "answers.item11", "between 1 and 5"),
        ("lefs", {"item2": 2.5}, "answers.item2", "whole number"),
        ("odi", {"item1": "3"}, "answers.item1", "must be a number"),
        ("psfs", {"item6": 5}, "answers.item6", "no item 'item6'"),
        ("vas", {"item1": float("nan")}, "answers.item1", "must be a number"),
        ("nprs", {"item1": True}, "answers.item1", "must be a number"),
    ],
)
def test_bad_answers_are_refused_with_a_message_naming_the_item(
    instrument_id: str, answers: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as err:
        score_submission(instrument_id, answers, None)
    assert err.value.field == field


# --- the library is complete and honest --------------------------------------------------

SCALES = {
    "nprs": (0, 10),
    "vas": (0, 100),
    "ndi": (0, 100),
    "odi": (0, 100),
    "quickdash": (0, 100),
    "lefs": (0, 80),
    "psfs": (0, 10),
}


@pytest.mark.parametrize(("instrument_id", "scale"), SCALES.items())
def test_scales_are_those_the_issue_asks_for(instrument_id: str, scale: tuple[int, int]) -> None:
    assert instruments.get(instrument_id).score_range == scale


def test_every_threshold_carries_its_source_and_no_threshold_is_invented() -> None:
    for inst in instruments.library().values():
        for threshold in (inst.mcid, inst.mdc):
            if threshold is not None:
                assert threshold.source
        if inst.mcid is None and inst.mdc is None:
            assert inst.no_threshold_text.startswith("no published threshold")
    # REFERENCE marks these ❌: the software must say so, not guess
    for unpublished in ("ppt", "headache_days", "groc", "pgic", "analgesic_use", "trigger_points"):
        assert instruments.get(unpublished).mcid is None


def test_loinc_only_where_reference_lists_one_and_a_local_code_otherwise() -> None:
    assert instruments.get("nprs").coding.code == "72514-3"
    assert instruments.get("vas").coding.code == "38214-3"
    ndi = instruments.get("ndi").coding
    assert (ndi.code, ndi.verified) == ("82237-9", False)  # ⚠️ in REFERENCE §4
    for unverified in ("psfs", "lefs", "quickdash"):
        coding = instruments.get(unverified).coding
        assert coding.system == instruments.LOCAL_CODE_SYSTEM
        assert coding.code == unverified


# --- properties --------------------------------------------------------------------------

MEASURED = [i for i in instruments.library().values() if i.recorded_as == "measurement"]


@st.composite
def answer_sets(draw: st.DrawFn, inst: Instrument, missing: bool = True) -> dict[str, Any]:
    if inst.integer:
        value = st.integers(int(inst.item_min), int(inst.item_max))
    else:
        value = st.floats(inst.item_min, inst.item_max, allow_nan=False)
    each = st.one_of(st.none(), value) if missing else value
    return items([draw(each) for _ in range(inst.items)])


@st.composite
def instrument_and_answers(draw: st.DrawFn) -> tuple[Instrument, dict[str, Any]]:
    inst = draw(st.sampled_from(MEASURED))
    return inst, draw(answer_sets(inst))


@settings(max_examples=300)
@given(instrument_and_answers())
def test_every_score_stays_within_the_instruments_range(
    case: tuple[Instrument, dict[str, Any]],
) -> None:
    inst, answers = case
    value = instruments.score(inst, instruments.validate_answers(inst, answers))
    if value is not None:
        low, high = inst.score_range
        assert low - 1e-9 <= value <= high + 1e-9


@settings(max_examples=300)
@given(instrument_and_answers(), st.data())
def test_raising_any_answer_never_lowers_the_score(
    case: tuple[Instrument, dict[str, Any]], data: st.DataObject
) -> None:
    # On a higher-is-worse item a higher answer is more disability: the score must follow.
    inst, answers = case
    answered = [k for k, v in answers.items() if v is not None]
    if not answered:
        return
    key = data.draw(st.sampled_from(answered))
    current = answers[key]
    higher = (
        data.draw(st.integers(int(current), int(inst.item_max)))
        if inst.integer
        else data.draw(st.floats(current, inst.item_max, allow_nan=False))
    )
    raised = {**answers, key: higher}
    before = instruments.score(inst, answers)
    after = instruments.score(inst, raised)
    if before is not None:
        assert after is not None
        assert after >= before - 1e-9


@given(answer_sets(instruments.get("ndi")))
def test_ndi_missing_sections_only_shrink_the_denominator(answers: dict[str, Any]) -> None:
    given_ = [v for v in answers.values() if v is not None]
    value = instruments.score(instruments.get("ndi"), answers)
    if given_:
        assert value == pytest.approx(sum(given_) / (5 * len(given_)) * 100)
    else:
        assert value is None


@given(answer_sets(instruments.get("quickdash")))
def test_quickdash_is_scorable_exactly_when_at_most_one_item_is_missing(
    answers: dict[str, Any],
) -> None:
    missing = sum(1 for v in answers.values() if v is None)
    assert (instruments.score(instruments.get("quickdash"), answers) is not None) == (missing <= 1)


@given(answer_sets(instruments.get("lefs")))
def test_lefs_is_scorable_only_when_complete(answers: dict[str, Any]) -> None:
    complete = all(v is not None for v in answers.values())
    assert (instruments.score(instruments.get("lefs"), answers) is not None) == complete


@given(answer_sets(instruments.get("psfs")))
def test_psfs_scores_whenever_one_activity_is_rated(answers: dict[str, Any]) -> None:
    rated = [v for v in answers.values() if v is not None]
    value = instruments.score(instruments.get("psfs"), answers)
    assert value == (pytest.approx(sum(rated) / len(rated)) if rated else None)
