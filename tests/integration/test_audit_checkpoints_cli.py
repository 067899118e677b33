"""The operator's side of the anchor: `needlepoint audit keygen`, `audit checkpoint` and
`audit verify --checkpoints`, on an SQLite file and on a PostgreSQL database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from needlepoint.actions import patients
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.cli import app
from tests.conftest import PG_ADMIN_URL, _pg_admin, make_clinic
from tests.factories import patient_cmd
from tests.integration.test_audit_trail import tampering

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    """A database of the test's own (checkpoints cover every clinic in it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'np.db'}"
        engine = make_engine(url)
        upgrade(engine)
        yield url, engine
        engine.dispose()
        return
    admin = _pg_admin()
    if admin is None:
        pytest.skip("PostgreSQL not reachable")
    name = f"needlepoint_ckpt_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url_obj = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    engine = make_engine(url_obj)
    try:
        upgrade(engine)
        yield url_obj.render_as_string(hide_password=False), engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(*args: str) -> tuple[int, str]:
    """Exit code and output, its lines joined (Rich wraps long lines)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_checkpoint_then_verify_then_truncation_is_reported(
    database: tuple[str, sa.Engine], tmp_path: Path
) -> None:
    url, engine = database
    clinic = make_clinic(engine)
    make_clinic(engine, "Other")
    for _ in range(3):
        patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    key, log = tmp_path / "keys" / "audit.key", tmp_path / "anchor" / "np.ckpt"

    code, out = run("audit", "keygen", str(key))
    assert code == 0, out
    assert (key.stat().st_mode & 0o777) == 0o600
    code, out = run("audit", "keygen", str(key))
    assert code == 2
    assert "not overwriting" in out

    code, out = run("audit", "verify", "--db", url)
    assert code == 0, out
    assert "not anchored" in out

    code, out = run(
        "audit", "checkpoint", "--db", url, "--key", str(key), "--checkpoints", str(log)
    )
    assert code == 0, out
    assert "checkpoint 1 written" in out
    assert "2 chains" in out
    assert (log.stat().st_mode & 0o777) == 0o600

    patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    pub = f"{key}.pub"
    code, out = run("audit", "verify", "--db", url, "--checkpoints", str(log), "--public-key", pub)
    assert code == 0, out
    assert "anchored: checkpoint 1" in out
    assert "1 events written since" in out

    code, out = run(
        "audit", "checkpoint", "--db", url, "--key", str(key), "--checkpoints", str(log)
    )
    assert code == 0, out
    assert "checkpoint 2 written" in out

    clinic_id = clinic.owner.clinic_id
    ae, heads = t.audit_events, t.audit_chain_heads
    with tampering(engine) as conn:  # cut off the last two events, head moved to match
        last = conn.execute(
            sa.select(sa.func.max(ae.c.seq)).where(ae.c.clinic_id == clinic_id)
        ).scalar_one()
        conn.execute(sa.delete(ae).where(ae.c.clinic_id == clinic_id, ae.c.seq >= last - 1))
        row = conn.execute(
            sa.select(ae.c.seq, ae.c.hash).where(ae.c.clinic_id == clinic_id, ae.c.seq == last - 2)
        ).one()
        conn.execute(sa.delete(heads).where(heads.c.clinic_id == clinic_id))
        conn.execute(
            sa.insert(heads).values(clinic_id=clinic_id, last_seq=row.seq, last_hash=row.hash)
        )

    code, out = run("audit", "verify", "--db", url)
    assert code == 0, out  # the chain alone still verifies: this is why the anchor exists
    code, out = run("audit", "verify", "--db", url, "--checkpoints", str(log), "--public-key", pub)
    assert code == 1, out
    assert "truncated" in out
    assert str(clinic_id) in out
    # Nor will the operator's next checkpoint bless the truncated chain.
    code, out = run(
        "audit", "checkpoint", "--db", url, "--key", str(key), "--checkpoints", str(log)
    )
    assert code == 2, out
    assert "no checkpoint written" in out
    assert len(log.read_text().splitlines()) == 2


def test_verify_refuses_a_log_it_cannot_trust(
    database: tuple[str, sa.Engine], tmp_path: Path
) -> None:
    url, engine = database
    make_clinic(engine)
    key, log = tmp_path / "audit.key", tmp_path / "np.ckpt"
    other = tmp_path / "other.key"
    assert run("audit", "keygen", str(key))[0] == 0
    assert run("audit", "keygen", str(other))[0] == 0
    code, out = run(
        "audit", "checkpoint", "--db", url, "--key", str(key), "--checkpoints", str(log)
    )
    assert code == 0, out

    code, out = run("audit", "verify", "--db", url, "--checkpoints", str(log))
    assert code == 2
    assert "--public-key" in out
    code, out = run(
        "audit", "verify", "--db", url, "--checkpoints", str(log), "--public-key", f"{other}.pub"
    )
    assert code == 1
    assert "signature does not verify" in out
    # Checkpoints signed by another key cannot be appended to the log either.
    code, out = run(
        "audit", "checkpoint", "--db", url, "--key", str(other), "--checkpoints", str(log)
    )
    assert code == 2
    assert "signature does not verify" in out
    empty = tmp_path / "empty.ckpt"
    empty.touch()
    code, out = run(
        "audit", "verify", "--db", url, "--checkpoints", str(empty), "--public-key", str(key)
    )
    assert code == 2
    assert "no checkpoint yet" in out
    code, out = run("audit", "checkpoint", "--db", url)
    assert code == 2
    assert "--key" in out


def test_verify_reports_a_changed_signed_note(database: tuple[str, sa.Engine]) -> None:
    from needlepoint.actions import episodes, sessions
    from needlepoint.domain.commands import SignSession
    from tests.factories import episode_cmd, session_cmd

    url, engine = database
    clinic = make_clinic(engine)
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    clinic.prepare_needling(patient.id)
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    note = sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    sessions.sign_session(
        clinic.uow(), clinic.as_clinician, SignSession(session_id=note.id, expected_version=1)
    )
    code, out = run("audit", "verify", "--db", url)
    assert code == 0, out
    assert "1 signed notes match" in out
    with engine.begin() as conn:  # clinical rows have no append-only trigger
        conn.execute(
            sa.update(t.needling_sites)
            .where(t.needling_sites.c.session_id == note.id, t.needling_sites.c.position == 0)
            .values(depth_mm=28)
        )
    code, out = run("audit", "verify", "--db", url)
    assert code == 1, out
    assert "ALTERED" in out
    assert str(note.id) in out
