"""`needlepoint score` as a researcher uses it: a CSV in, scores on standard output, an
exit status a script can rely on."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from needlepoint.cli import app

runner = CliRunner()
NDI_HEADER = "id," + ",".join(f"item{i}" for i in range(1, 11))


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_row_scored_exits_0_with_csv_on_standard_output(tmp_path: Path) -> None:
    path = write(tmp_path, f"{NDI_HEADER}\nA,2,2,2,2,2,2,2,2,2,2\nB,2,2,2,2,2,2,2,2,2,\n")
    result = runner.invoke(app, ["score", "ndi", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "id,score,error\nA,40,\nB,40,\n"


def test_any_row_in_error_exits_1_and_every_row_is_still_written(tmp_path: Path) -> None:
    path = write(tmp_path, "id,item1\nA,4\nB,12\nC,\nD,0\n")
    result = runner.invoke(app, ["score", "nprs", str(path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "id,score,error",
        "A,4,",
        "B,,nprs item1 must be between 0 and 10",
        "C,,no item answered",
        "D,0,",
    ]


def test_json_format_writes_the_same_rows_as_an_array(tmp_path: Path) -> None:
    header = ",".join(f"item{i}" for i in range(1, 21))
    path = write(
        tmp_path, f"{header}\n" + ",".join(["3"] * 20) + "\n" + ",".join(["4"] * 19) + ",\n"
    )
    result = runner.invoke(app, ["score", "lefs", str(path), "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"id": "1", "score": 60.0, "error": None},
        {
            "id": "2",
            "score": None,
            "error": "not scorable: 1 item missing (no missing item allowed)",
        },
    ]


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffid,item1,item2\r\nx,6,8\r\n".encode())
    result = runner.invoke(app, ["score", "psfs", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "id,score,error\nx,7,\n"


def test_unusable_input_exits_2_with_a_message_on_standard_error(tmp_path: Path) -> None:
    good = write(tmp_path, "item1\n3\n")
    no_items = write(tmp_path, "id,name\n1,x\n", "bad.csv")
    for args, message in [
        (["score", "nprs", str(tmp_path / "missing.csv")], "no such file"),
        (["score", "sf36", str(good)], "unknown instrument 'sf36'"),
        (["score", "nprs", str(no_items)], "unexpected column 'name'"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr.replace("\n", " ")
        assert result.stdout == ""
