"""The de-identified research export, on SQLite and PostgreSQL: only the owner may take
it, each export is on the audit trail as a disclosure, no identifier of a synthetic
patient reaches any cell of any file, and the k-anonymity report is right on a clinic
crafted for it."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from needlepoint.actions import episodes, patients, sessions
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.research_files import DICTIONARY, REPORT, REPORT_JSON
from needlepoint.cli import app
from needlepoint.domain.commands import SignSession
from needlepoint.domain.research import SAFE_HARBOR, table_specs
from needlepoint.synthetic.clinic import GenerationReport, generate_clinic
from tests.conftest import Api, ClinicFixture, make_api, make_clinic
from tests.factories import episode_cmd, patient_cmd, session_cmd

runner = CliRunner()


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _events(engine: sa.Engine, clinic_id: UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.audit_events).where(
                    t.audit_events.c.clinic_id == clinic_id,
                    t.audit_events.c.action == "research.exported",
                )
            ).mappings()
        )


# --- a clinic crafted for the k-anonymity report -----------------------------------------


def _treated(c: ClinicFixture, *, born: date, sex: str, condition: str, sign: bool) -> None:
    """A patient with one episode and one session note (signed or not)."""
    p = patients.register_patient(
        c.uow(), c.as_clinician, patient_cmd(birth_date=born, sex=sex, family_name="Kayperson")
    )
    c.prepare_needling(p.id)
    e = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id, condition=condition))
    note = sessions.record_session(c.uow(), c.as_clinician, session_cmd(e.id))
    if sign:
        sessions.sign_session(
            c.uow(), c.as_clinician, SignSession(session_id=note.id, expected_version=1)
        )


def crafted(engine: sa.Engine) -> ClinicFixture:
    """Six women in their forties with neck pain (one of them 49: still the band 40-49),
    two men over 89 with knee pain, one woman of 30 with low back pain. Episodes open on
    1 February 2026 (the factory's)."""
    c = make_clinic(engine, "Crafted Clinic")
    for year in (1980, 1981, 1982, 1983, 1984):
        _treated(c, born=date(year, 5, 17), sex="female", condition="neck_pain", sign=True)
    _treated(c, born=date(1976, 6, 1), sex="female", condition="neck_pain", sign=False)
    _treated(c, born=date(1931, 1, 1), sex="male", condition="knee_pain", sign=True)
    _treated(c, born=date(1920, 7, 4), sex="male", condition="knee_pain", sign=True)
    _treated(c, born=date(1995, 8, 9), sex="female", condition="low_back_pain", sign=True)
    return c


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {Path(n).name: archive.read(n) for n in archive.namelist()}


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_only_the_owner_may_export_and_each_export_is_audited_as_a_disclosure(
    api: Api, engine: sa.Engine
) -> None:
    c = api.clinic
    _treated(c, born=date(1980, 1, 1), sex="female", condition="neck_pain", sign=True)
    for who in ("clinician", "assistant"):
        r = api.client.post("/api/v1/research-exports", json={}, headers=api.headers(who))
        assert r.status_code == 403, r.text
    assert _events(engine, c.owner.clinic_id) == []
    with engine.connect() as conn:
        refused = conn.execute(
            sa.select(t.audit_events.c.actor_user_id).where(
                t.audit_events.c.clinic_id == c.owner.clinic_id,
                t.audit_events.c.action == "access.denied",
                t.audit_events.c.entity_type == "export_research",
            )
        ).scalars()
        assert set(refused) == {c.clinician.id, c.assistant.id}  # each refusal is on the trail

    r = api.client.post(
        "/api/v1/research-exports", json={"k": 2, "dates": "year"}, headers=api.headers("owner")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    files = _unzip(r.content)
    names = {f"{s.name}.{x}" for s in table_specs("year") for x in ("csv", "parquet")}
    assert set(files) == names | {DICTIONARY, REPORT, REPORT_JSON}
    (event,) = _events(engine, c.owner.clinic_id)
    assert event["actor_user_id"] == c.owner.id
    assert event["entity_type"] == "clinic"
    assert event["outcome"] == "success"


def test_bad_input_is_refused_naming_the_field(api: Api, engine: sa.Engine) -> None:
    for body, field in (({"k": 1}, "k"), ({"dates": "month"}, "dates"), ({"x": 1}, "x")):
        r = api.client.post("/api/v1/research-exports", json=body, headers=api.headers("owner"))
        assert r.status_code == 422, r.text
        assert field in r.text
    assert _events(engine, api.clinic.owner.clinic_id) == []


def test_the_k_anonymity_report_is_right_on_a_crafted_clinic(engine: sa.Engine) -> None:
    c = crafted(engine)
    api = make_api(engine, c)

    def export(k: int) -> dict[str, bytes]:
        r = api.client.post(
            "/api/v1/research-exports",
            json={"k": k, "dates": "shift"},
            headers=api.headers("owner"),
        )
        assert r.status_code == 200, r.text
        return _unzip(r.content)

    files = export(5)
    report = json.loads(files[REPORT_JSON])
    assert report["k"] == 5
    assert report["episodes_in"] == 9
    assert report["patients_in"] == 9
    # the six women of 40-49 with neck pain are one class of six: released; the two
    # men of 90+ and the one woman of 30-39 are suppressed
    assert report["episodes_suppressed"] == 3
    assert report["patients_suppressed"] == 3
    assert report["episodes_released"] == 6
    assert report["classes"] == 3
    assert report["classes_suppressed"] == 2
    assert report["smallest_released_class_patients"] == 6
    assert report["released_classes"] == [
        {
            "age_band": "40-49",
            "sex": "female",
            "condition": "neck_pain",
            "region": "neck",
            "patients": 6,
            "episodes": 6,
        }
    ]
    text = files[REPORT].decode()
    assert "3 suppressed" in text
    assert "90+" not in text  # a suppressed class is counted, never described
    rows = _csv_rows(files["episodes.csv"])
    assert {(r["age_band"], r["sex"], r["condition"]) for r in rows} == {
        ("40-49", "female", "neck_pain")
    }
    # only signed notes leave: five of the six episodes have one
    assert sorted(r["sessions"] for r in rows) == ["0", "1", "1", "1", "1", "1"]
    assert len(_csv_rows(files["sessions.csv"])) == 5
    assert len(_csv_rows(files["needling_sites.csv"])) == 5 * 4
    # the NPRS and ROM of each signed note; none from the draft
    assert len(_csv_rows(files["measurements.csv"])) == 5 * 2

    files = export(2)
    report = json.loads(files[REPORT_JSON])
    assert report["episodes_released"] == 8  # the two men of 90+ make a class of two
    bands = {r["age_band"] for r in _csv_rows(files["episodes.csv"])}
    assert bands == {"40-49", "90+"}

    files = export(7)
    report = json.loads(files[REPORT_JSON])
    assert report["episodes_released"] == 0
    assert report["patients_suppressed"] == 9
    assert _csv_rows(files["episodes.csv"]) == []
    assert _csv_rows(files["sessions.csv"]) == []


# --- no identifier anywhere ----------------------------------------------------------------


def _identifiers(engine: sa.Engine, clinic_id: UUID) -> tuple[set[str], set[str]]:
    """(words, strings): names to find as whole words; every other identifier value and
    free text of the clinic, to find anywhere."""
    words: set[str] = set()
    strings: set[str] = set()

    def rows(table: sa.Table) -> list[Any]:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.select(table).where(table.c.clinic_id == clinic_id)).mappings()
            )

    def ids(value: UUID | None) -> None:
        if value is not None:
            strings.update({str(value), value.hex})

    for p in rows(t.patients):
        words.update({p["given_name"], p["family_name"]})
        strings.update({p["mrn"], p["birth_date"].isoformat()})
        strings.update(v for v in (p["email"], p["phone"]) if v)
        ids(p["id"])
    for u in rows(t.users):
        words.update(u["full_name"].split())
        strings.add(u["email"])
        strings.update(v for v in (u["licence_number"],) if v)
        ids(u["id"])
    for e in rows(t.episodes):
        ids(e["id"])
        strings.update(v for v in (e["goals"], e["discharge_reason"]) if v)
    for s in rows(t.sessions):
        ids(s["id"])
        strings.update(s[k] for k in ("subjective", "objective", "assessment", "plan"))
    for n in rows(t.needling_sites):
        ids(n["id"])
        strings.update(v for v in (n["notes"], n["override_reason"]) if v)
    for a in rows(t.adverse_events):
        ids(a["id"])
        strings.update(v for v in (a["description"], a["action_taken"]) if v)
    for m in rows(t.measurements):
        ids(m["id"])
    for m in rows(t.medication_uses):
        ids(m["id"])
        strings.add(m["drug"])
    ids(clinic_id)
    # free text shorter than 8 characters ("Tight", "ok") is no identifier to look for
    words = {w for w in words if len(w) >= 3 and w.isalpha()}
    return words, {s for s in strings if len(s.strip()) >= 8}


