"""Instrument scoring: published rules, worked examples, and properties that hold for
every possible set of answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain import instruments
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.instruments import Instrument


def items(values: list[int | None]) -> dict[str, int | float | None]:
    return {f"item{i + 1}": v for i, v in enumerate(values)}


def test_ndi_percentage_is_total_times_two() -> None:
    ndi = instruments.get("ndi")
    assert instruments.score(ndi, items([2] * 10)) == 40.0  # 20 of 50 points = 40 %


def test_ndi_unanswered_section_lowers_the_denominator() -> None:
    # REFERENCE §3: % = sum / (5 x answered) x 100
    ndi = instruments.get("ndi")
    assert instruments.score(ndi, items([3] * 9 + [None])) == pytest.approx(27 / 45 * 100)


def test_odi_scores_like_ndi() -> None:
    odi = instruments.get("odi")
    assert instruments.score(odi, items([5, 4, 3, 2, 1, 0, 1, 2, 3, 4])) == 50.0


def test_quickdash_worked_example_and_missing_item_rule() -> None:
    qd = instruments.get("quickdash")
    assert instruments.score(qd, items([1] * 11)) == 0.0
    assert instruments.score(qd, items([5] * 11)) == 100.0
    assert instruments.score(qd, items([3] * 11)) == 50.0
    assert instruments.score(qd, items([3] * 10 + [None])) == 50.0  # one missing: scorable
    assert instruments.score(qd, items([3] * 9 + [None, None])) is None  # two: not scorable


def test_lefs_is_a_sum_and_refuses_incomplete_forms() -> None:
    lefs = instruments.get("lefs")
    assert instruments.score(lefs, items([4] * 20)) == 80.0
    assert instruments.score(lefs, items([4] * 19 + [None])) is None
    assert lefs.higher_is == "better"


def test_nprs_thresholds_carry_their_source() -> None:
    nprs = instruments.get("nprs")
    assert nprs.mcid is not None
    assert nprs.mcid.value == 2
    assert nprs.mcid.percent == 30
    assert "Farrar" in nprs.mcid.source
    assert nprs.loinc is not None
    assert nprs.loinc.code == "72514-3"


def test_no_threshold_is_invented_where_none_is_published() -> None:
    assert instruments.get("headache_days").mcid is None
    assert instruments.get("lefs").loinc is None  # no verified LOINC (REFERENCE §4)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"item1": 11}, "answers.item1"),
        ({"item1": -1}, "answers.item1"),
        ({"item1": 2.5}, "answers.item1"),
        ({"item1": "7"}, "answers.item1"),
        ({"item1": True}, "answers.item1"),
        ({"item2": 3}, "answers.item2"),
    ],
)
def test_bad_answers_are_refused_naming_the_item(answers: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput) as err:
        instruments.validate_answers(instruments.get("nprs"), answers)
    assert err.value.field == field


def test_an_unknown_instrument_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput) as err:
        instruments.get("sf36")
    assert err.value.field == "instrument_id"


SCORED = [i for i in instruments.library().values() if i.id != "rom"]


def answers_for(inst: Instrument) -> st.SearchStrategy[dict[str, int | float | None]]:
    value = st.integers(int(inst.item_min), int(inst.item_max))
    return st.fixed_dictionaries({name: st.one_of(st.none(), value) for name in inst.item_names})


@pytest.mark.parametrize("inst", SCORED, ids=lambda i: i.id)
@given(data=st.data())
def test_scores_stay_in_the_published_range(inst: Instrument, data: st.DataObject) -> None:
    answers = data.draw(answers_for(inst))
    instruments.validate_answers(inst, answers)
    score = instruments.score(inst, answers)
    if score is not None:
        lo, hi = inst.score_range
        assert lo <= score <= hi


@pytest.mark.parametrize("inst", SCORED, ids=lambda i: i.id)
@given(data=st.data())
def test_raising_one_answer_moves_the_score_one_way_only(
    inst: Instrument, data: st.DataObject
) -> None:
    """Items all point the instrument's way: a higher answer never lowers the score."""
    value = st.integers(int(inst.item_min), int(inst.item_max))
    answers = data.draw(st.fixed_dictionaries({n: value for n in inst.item_names}))
    item = data.draw(st.sampled_from(inst.item_names))
    assume_room = answers[item] < inst.item_max  # type: ignore[operator]
    if not assume_room:
        return
    raised = {**answers, item: answers[item] + 1}  # type: ignore[operator]
    before, after = instruments.score(inst, answers), instruments.score(inst, raised)
    assert before is not None
    assert after is not None
    assert after >= before
