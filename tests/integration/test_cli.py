"""The `needlepoint` command as an operator uses it."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import current_revision, head_revision
from needlepoint.cli import app

runner = CliRunner()


def test_db_upgrade_creates_and_migrates_a_database(tmp_path: Path) -> None:
    db = tmp_path / "new" / "clinic.db"
    result = runner.invoke(app, ["db", "upgrade", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert current_revision(make_engine(f"sqlite:///{db}")) == head_revision()
    again = runner.invoke(app, ["db", "upgrade", "--db", str(db)])
    assert again.exit_code == 0
    assert head_revision() in again.output


def test_generate_writes_the_clinic_and_the_planted_truth(tmp_path: Path) -> None:
    db = tmp_path / "gen.db"
    result = runner.invoke(app, ["generate", "--patients", "12", "--seed", "4", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "12 patients" in result.output
    truth = json.loads((tmp_path / "gen.truth-seed4.json").read_text())
    assert len(truth["episodes"]) == 12
    with make_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(sa.text("select count(*) from patients")).scalar_one() == 12


def test_create_clinic_prints_a_token_and_refuses_bad_input_by_name(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    ok = runner.invoke(
        app,
        [
            "create-clinic",
            "--name",
            "North",
            "--owner-email",
            "o@n.example",
            "--owner-name",
            "Owner",
            "--password",
            "long enough",
            "--db",
            db,
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "API token (shown once): np_" in ok.output
    bad = runner.invoke(
        app,
        [
            "create-clinic",
            "--name",
            "South",
            "--owner-email",
            "not-an-email",
            "--owner-name",
            "Owner",
            "--password",
            "long enough",
            "--db",
            db,
        ],
    )
    assert bad.exit_code == 2
    assert "owner_email" in bad.output
    dup = runner.invoke(
        app,
        [
            "create-clinic",
            "--name",
            "West",
            "--owner-email",
            "o@n.example",
            "--owner-name",
            "Owner",
            "--password",
            "long enough",
            "--db",
            db,
        ],
    )
    # An email is unique within a clinic only (issue 14: no clinic may learn that another
    # uses an address), so the same owner email may open a second clinic.
    assert dup.exit_code == 0, dup.output
    with make_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(sa.text("select count(*) from clinics")).scalar_one() == 2


def test_demo_without_serving_prints_the_sign_in(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--path", str(tmp_path), "--patients", "8", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "demo@needlepoint.example" in result.output
    assert "http://127.0.0.1:8000/" in result.output
    assert (tmp_path / "demo.db").exists()
    assert (tmp_path / "demo.truth.json").exists()