def _cells(folder: Path) -> list[str]:
    """Every cell of every table, from the CSV and from the Parquet files."""
    cells: list[str] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            for row in csv.reader(f):
                cells.extend(row)
    for path in sorted(folder.glob("*.parquet")):
        for column in pq.read_table(path).to_pydict().values():
            cells.extend(str(v) for v in column if v is not None)
    return cells


_GENERATED: dict[str, GenerationReport] = {}


def _synthetic(engine: sa.Engine) -> GenerationReport:
    """The synthetic clinic of 60 patients, generated once per database (its ids are
    seeded: the same seed twice in one database would collide)."""
    key = str(engine.url)
    if key not in _GENERATED:
        _GENERATED[key] = generate_clinic(engine, patients_count=60, seed=1717, workers=1)
    return _GENERATED[key]


@pytest.mark.parametrize("dates", ["shift", "year"])
def test_no_file_of_the_export_holds_any_identifier_of_the_synthetic_patients(
    engine: sa.Engine, tmp_path: Path, dates: str
) -> None:
    report = _synthetic(engine)
    with engine.connect() as conn:
        owner = conn.execute(
            sa.select(t.users.c.email).where(t.users.c.id == report.owner_id)
        ).scalar_one()
    out = tmp_path / "release"
    result = runner.invoke(
        app,
        [
            "export-research",
            "--db",
            _url(engine),
            "--out",
            str(out),
            "--k",
            "2",
            "--dates",
            dates,
            "--owner",
            owner,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "released" in result.output
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in out.iterdir())

    words, strings = _identifiers(engine, report.clinic_id)
    assert len(words) > 20
    assert len(strings) > 200
    cells = _cells(out)
    assert len(cells) > 500, "the release has content to scan"
    texts = [p.read_text(encoding="utf-8") for p in out.glob("*.md")] + [
        (out / REPORT_JSON).read_text(encoding="utf-8")
    ]
    leaks = [s for s in strings if any(s in c for c in cells) or any(s in x for x in texts)]
    assert not leaks, leaks[:5]
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, words))) + r")\b")
    # names are capitalised; no code or number of the tables holds a capital letter
    # followed by lower case, so a name inside a cell (even run together) shows
    named = [c for c in cells for w in words if w in c]
    named += [m for x in texts for m in pattern.findall(x)]
    assert not named, named[:5]
    # no date element but the year in year mode; dates, but none a birth date, in shift mode
    episodes_csv = _csv_rows((out / "episodes.csv").read_bytes())
    assert episodes_csv
    if dates == "year":
        assert all(re.fullmatch(r"\d{4}", r["opened"]) for r in episodes_csv)
    else:
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r["opened"]) for r in episodes_csv)
    # the release is this clinic's: as many episodes in as the clinic has
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(t.episodes.c.clinic_id == report.clinic_id)
        ).scalar_one()
    assert json.loads((out / REPORT_JSON).read_text())["episodes_in"] == count
    # the Parquet and CSV files hold the same rows
    for spec in table_specs(dates):  # type: ignore[arg-type]
        parquet = pq.read_table(out / f"{spec.name}.parquet")
        assert parquet.column_names == list(spec.names)
        assert parquet.num_rows == len(_csv_rows((out / f"{spec.name}.csv").read_bytes()))


