"""The statistics behind the clinic analytics, checked against known answers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from needlepoint.analytics.dataset import Dataset
from needlepoint.analytics.prognosis import auc, calibration
from needlepoint.analytics.recovery import kaplan_meier, logrank
from needlepoint.analytics.responders import (
    Workspace,
    headline,
    headline_from_facts,
    responder_table,
    wilson,
    wilson_sql,
)
from needlepoint.analytics.safety import alert_rule
from needlepoint.domain.catalogue import adverse_event_benchmarks


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe 1998, Stat Med 17:857-872, table I (Wilson score interval)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombes_table(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_a_rate_without_a_denominator_has_no_interval() -> None:
    assert wilson(0, 0) == (None, None)


def test_the_sql_wilson_interval_is_the_python_one() -> None:
    import duckdb

    lo, hi = wilson_sql("k", "n")
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT k, n, {lo}, {hi} FROM (VALUES (81, 263), (0, 20), (7, 7), (3, 0)) t(k, n)"
    ).fetchall()
    for k, n, slo, shi in rows:
        plo, phi = wilson(k, n)
        assert (slo is None) == (plo is None)
        if plo is not None:
            assert slo == pytest.approx(plo)
            assert shi == pytest.approx(phi)


def test_kaplan_meier_matches_a_hand_worked_example() -> None:
    # Five episodes: improved on days 1, 2 and 3; censored on days 2 and 4.
    # S(1) = 4/5 = 0.8; S(2) = 0.8 x 3/4 = 0.6; S(3) = 0.6 x 1/2 = 0.3; S(4) = 0.3.
    curve = kaplan_meier("hand", [1, 2, 2, 3, 4], [True, True, False, True, False])
    improved = {p.day: p.improved for p in curve.points}
    assert improved[1] == pytest.approx(0.2)
    assert improved[2] == pytest.approx(0.4)
    assert improved[3] == pytest.approx(0.7)
    assert improved[4] == pytest.approx(0.7)
    assert curve.median_days == 3
    assert (curve.events, curve.censored, curve.episodes) == (3, 2, 5)


def test_kaplan_meier_median_not_reached_when_fewer_than_half_improve() -> None:
    curve = kaplan_meier("few", [5, 6, 7, 8], [True, False, False, False])
    assert curve.median_days is None


def test_logrank_separates_clearly_different_groups() -> None:
    days = [1, 2, 2, 3, 3, 4] * 5 + [20, 25, 30, 35, 40, 45] * 5
    groups = ["fast"] * 30 + ["slow"] * 30
    result = logrank(days, groups, [True] * 60)
    assert result.degrees_of_freedom == 1
    assert result.p_value is not None
    assert result.p_value < 1e-6


def _straddle(sessions: int, threshold_percent: float) -> int:
    """The smallest event count whose Wilson lower bound exceeds the threshold."""
    k = 0
    while True:
        lo, _ = wilson(k, sessions)
        assert lo is not None
        if 100 * lo > threshold_percent:
            return k
        k += 1


def test_safety_alert_fires_exactly_when_the_lower_bound_passes_the_published_figure() -> None:
    threshold = max(s.significant_upper_percent for s in adverse_event_benchmarks().studies)
    sessions = 20_000
    k = _straddle(sessions, threshold)
    below, above = alert_rule(k - 1, sessions), alert_rule(k, sessions)
    assert below.threshold_per_100 == threshold == 0.1  # Boyce 2020: < 0.1 %
    assert below.ci_low_per_100 is not None
    assert below.ci_low_per_100 <= threshold
    assert not below.raised
    assert "No alert" in below.message
    assert above.ci_low_per_100 is not None
    assert above.ci_low_per_100 > threshold
    assert above.raised
    assert "ALERT" in above.message
    # The clinic's point rate is already above the figure at k - 1: chance is not excluded.
    assert below.rate_per_100 is not None
    assert below.rate_per_100 > threshold


def test_no_sessions_no_alert() -> None:
    result = alert_rule(0, 0)
    assert not result.raised
    assert result.rate_per_100 is None


def test_auc_and_calibration_of_known_predictions() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 20_000)
    outcome = (rng.uniform(size=p.size) < p).astype(float)
    slope, intercept = calibration(outcome, p)
    assert slope == pytest.approx(1.0, abs=0.08)
    assert intercept == pytest.approx(0.0, abs=0.08)


def _tiny_dataset(nprs: dict[str, list[float]]) -> Dataset:
    """One episode per entry, NPRS weekly, no other records."""
    start = datetime(2026, 1, 5, 9)
    ids = list(nprs)
    m_rows = [
        (eid, f"{eid}-s{i}", "nprs", score, start + timedelta(days=7 * i))
        for eid, scores in nprs.items()
        for i, score in enumerate(scores)
    ]
    s_rows = [(r[1], r[0], r[4]) for r in m_rows]
    empty = [None] * len(m_rows)
    return Dataset(
        episodes=pa.table(
            {
                "episode_id": ids,
                "patient_id": [f"p-{i}" for i in ids],
                "practitioner_id": ["u1"] * len(ids),
                "practitioner": ["Pat Therapist"] * len(ids),
                "condition": ["neck_pain"] * len(ids),
                "onset_date": [date(2025, 6, 1)] * len(ids),
                "opened_on": [date(2026, 1, 5)] * len(ids),
                "closed_on": [date(2026, 3, 1)] * len(ids),
                "status": ["closed"] * len(ids),
                "birth_date": [date(1980, 1, 1)] * len(ids),
                "sex": ["female"] * len(ids),
            }
        ),
        plan=pa.table(
            {"episode_id": pa.array([], pa.string()), "modality": pa.array([], pa.string())}
        ),
        sessions=pa.table(
            {
                "session_id": [r[0] for r in s_rows],
                "episode_id": [r[1] for r in s_rows],
                "started_at": pa.array([r[2] for r in s_rows], pa.timestamp("us")),
            }
        ),
        sites=pa.table(
            {
                "session_id": pa.array([], pa.string()),
                "sites": pa.array([], pa.int64()),
                "active_trigger_points": pa.array([], pa.int64()),
            }
        ),
        techniques=pa.table(
            {
                "episode_id": pa.array([], pa.string()),
                "technique": pa.array([], pa.string()),
                "sites": pa.array([], pa.int64()),
            }
        ),
        measurements=pa.table(
            {
                "episode_id": [r[0] for r in m_rows],
                "session_id": [r[1] for r in m_rows],
                "instrument_id": [r[2] for r in m_rows],
                "score": pa.array([r[3] for r in m_rows], pa.float64()),
                "taken_at": pa.array([r[4] for r in m_rows], pa.timestamp("us")),
                **{
                    k: pa.array(empty, pa.string())
                    for k in ("joint", "movement", "side", "site", "location")
                },
                "patient_reported": pa.array([0] * len(m_rows), pa.int8()),
            }
        ),
        medication=pa.table(
            {
                "episode_id": pa.array([], pa.string()),
                "drug": pa.array([], pa.string()),
                "drug_class": pa.array([], pa.string()),
                "days_per_week": pa.array([], pa.int64()),
                "recorded_on": pa.array([], pa.date32()),
                "created_at": pa.array([], pa.timestamp("us")),
            }
        ),
        adverse_events=pa.table(
            {k: pa.array([], pa.string()) for k in ("session_id", "kind", "severity")}
        ),
    )


def test_nprs_responders_need_two_points_and_thirty_percent() -> None:
    ws = Workspace(
        _tiny_dataset(
            {
                "two-points": [6, 5, 4],  # 2 points = 33 %: responder
                "high-baseline": [9, 7],  # 2 points = 22 %: not (30 % of 9 is 2.7)
                "low-baseline": [3, 2],  # 1 point = 33 %: not (below 2 points)
                "one-point": [8, 7],  # 1 point = 12.5 %: not
                "worse": [4, 7],  # worse: not
                "baseline-only": [6],  # no pair: missing
            }
        )
    )
    rows = {(r.benefit, r.dimension): r for r in responder_table(ws)}
    pain = rows[("pain_relief", "overall")]
    assert (pain.episodes, pain.complete, pain.missing, pain.responders) == (6, 5, 1, 1)
    assert pain.rate == 0.2
    (head,) = headline(ws)
    assert (head.complete, head.missing, head.responders) == (5, 1, 1)
    assert headline_from_facts(ws) == headline(ws)
    blood = rows[("blood_circulation", "overall")]
    assert blood.complete == 0
    assert blood.rate is None
    assert blood.ci_low is None
