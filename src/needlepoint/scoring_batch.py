"""Batch scoring for researchers: a CSV of item answers in, one score (or error) per row out.

The input's header has an optional `id` column and item columns `item1 … itemN` in the
instrument's documented order (docs/instruments.md); a blank cell is a missing answer.
Scoring uses the same validation, scoring and missing-item rules as the clinic
(`domain/instruments.py`), so a researcher's numbers match the chart's."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from needlepoint.adapters.spreadsheets import cell
from needlepoint.domain import instruments
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.instruments import Answer, Instrument

_ITEM = re.compile(r"^item([1-9][0-9]*)$")


class UnusableInput(Exception):
    """The input cannot be read at all (no such file, unknown instrument, bad header)."""


@dataclass(frozen=True, slots=True)
class ScoredRow:
    id: str
    score: float | None
    error: str | None


def batch_instruments() -> list[str]:
    """The instruments the batch scorer accepts."""
    return [i.id for i in instruments.library().values() if i.batch]


def instrument_for_batch(instrument_id: str) -> Instrument:
    """The instrument, or UnusableInput naming the ones that can be batch-scored."""
    if instrument_id not in batch_instruments():
        known = ", ".join(batch_instruments())
        raise UnusableInput(f"unknown instrument '{instrument_id}' (choose one of: {known})")
    return instruments.get(instrument_id)


def _item_columns(instrument: Instrument, header: Sequence[str]) -> dict[int, str]:
    """Column index → item key, refusing headers that would score the wrong thing."""
    names = [h.strip().lower() for h in header]
    seen: set[str] = set()
    items: dict[int, str] = {}
    for col, name in enumerate(names):
        if name in seen:
            raise UnusableInput(f"the header names column '{name}' twice")
        seen.add(name)
        if name == "id":
            continue
        match = _ITEM.match(name)
        if not match:
            raise UnusableInput(
                f"unexpected column '{header[col]}': the header holds an optional 'id' and "
                f"item columns item1..item{instrument.items}"
            )
        if int(match.group(1)) > instrument.items:
            raise UnusableInput(
                f"{instrument.id} has no {name} (items are item1..item{instrument.items})"
            )
        items[col] = name
    if not items:
        raise UnusableInput(
            f"the header has no item columns (expected item1..item{instrument.items})"
        )
    present = set(items.values())
    # PSFS rates 1-5 patient-chosen activities: item1..itemK. Every other instrument needs
    # all its columns, so that a forgotten column is not silently scored as unanswered.
    needed = instrument.items if instrument.missing != "any_answered" else len(present)
    absent = [f"item{i}" for i in range(1, needed + 1) if f"item{i}" not in present]
    if absent:
        raise UnusableInput(
            f"the header lacks {', '.join(absent)} ({instrument.id} has "
            f"item1..item{instrument.items})"
        )
    return items


def _number(text: str) -> Answer:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise _NotANumber(text) from None
    if not math.isfinite(value):
        raise _NotANumber(text)
    return value


class _NotANumber(ValueError):
    """A cell that is neither blank nor a number."""


def why_not_scorable(instrument: Instrument, answered: int) -> str:
    """The missing-item rule a form with `answered` answers breaks, in words."""
    missing = instrument.items - answered
    if answered == 0:
        return "no item answered"
    rule = {
        "none_allowed": "no missing item allowed",
        "at_most_one": "at most 1 missing item allowed",
        "lower_denominator": "at least one answer needed",
        "any_answered": f"at least {instrument.min_answered} answer needed",
    }[instrument.missing]
    return f"not scorable: {missing} item{'s' if missing != 1 else ''} missing ({rule})"


def score_row(
    instrument: Instrument, answers: dict[str, Answer]
) -> tuple[float | None, str | None]:
    """One row's score, or the reason it has none (naming the item at fault)."""
    try:
        clean = instruments.validate_answers(instrument, answers)
    except InvalidInput as err:
        return None, f"{instrument.id} {err.detail}"
    value = instruments.score(instrument, clean)
    if value is None:
        answered = sum(1 for v in clean.values() if v is not None)
        return None, why_not_scorable(instrument, answered)
    return value, None


def score_csv(instrument_id: str, text: Iterable[str]) -> list[ScoredRow]:
    """Score every row of a CSV; UnusableInput when the input cannot be read at all."""
    instrument = instrument_for_batch(instrument_id)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise UnusableInput("the file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise UnusableInput(f"the header is not valid CSV: {exc}") from None
    columns = _item_columns(instrument, header)
    id_col = next((i for i, h in enumerate(header) if h.strip().lower() == "id"), None)
    rows: list[ScoredRow] = []
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            number += 1
            rows.append(ScoredRow(str(number), None, f"line {reader.line_num}: {exc}"))
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines separate nothing
        number += 1
        row_id = cells[id_col].strip() if id_col is not None and id_col < len(cells) else ""
        row_id = row_id or str(number)
        if len(cells) != len(header):
            rows.append(
                ScoredRow(row_id, None, f"the row has {len(cells)} cells, the header {len(header)}")
            )
            continue
        answers: dict[str, Answer] = {}
        error = None
        for col, key in columns.items():
            try:
                answers[key] = _number(cells[col])
            except _NotANumber:
                error = f"{instrument.id} {key} must be a number, not '{cells[col].strip()}'"
                break
        if error:
            rows.append(ScoredRow(row_id, None, error))
            continue
        value, error = score_row(instrument, answers)
        rows.append(ScoredRow(row_id, value, error))
    return rows


def read_file(path: Path) -> str:
    """The file's text (UTF-8, with or without a byte-order mark), or UnusableInput."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UnusableInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UnusableInput(f"{path} is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise UnusableInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise UnusableInput(f"cannot read {path}: {exc.strerror}") from None


def _number_text(score: float | None) -> str:
    # Ten significant digits: exact for every published worked example, free of float noise.
    return "" if score is None else f"{score:.10g}"


def write_csv(rows: Sequence[ScoredRow], out: TextIO) -> None:
    """Rows as CSV with the columns id, score, error."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "score", "error"])
    for r in rows:  # the id and an error quoting a cell come from the input: escaped
        writer.writerow([cell(r.id), _number_text(r.score), cell(r.error or "")])


def write_json(rows: Sequence[ScoredRow], out: TextIO) -> None:
    """Rows as a JSON array of {id, score, error} (null where CSV leaves a cell empty)."""
    data = [
        {
            "id": r.id,
            "score": None if r.score is None else float(_number_text(r.score)),
            "error": r.error,
        }
        for r in rows
    ]
    json.dump(data, out, ensure_ascii=False, indent=2)
    out.write("\n")


def run(instrument_id: str, path: Path, fmt: str, out: TextIO) -> int:
    """Score a file and write the result; the exit status: 0 all rows scored, 1 some row
    has an error. UnusableInput propagates (exit status 2 in the CLI)."""
    instrument_for_batch(instrument_id)  # before reading: an unknown instrument is unusable
    rows = score_csv(instrument_id, io.StringIO(read_file(path), newline=""))
    (write_json if fmt == "json" else write_csv)(rows, out)
    return 1 if any(r.error for r in rows) else 0
