"""The import's CSV reader (docs/import.md): any value that cannot be read is reported
naming its file, row and column, and its patient is left out; the others are read."""

from __future__ import annotations

import csv
import tempfile
from datetime import date, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from needlepoint.importing.csv_reader import LAYOUT_BY_NAME, read_csv_folder

PATIENTS = [
    {"external_id": "P1", "mrn": "A-1", "given_name": "Ada", "family_name": "One",
     "birth_date": "1980-05-17", "sex": "female"},
    {"external_id": "P2", "mrn": "A-2", "given_name": "Bo", "family_name": "Two",
     "birth_date": "1975-01-02", "sex": "male"},
]  # fmt: skip


def _episode(p: str) -> dict[str, str]:
    return {
        "patient_external_id": p,
        "external_id": f"E-{p}",
        "condition": "neck_pain",
        "onset_date": "2026-01-02",
        "opened_on": "2026-02-01",
        "clinician_email": "pt@clinic.example",
        "closed_on": "2026-03-20",
        "discharge_reason": "Goals met",
    }


def _session(p: str) -> dict[str, str]:
    return {
        "patient_external_id": p,
        "episode_external_id": f"E-{p}",
        "external_id": f"S-{p}",
        "started_at": "2026-02-03T09:30:00+00:00",
        "clinician_email": "pt@clinic.example",
        "signed_by_email": "pt@clinic.example",
        "signed_at": "2026-02-03T10:00:00+00:00",
    }


def _site(p: str) -> dict[str, str]:
    return {
        "patient_external_id": p,
        "session_external_id": f"S-{p}",
        "muscle_id": "upper_trapezius",
        "side": "left",
        "trigger_point": "active",
        "technique": "pistoning",
        "needle_gauge_mm": "0.25",
        "needle_length_mm": "30",
        "depth_mm": "15",
        "insertions": "4",
        "tolerance": "good",
        "local_twitch_responses": "2",
        "electrical_stimulation": "false",
    }


def _measurement(p: str) -> dict[str, str]:
    return {
        "patient_external_id": p,
        "episode_external_id": f"E-{p}",
        "session_external_id": f"S-{p}",
        "instrument_id": "nprs",
        "answers": "nprs=6",
        "taken_at": "2026-02-03T09:35:00+00:00",
        "score": "6",
    }


FILES = {
    "patients.csv": lambda: [dict(p) for p in PATIENTS],
    "episodes.csv": lambda: [_episode(p["external_id"]) for p in PATIENTS],
    "sessions.csv": lambda: [_session(p["external_id"]) for p in PATIENTS],
    "sites.csv": lambda: [_site(p["external_id"]) for p in PATIENTS],
    "measurements.csv": lambda: [_measurement(p["external_id"]) for p in PATIENTS],
}

# (file, column, kind of value) of every typed cell the layout has in these rows
TYPED = [
    ("patients.csv", "birth_date", "date"),
    ("episodes.csv", "onset_date", "date"),
    ("episodes.csv", "opened_on", "date"),
    ("episodes.csv", "closed_on", "date"),
    ("sessions.csv", "started_at", "moment"),
    ("sessions.csv", "signed_at", "moment"),
    ("sites.csv", "needle_gauge_mm", "number"),
    ("sites.csv", "needle_length_mm", "number"),
    ("sites.csv", "depth_mm", "number"),
    ("sites.csv", "insertions", "whole"),
    ("sites.csv", "local_twitch_responses", "whole"),
    ("sites.csv", "electrical_stimulation", "bool"),
    ("measurements.csv", "taken_at", "moment"),
    ("measurements.csv", "score", "number"),
]


def _write(folder: Path, tables: dict[str, list[dict[str, str]]]) -> None:
    for name, rows in tables.items():
        layout = LAYOUT_BY_NAME[name]
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, layout.columns)
            writer.writeheader()
            writer.writerows(rows)


def _reads_as(kind: str, text: str) -> bool:
    text = text.strip()
    try:
        if kind == "date":
            date.fromisoformat(text)
        elif kind == "moment":
            return datetime.fromisoformat(text).tzinfo is not None
        elif kind == "number":
            value = float(text)
            return value == value and abs(value) != float("inf")
        elif kind == "whole":
            int(text)
        elif kind == "bool":
            return text.lower() in {"true", "false", "yes", "no", "1", "0", "y", "n"}
    except ValueError:
        return False
    return True


_cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
    min_size=1,
    max_size=24,
)


def test_the_clean_export_reads_whole() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), {name: make() for name, make in FILES.items()})
        result = read_csv_folder(Path(tmp))
    assert result.problems == ()
    assert [p.external_id for p in result.patients] == ["P1", "P2"]
    session = result.patients[0].episodes[0].sessions[0]
    assert session.signature is not None
    assert session.sites[0].muscle_id == "upper_trapezius"
    assert session.measurements[0].answers == {"nprs": 6}


@settings(max_examples=150, deadline=None)
@given(
    cell=st.sampled_from(TYPED),
    which=st.sampled_from([0, 1]),
    text=_cell_text,
)
def test_an_unreadable_value_is_named_by_file_row_and_column(
    cell: tuple[str, str, str], which: int, text: str
) -> None:
    name, column, kind = cell
    if not text.strip() or _reads_as(kind, text):
        return  # a readable (or empty optional) value is not a problem of reading
    tables = {n: make() for n, make in FILES.items()}
    tables[name][which][column] = text
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), tables)
        result = read_csv_folder(Path(tmp))
    patient = PATIENTS[which]["external_id"]
    named = {(p.origin.source, p.origin.locator, p.field) for p in result.problems}
    assert (name, f"row {which + 2}", column) in named, result.problems
    assert all(p.patient_external_id == patient for p in result.problems)
    # that patient is left out, the other one is read whole
    assert [p.external_id for p in result.patients] == [
        p["external_id"] for i, p in enumerate(PATIENTS) if i != which
    ]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(FILES)), extra=_cell_text)
def test_a_column_the_layout_does_not_know_stops_the_whole_import(name: str, extra: str) -> None:
    layout = LAYOUT_BY_NAME[name]
    if extra.strip() in layout.columns or extra != extra.strip() or "," in extra or '"' in extra:
        return
    tables = {n: make() for n, make in FILES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder, tables)
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, [*layout.columns, extra])
            writer.writeheader()
            writer.writerows(tables[name])
        result = read_csv_folder(folder)
    assert result.patients == ()
    assert (name, "row 1", extra) in {
        (p.origin.source, p.origin.locator, p.field) for p in result.problems
    }


def test_a_file_that_is_not_utf8_csv_is_named_and_nothing_is_read() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder, {name: make() for name, make in FILES.items()})
        with (folder / "sessions.csv").open("ab") as f:
            f.write(b"P1,E-P1,S-9,2026-02-03T09:30:00+00:00,caf\xe9@clinic.example\n")
        result = read_csv_folder(folder)
    assert result.patients == ()
    assert [(p.origin.source, p.origin.locator) for p in result.problems] == [
        ("sessions.csv", "file")
    ]
    assert "UTF-8" in result.problems[0].reason


def test_a_nul_character_is_named_by_its_cell() -> None:
    tables = {name: make() for name, make in FILES.items()}
    tables["sessions.csv"][1]["subjective"] = "Pain\x00 6/10"
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), tables)
        result = read_csv_folder(Path(tmp))
    assert [(p.origin.source, p.origin.locator, p.field) for p in result.problems] == [
        ("sessions.csv", "row 3", "subjective")
    ]
    assert [p.external_id for p in result.patients] == ["P1"]
