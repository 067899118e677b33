"""CSV for spreadsheets: every export (audit trail, benefit responders, batch scores)
writes its cells through `cell`, so no text a user typed can run as a formula when the
file is opened in Excel, LibreOffice or Google Sheets (CSV or formula injection).

A text cell whose first character is one a spreadsheet reads as the start of a formula
or a control (`=`, `+`, `-`, `@`, tab, carriage return, line feed, their full-width
forms), also after leading spaces, is written with a leading apostrophe, as OWASP
recommends; the apostrophe shows the cell is text and the value stays readable.
Numbers stay numbers (a negative change is still a number, not a formula)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def cell(value: object) -> str | int | float:
    """A value as a safe CSV cell: None empty, times ISO 8601, text escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    first = text.lstrip(" \u00a0\u3000")[:1]
    if first in FORMULA_STARTS or text[:1] in FORMULA_STARTS:
        return "'" + text
    return text


def csv_text(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, lineterminator: str = "\n"
) -> str:
    """A header and rows as CSV text, every cell through `cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()
