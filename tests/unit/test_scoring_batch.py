"""Batch scoring a researcher's CSV: the same rules as the clinic, one answer per row."""

from __future__ import annotations

import io
import json

import pytest

from needlepoint.scoring_batch import ScoredRow, UnusableInput, score_csv, write_csv, write_json

QD_HEADER = "id," + ",".join(f"item{i}" for i in range(1, 12))


def rows(instrument: str, text: str) -> list[ScoredRow]:
    return score_csv(instrument, io.StringIO(text))


def test_each_row_gets_its_score_or_the_reason_it_has_none() -> None:
    out = rows(
        "quickdash",
        f"{QD_HEADER}\n"
        "p1,3,3,3,3,3,3,3,3,3,3,3\n"
        "p2,3,3,3,3,3,3,3,3,3,3,\n"
        "p3,3,3,3,3,3,3,3,3,3,,\n"
        "p4,3,3,3,3,3,3,3,3,3,3,6\n"
        "p5,3,3,three,3,3,3,3,3,3,3,3\n",
    )
    assert [(r.id, r.score) for r in out] == [
        ("p1", 50),
        ("p2", 50),
        ("p3", None),
        ("p4", None),
        ("p5", None),
    ]
    assert out[0].error is None
    assert out[1].error is None
    assert out[2].error == "not scorable: 2 items missing (at most 1 missing item allowed)"
    assert out[3].error == "quickdash item11 must be between 1 and 5"
    assert out[4].error == "quickdash item3 must be a number, not 'three'"


def test_without_an_id_column_rows_are_numbered() -> None:
    out = rows("nprs", "item1\n4\n\n7\n")
    assert [(r.id, r.score) for r in out] == [("1", 4), ("2", 7)]


def test_psfs_takes_one_to_five_activity_columns() -> None:
    out = rows("psfs", "id,item1,item2,item3\na,3,5,7\nb,4,,\nc,,,\n")
    assert [r.score for r in out] == [5, 4, None]
    assert out[2].error == "no item answered"


def test_ndi_with_a_blank_cell_lowers_the_denominator() -> None:
    header = ",".join(f"item{i}" for i in range(1, 11))
    out = rows("ndi", f"{header}\n2,2,2,2,2,2,2,2,2,\n")
    assert out[0].score == pytest.approx(40.0)


def test_a_row_with_the_wrong_number_of_cells_is_an_error_not_a_guess() -> None:
    out = rows("nprs", "id,item1\na,4,5\n")
    assert out[0].error == "the row has 3 cells, the header 2"


@pytest.mark.parametrize(
    ("instrument", "text", "message"),
    [
        ("nope", "item1\n1\n", "unknown instrument 'nope'"),
        ("nprs", "", "empty"),
        ("nprs", "id,name\n1,x\n", "unexpected column 'name'"),
        ("nprs", "id\n1\n", "no item columns"),
        ("quickdash", "item1,item2\n1,1\n", "lacks item3"),
        ("nprs", "item1,item2\n1,1\n", "nprs has no item2"),
        ("nprs", "item1,item1\n1,1\n", "twice"),
        ("trigger_points", "item1\n1\n", "unknown instrument"),
    ],
)
def test_unusable_input_is_refused_as_a_whole(instrument: str, text: str, message: str) -> None:
    with pytest.raises(UnusableInput, match=message):
        rows(instrument, text)


def test_csv_and_json_outputs_carry_the_same_rows() -> None:
    out = [ScoredRow("a", 18 / 45 * 100, None), ScoredRow("b", None, "no item answered")]
    csv_text, json_text = io.StringIO(), io.StringIO()
    write_csv(out, csv_text)
    write_json(out, json_text)
    assert csv_text.getvalue() == "id,score,error\na,40,\nb,,no item answered\n"
    assert json.loads(json_text.getvalue()) == [
        {"id": "a", "score": 40.0, "error": None},
        {"id": "b", "score": None, "error": "no item answered"},
    ]
