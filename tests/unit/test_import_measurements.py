"""An imported measurement: its item answers, or a single-item instrument's score alone;
a score we cannot reproduce from the answers is reported (docs/import.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from needlepoint.importing.engine import _check_measurement, answers_of
from needlepoint.importing.records import ImportedMeasurement, Origin

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TAKEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ORIGIN = Origin("measurements.csv", "row 2")


def _m(
    instrument: str, answers: dict[str, float | int | None], score: float | None
) -> ImportedMeasurement:
    return ImportedMeasurement(instrument, answers, TAKEN, score=score, origin=ORIGIN)


@given(score=st.integers(min_value=0, max_value=10))
def test_an_nprs_given_by_its_score_alone_is_answered_by_it(score: int) -> None:
    m = _m("nprs", {}, float(score))
    assert answers_of(m) == {"item1": score}
    assert _check_measurement(m, "P1", NOW) == []


@given(answer=st.integers(min_value=0, max_value=10), score=st.integers(min_value=0, max_value=10))
def test_a_score_is_checked_against_the_answers(answer: int, score: int) -> None:
    problems = _check_measurement(_m("nprs", {"item1": answer}, float(score)), "P1", NOW)
    if answer == score:
        assert problems == []
    else:
        assert [(p.field, p.origin) for p in problems] == [("score", ORIGIN)]


def test_a_many_item_instrument_needs_its_answers() -> None:
    problems = _check_measurement(_m("ndi", {}, 20.0), "P1", NOW)
    assert [p.field for p in problems] == ["answers"]


def test_an_unknown_instrument_is_named() -> None:
    problems = _check_measurement(_m("bogus", {}, 3.0), "P1", NOW)
    assert [p.field for p in problems] == ["instrument_id"]


@given(answer=st.integers(min_value=11, max_value=1000) | st.integers(max_value=-1))
def test_an_answer_out_of_range_is_named(answer: int) -> None:
    problems = _check_measurement(_m("nprs", {"item1": answer}, None), "P1", NOW)
    assert [p.field for p in problems] == ["answers"]
    assert "item1" in problems[0].reason
