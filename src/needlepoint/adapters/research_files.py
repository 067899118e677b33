"""The research release as files: each table as Parquet and as CSV, the data dictionary
(Markdown), and the k-anonymity report (Markdown and JSON). The same bytes are written to
a folder (`write_release`, files 0600 in a 0700 folder) or zipped (`release_zip`).

The k-anonymity report names the quasi-identifier values of released classes only: the
suppressed classes are counted, never described (their values would point at the very
patients the suppression protects)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from needlepoint.adapters.spreadsheets import csv_text
from needlepoint.domain.research import (
    MAX_SHIFT_DAYS,
    SAFE_HARBOR,
    SAFE_HARBOR_CITATION,
    ColumnType,
    ResearchRelease,
    Table,
    table_specs,
)

_ARROW: dict[ColumnType, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}

DICTIONARY = "data_dictionary.md"
REPORT = "k_anonymity_report.md"
REPORT_JSON = "k_anonymity_report.json"


def _parquet(table: Table) -> bytes:
    schema = pa.schema([(c.name, _ARROW[c.type]) for c in table.spec.columns])
    arrow = pa.Table.from_pylist([dict(r) for r in table.rows], schema=schema)
    out = io.BytesIO()
    pq.write_table(arrow, out)
    return out.getvalue()


def _csv(table: Table) -> bytes:
    names = table.spec.names
    return csv_text(names, ([r[n] for n in names] for r in table.rows)).encode("utf-8")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def data_dictionary(release: ResearchRelease) -> str:
    """Every table and column of the release, with its type, meaning, unit and how it was
    de-identified; and the 18 Safe Harbor identifiers with how each is handled."""
    mode = (
        f"shifted per patient by a random 1-{MAX_SHIFT_DAYS} days (either way, never 0); "
        "intervals within a patient are kept; the offsets are not released"
        if release.dates == "shift"
        else "reduced to the year"
    )
    lines = [
        "# Data dictionary: de-identified research release",
        "",
        f"Identifiers removed following {SAFE_HARBOR_CITATION}.",
        f"Dates: {mode}. Only signed session notes are released. Study ids are random for "
        "this release (164.514(c): not derived from any information about the patient): the "
        "same patient has a different id in another release, and no table of study ids to "
        "records exists anywhere.",
        "",
        (
            "Dates in this release are reduced to the year, as the Safe Harbor text requires."
            if release.dates == "year"
            else "Note: shifted dates are still full dates. The Safe Harbor text keeps no date "
            "element but the year; a release with shifted dates rests on the shift being "
            "random and unreleased, and is best treated as needing an expert determination "
            "(164.514(b)(1)) or shared as a limited data set under a data use agreement "
            "(164.514(e)). Take `dates=year` for a literal Safe Harbor release."
        ),
        "",
        f"k-anonymity: episodes whose class on ({', '.join(release.report.quasi_identifiers)}) "
        f"holds fewer than {release.report.k} patients are suppressed with everything "
        f"attached to them (see `{REPORT}`).",
        "",
        "Files: each table as `<table>.parquet` and `<table>.csv` (UTF-8; empty cell = no "
        "value; a text cell starting with = + - @ is written with a leading apostrophe).",
        "",
        "## The 18 Safe Harbor identifiers (164.514(b)(2)(i)(A)-(R))",
        "",
        "| | identifier | held in Needlepoint as | handling in this release |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| ({i.clause}) | {_md_cell(i.name)} | {_md_cell(i.held_as)} | {_md_cell(i.handling)} |"
        for i in SAFE_HARBOR
    ]
    for table in table_specs(release.dates):
        lines += [
            "",
            f"## {table.name}",
            "",
            table.meaning[:1].upper() + table.meaning[1:] + ".",
            "",
            "| column | type | meaning | unit | de-identification |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.name} | {c.type} | {_md_cell(c.meaning)} | {_md_cell(c.unit)} | "
            f"{_md_cell(c.deidentification)} |"
            for c in table.columns
        ]
    return "\n".join(lines) + "\n"


def _report_figures(release: ResearchRelease) -> dict[str, object]:
    r = release.report
    suppressed = [c for c in r.classes if c.suppressed]
    return {
        "k": r.k,
        "quasi_identifiers": list(r.quasi_identifiers),
        "unit": "episode; class sizes counted in distinct patients",
        "episodes_in": r.records_in,
        "episodes_suppressed": r.records_suppressed,
        "episodes_released": r.records_kept,
        "patients_in": r.patients_in,
        "patients_suppressed": r.patients_suppressed,
        "classes": len(r.classes),
        "classes_suppressed": len(suppressed),
        "smallest_released_class_patients": r.smallest_kept_class,
        "released_classes": [
            {
                **dict(zip(r.quasi_identifiers, c.key, strict=True)),
                "patients": c.patients,
                "episodes": c.records,
            }
            for c in r.classes
            if not c.suppressed
        ],
    }


def k_anonymity_report(release: ResearchRelease) -> str:
    """The k-anonymity report: how many episodes and patients were suppressed, and the
    released classes with their sizes."""
    f = _report_figures(release)
    r = release.report
    lines = [
        "# k-anonymity report",
        "",
        f"- k: {r.k} (every released class holds at least {r.k} distinct patients)",
        f"- quasi-identifiers: {', '.join(r.quasi_identifiers)}",
        "- unit: one row of `episodes`; a class is counted in distinct patients",
        f"- episodes: {r.records_in} in, {r.records_suppressed} suppressed, "
        f"{r.records_kept} released",
        f"- patients: {r.patients_in} in, {r.patients_suppressed} suppressed (none of their "
        "episodes released)",
        f"- classes: {f['classes']}, of which {f['classes_suppressed']} suppressed (their "
        "values are not listed: they would point at the patients suppression protects)",
        f"- smallest released class: {r.smallest_kept_class or 'none'} patients",
        "",
        "## Released classes",
        "",
        "| " + " | ".join(r.quasi_identifiers) + " | patients | episodes |",
        "|" + "---|" * (len(r.quasi_identifiers) + 2),
    ]
    lines += [
        "| " + " | ".join(c.key) + f" | {c.patients} | {c.records} |"
        for c in r.classes
        if not c.suppressed
    ]
    return "\n".join(lines) + "\n"


def release_files(release: ResearchRelease) -> dict[str, bytes]:
    """Every file of the release, by name."""
    files: dict[str, bytes] = {}
    for table in release.tables:
        files[f"{table.spec.name}.parquet"] = _parquet(table)
        files[f"{table.spec.name}.csv"] = _csv(table)
    files[DICTIONARY] = data_dictionary(release).encode("utf-8")
    files[REPORT] = k_anonymity_report(release).encode("utf-8")
    files[REPORT_JSON] = (json.dumps(_report_figures(release), indent=2) + "\n").encode()
    return files


def write_release(release: ResearchRelease, folder: Path) -> list[Path]:
    """Write the release into `folder` (made 0700 if new; files 0600, replaced if present)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, data in release_files(release).items():
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        path.chmod(0o600)
        written.append(path)
    return written


def release_zip(release: ResearchRelease, *, today: date) -> bytes:
    """The release as one zip archive (entries under `research-export-<today>/`)."""
    out = io.BytesIO()
    stamp = (today.year, today.month, today.day, 0, 0, 0)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in release_files(release).items():
            info = zipfile.ZipInfo(f"research-export-{today.isoformat()}/{name}", stamp)
            info.external_attr = 0o600 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()
