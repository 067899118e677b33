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
    assert "demo@needlepoint.example / needlepoint-demo" in result.output
    assert "owner@needlepoint.example / needlepoint-owner" in result.output  # the owner's too
    assert "http://127.0.0.1:8000/" in result.output
    assert (tmp_path / "demo.db").exists()
    assert (tmp_path / "demo.truth.json").exists()


def test_the_demo_records_end_today_and_both_sign_ins_work(tmp_path: Path) -> None:
    import re
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient

    from needlepoint.web.app import create_app

    result = runner.invoke(app, ["demo", "--path", str(tmp_path), "--patients", "60", "--no-serve"])
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    today = datetime.now(UTC).date()
    with engine.connect() as conn:
        last_visit = conn.execute(sa.text("select max(started_at) from sessions")).scalar_one()
        # Every episode under way was screened within the clinic's validity period.
        stale = conn.execute(
            sa.text(
                "select count(*) from episodes e join clinics c on c.id = e.clinic_id "
                "where e.status = 'open' and not exists (select 1 from screenings s "
                "where s.patient_id = e.patient_id and s.screened_at >= :since)"
            ),
            {"since": str(today - timedelta(days=90))},
        ).scalar_one()
        open_episodes = conn.execute(
            sa.text("select count(*) from episodes where status = 'open'")
        ).scalar_one()
    assert str(last_visit)[:10] <= today.isoformat()
    assert str(last_visit)[:10] >= (today - timedelta(days=14)).isoformat()
    assert open_episodes > 0
    assert stale == 0
    client = TestClient(create_app(engine, secret_key="d" * 40, demo=True))
    for email, password in (
        ("demo@needlepoint.example", "needlepoint-demo"),
        ("owner@needlepoint.example", "needlepoint-owner"),
    ):
        client.cookies.clear()
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf
        r = client.post(
            "/login",
            data={"email": email, "password": password, "csrf": csrf[1]},
            follow_redirects=False,
        )
        assert r.status_code == 303, (email, r.text)
        assert r.headers["location"] != "/login"
    engine.dispose()
