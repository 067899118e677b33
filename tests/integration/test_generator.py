"""The synthetic clinic: valid, reproducible for a seed, and the bulk path writes exactly
the rows the per-action path writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.domain import instruments
from needlepoint.domain.catalogue import muscles
from needlepoint.synthetic.clinic import ANCHOR, generate_clinic
from needlepoint.synthetic.model import REGISTRY, ROUTINE, Protocol


def fresh_sqlite(path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    out = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            if table is t.analytics_versions:  # a cache's invalidation mark, not the clinic
                continue
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


@pytest.fixture(scope="module")
def small_clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[sa.Engine, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("gen")
    engine = fresh_sqlite(folder / "a.db")
    report = generate_clinic(engine, patients_count=60, seed=7, truth_path=folder / "truth.json")
    truth = json.loads((folder / "truth.json").read_text())
    assert report.truth_path == folder / "truth.json"
    assert (folder / "truth.json").stat().st_mode & 0o777 == 0o600  # owner only, like the db
    return engine, truth


def test_same_seed_same_clinic(tmp_path: Path, small_clinic: tuple[sa.Engine, Any]) -> None:
    again = fresh_sqlite(tmp_path / "b.db")
    generate_clinic(again, patients_count=60, seed=7)
    assert dump(again) == dump(small_clinic[0])


def test_another_seed_another_clinic(tmp_path: Path, small_clinic: tuple[sa.Engine, Any]) -> None:
    other = fresh_sqlite(tmp_path / "c.db")
    generate_clinic(other, patients_count=60, seed=8)
    assert dump(other)["patients"] != dump(small_clinic[0])["patients"]


@pytest.mark.parametrize("protocol", [ROUTINE, REGISTRY], ids=["routine", "registry"])
def test_bulk_path_writes_the_same_rows_as_one_transaction_per_action(
    tmp_path: Path, protocol: Protocol
) -> None:
    bulk = fresh_sqlite(tmp_path / "bulk.db")
    per_action = fresh_sqlite(tmp_path / "actions.db")
    generate_clinic(
        bulk, patients_count=15, seed=3, mode="bulk", chunk_size=4, workers=1, protocol=protocol
    )
    generate_clinic(per_action, patients_count=15, seed=3, mode="actions", protocol=protocol)
    a, b = dump(bulk), dump(per_action)
    assert sum(len(rows) for rows in a.values()) > 500
    assert a == b


def test_worker_processes_write_the_same_clinic_as_one_process(tmp_path: Path) -> None:
    parallel = fresh_sqlite(tmp_path / "parallel.db")
    serial = fresh_sqlite(tmp_path / "serial.db")
    generate_clinic(parallel, patients_count=40, seed=12, chunk_size=5, workers=2)
    generate_clinic(serial, patients_count=40, seed=12, chunk_size=7, workers=1)
    assert dump(parallel) == dump(serial)


def test_registry_patients_return_with_new_episodes_measured_at_every_session(
    tmp_path: Path,
) -> None:
    engine = fresh_sqlite(tmp_path / "registry.db")
    report = generate_clinic(engine, patients_count=80, seed=21, protocol=REGISTRY)
    assert (
        generate_clinic(
            fresh_sqlite(tmp_path / "again.db"), patients_count=80, seed=21, protocol=REGISTRY
        ).truth
        == report.truth
    )
    episodes = report.truth["episodes"]
    returning = [e for e in episodes if e.get("returning")]
    assert 15 <= len(returning) <= 60  # about half of those discharged in time come back
    assert report.truth["protocol"]["measures"] == "registry"
    with engine.connect() as conn:
        spans = conn.execute(
            sa.select(
                t.episodes.c.patient_id,
                t.episodes.c.opened_on,
                t.episodes.c.closed_on,
                sa.func.min(t.sessions.c.started_at),
                sa.func.max(t.sessions.c.started_at),
            )
            .join(t.sessions, t.sessions.c.episode_id == t.episodes.c.id)
            .group_by(t.episodes.c.id)
            .order_by(t.episodes.c.patient_id, t.episodes.c.opened_on)
        ).all()
        per_session = conn.execute(
            sa.select(t.measurements.c.instrument_id, sa.func.count()).group_by(
                t.measurements.c.instrument_id
            )
        ).all()
        measures = conn.execute(sa.select(t.measurements)).all()
    assert len(spans) == len(episodes)
    previous: dict[Any, Any] = {}
    for patient, opened, closed, first, last in spans:
        if patient in previous:  # one episode at a time: discharged before the next opens
            assert previous[patient] is not None
            assert previous[patient] < opened
        assert str(first)[:10] == str(opened)
        assert str(last)[:10] <= ANCHOR.isoformat()
        previous[patient] = closed
    counts = dict(per_session)
    sessions = report.sessions
    assert counts["nprs"] == counts["rom"] == sessions  # every session
    assert counts["ppt"] == 2 * sessions  # the treated trigger point and its control
    for m in measures:
        assert instruments.score(instruments.get(m.instrument_id), m.answers) == m.score


def test_the_same_seed_gives_the_same_clinic_on_postgresql_and_sqlite(
    postgres_engine: sa.Engine, tmp_path: Path
) -> None:
    engine = postgres_engine
    lite = fresh_sqlite(tmp_path / "lite.db")
    r1 = generate_clinic(lite, patients_count=10, seed=11, clinic_name="Parity")
    r2 = generate_clinic(engine, patients_count=10, seed=11, clinic_name="Parity")
    assert r1.clinic_id == r2.clinic_id
    with lite.connect() as c1, engine.connect() as c2:
        for table in (t.sessions, t.needling_sites, t.measurements, t.audit_events):
            q = sa.select(table).where(table.c.clinic_id == r1.clinic_id).order_by(table.c.id)
            assert [tuple(r) for r in c1.execute(q)] == [tuple(r) for r in c2.execute(q)]


def test_generated_notes_are_valid_clinical_records(small_clinic: tuple[sa.Engine, Any]) -> None:
    engine, truth = small_clinic
    known = {m.id for m in muscles().muscles}
    thorax = {m.id for m in muscles().muscles if m.thorax}
    with engine.connect() as conn:
        per_episode = dict(
            conn.execute(
                sa.select(t.sessions.c.episode_id, sa.func.count()).group_by(
                    t.sessions.c.episode_id
                )
            ).all()
        )
        sites = conn.execute(sa.select(t.needling_sites)).all()
        measures = conn.execute(sa.select(t.measurements)).all()
        thorax_sides = conn.execute(
            sa.select(t.needling_sites.c.session_id, t.needling_sites.c.side).where(
                t.needling_sites.c.muscle_id.in_(thorax)
            )
        ).all()
    assert len(per_episode) == 60
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(t.sessions.c.started_at))).scalar_one()
    assert str(last)[:10] <= ANCHOR.isoformat()  # nothing after the clinic's "today"
    assert all(3 <= n <= 12 for n in per_episode.values())
    assert any(e["ongoing"] for e in truth["episodes"])  # some episodes still under way
    assert all(3 <= e["sessions"] <= 12 for e in truth["episodes"])
    assert all(s.muscle_id in known and s.depth_mm <= s.needle_length_mm for s in sites)
    by_session: dict[Any, set[str]] = {}
    for session_id, side in thorax_sides:
        by_session.setdefault(session_id, set()).add(side)
    assert all(len(sides) == 1 for sides in by_session.values()), "both sides of the thorax"
    for m in measures:  # every stored score is what the instrument computes from the answers
        assert instruments.score(instruments.get(m.instrument_id), m.answers) == m.score


def test_needled_muscles_fit_the_condition(small_clinic: tuple[sa.Engine, Any]) -> None:
    engine, _ = small_clinic
    fits = muscles().condition_muscles
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.episodes.c.condition, t.needling_sites.c.muscle_id)
            .join(t.sessions, t.sessions.c.episode_id == t.episodes.c.id)
            .join(t.needling_sites, t.needling_sites.c.session_id == t.sessions.c.id)
        ).all()
    assert rows
    assert all(muscle in fits[condition] for condition, muscle in rows)


def test_truth_file_holds_the_planted_effects(small_clinic: tuple[sa.Engine, Any]) -> None:
    engine, truth = small_clinic
    assert truth["seed"] == 7
    assert truth["patients"] == 60
    skills = [p["skill_nprs"] for p in truth["practitioners"]]
    assert len(skills) == 3
    assert len(set(skills)) == 3
    model = truth["outcome_model"]
    assert model["noise_sd"] > 0
    assert "condition_effect" in model
    with engine.connect() as conn:
        clinicians = set(
            conn.execute(sa.select(t.users.c.id).where(t.users.c.role == "clinician")).scalars()
        )
    assert {p["user_id"] for p in truth["practitioners"]} == {str(c) for c in clinicians}
    assert truth["adverse_event_rates_per_session"]["mild"]["bruising"] == pytest.approx(0.0755)


def test_pain_falls_more_for_more_skilled_practitioners(tmp_path: Path) -> None:
    """The planted practitioner effect is visible in the generated NPRS trajectories."""
    engine = fresh_sqlite(tmp_path / "skill.db")
    report = generate_clinic(engine, patients_count=400, seed=5, practitioners_count=4)
    skill = {p["user_id"]: p["skill_nprs"] for p in report.truth["practitioners"]}
    finished = [e for e in report.truth["episodes"] if not e["ongoing"]]
    mean_change = {
        pid: sum(e["planted_nprs_change"] for e in finished if e["practitioner_id"] == pid)
        / max(1, sum(1 for e in finished if e["practitioner_id"] == pid))
        for pid in skill
    }
    best = max(skill, key=lambda p: skill[p])
    worst = min(skill, key=lambda p: skill[p])
    assert mean_change[best] > mean_change[worst]
    with engine.connect() as conn:
        nprs = conn.execute(
            sa.select(
                t.sessions.c.clinician_id,
                t.measurements.c.episode_id,
                t.measurements.c.taken_at,
                t.measurements.c.score,
            )
            .join(t.sessions, t.sessions.c.id == t.measurements.c.session_id)
            .where(t.measurements.c.instrument_id == "nprs")
            .order_by(t.measurements.c.episode_id, t.measurements.c.taken_at)
        ).all()
    first: dict[Any, float] = {}
    last: dict[Any, tuple[Any, float]] = {}
    for clinician, episode, _, score in nprs:
        first.setdefault(episode, score)
        last[episode] = (clinician, score)
    observed: dict[str, list[float]] = {}
    for episode, (clinician, score) in last.items():
        observed.setdefault(str(clinician), []).append(first[episode] - score)
    avg = {k: sum(v) / len(v) for k, v in observed.items()}
    assert avg[best] > avg[worst]


def test_adverse_events_occur_near_the_published_rates(tmp_path: Path) -> None:
    engine = fresh_sqlite(tmp_path / "ae.db")
    generate_clinic(engine, patients_count=300, seed=9)
    with engine.connect() as conn:
        n_sessions = conn.execute(sa.select(sa.func.count()).select_from(t.sessions)).scalar_one()
        bruising = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.adverse_events)
            .where(t.adverse_events.c.kind == "bruising")
        ).scalar_one()
    rate = bruising / n_sessions
    # Brady 2014: bruising in 7.55 % of treatments; binomial 4-sigma band for ~2,000 sessions.
    sigma = (0.0755 * 0.9245 / n_sessions) ** 0.5
    assert abs(rate - 0.0755) < 4 * sigma