def test_the_data_dictionary_lists_every_column_and_the_18_identifiers(
    engine: sa.Engine, tmp_path: Path
) -> None:
    c = make_clinic(engine, "Dictionary Clinic")
    out = tmp_path / "release"
    result = runner.invoke(
        app, ["export-research", "--db", _url(engine), "--out", str(out), "--owner", c.owner.email]
    )
    assert result.exit_code == 0, result.output
    text = (out / DICTIONARY).read_text(encoding="utf-8")
    assert "45 CFR 164.514(b)(2)" in text
    for identifier in SAFE_HARBOR:
        assert f"| ({identifier.clause}) |" in text
    for spec in table_specs("year"):  # the default: Safe Harbor's dates, the year only
        assert f"## {spec.name}" in text
        for column in spec.columns:
            assert f"| {column.name} | {column.type} |" in text
    assert len(_events(engine, c.owner.clinic_id)) == 1


def test_the_command_names_the_problem_when_it_cannot_choose_an_owner(
    engine: sa.Engine, tmp_path: Path
) -> None:
    make_clinic(engine, "One")
    make_clinic(engine, "Two")
    out = tmp_path / "release"
    several = runner.invoke(app, ["export-research", "--db", _url(engine), "--out", str(out)])
    assert several.exit_code == 2
    assert "--owner" in several.output
    unknown = runner.invoke(
        app,
        ["export-research", "--db", _url(engine), "--out", str(out), "--owner", "x@y.example"],
    )
    assert unknown.exit_code == 2
    assert "no active owner" in unknown.output
    bad = runner.invoke(
        app, ["export-research", "--db", _url(engine), "--out", str(out), "--dates", "month"]
    )
    assert bad.exit_code == 2
    assert "--dates" in bad.output
    assert not out.exists()
