"""Practitioners are ranked only where the data tell them apart, and a one-patient
prognosis is shown only when the model's own validation says it is reliable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from needlepoint.analytics.practitioners import PractitionerEffect, distinguishable_ranks
from needlepoint.analytics.prognosis import (
    MIN_CALIBRATION_SLOPE,
    PrognosisModel,
    Validation,
    reliability,
)


def effect(pid: str, centre: float, half: float, patients: int = 30) -> PractitionerEffect:
    return PractitionerEffect(
        practitioner_id=pid,
        practitioner=f"Practitioner {pid}",
        patients=patients,
        effect=centre,
        ci_low=centre - half,
        ci_high=centre + half,
        observed_mean=centre,
        adjusted_mean=centre,
        rank=None,
        ranked=patients >= 20,
        note="" if patients >= 20 else "fewer than 20 patients: not ranked",
    )


def test_two_practitioners_whose_intervals_overlap_are_not_ranked() -> None:
    out = {
        e.practitioner_id: e
        for e in distinguishable_ranks(
            [effect("a", 1.0, 0.6), effect("b", 0.2, 0.6), effect("c", -3.0, 0.5)]
        )
    }
    assert out["a"].rank is None
    assert out["b"].rank is None
    assert "not distinguishable from 1 other" in out["a"].note
    assert out["c"].rank == 1  # apart from both: ranked (the only one ranked)


def test_clearly_separated_practitioners_are_ranked_best_first() -> None:
    out = distinguishable_ranks(
        [effect("low", -2, 0.5), effect("high", 2, 0.5), effect("mid", 0, 0.5)]
    )
    assert [(e.practitioner_id, e.rank) for e in out] == [("high", 1), ("mid", 2), ("low", 3)]


def test_a_practitioner_with_few_patients_stays_unranked_and_does_not_block_others() -> None:
    out = {
        e.practitioner_id: e
        for e in distinguishable_ranks(
            [effect("few", 0.0, 5.0, patients=3), effect("x", 2, 0.5), effect("y", -2, 0.5)]
        )
    }
    assert out["few"].rank is None
    assert "fewer than 20" in out["few"].note
    assert (out["x"].rank, out["y"].rank) == (1, 2)


intervals = st.lists(
    st.tuples(st.floats(-10, 10), st.floats(0.01, 5), st.integers(1, 60)), min_size=0, max_size=12
)


@given(intervals)
def test_ranked_practitioners_never_have_overlapping_intervals(
    rows: list[tuple[float, float, int]],
) -> None:
    out = distinguishable_ranks([effect(str(i), c, h, n) for i, (c, h, n) in enumerate(rows)])
    ranked = [e for e in out if e.rank is not None]
    assert sorted(e.rank for e in ranked if e.rank) == list(range(1, len(ranked) + 1))
    for a in ranked:
        assert a.patients >= 20
        for b in ranked:
            if a is not b:
                assert a.ci_high < b.ci_low or b.ci_high < a.ci_low  # type: ignore[operator]
                assert (a.rank < b.rank) == (a.effect > b.effect)  # type: ignore[operator]
    assert {e.practitioner_id for e in out} == {str(i) for i in range(len(rows))}


def model(slope: float | None, auc: float | None) -> PrognosisModel:
    v = Validation(5, 200, 80, auc, slope, 0.0, 0.2, [])
    return PrognosisModel(200, 80, "f", "fitted", {}, v)


def test_a_well_calibrated_model_is_reliable() -> None:
    judged = reliability(model(1.0, 0.72), events_per_parameter=15)
    assert judged.reliable
    assert not judged.reasons
    assert any("Peduzzi" in s for s in judged.sources)


def test_an_over_fitted_model_is_not_shown_for_one_patient() -> None:
    judged = reliability(model(0.6, 0.72), events_per_parameter=15)
    assert not judged.reliable
    assert "calibration slope is 0.60" in judged.reasons[0]
    assert not reliability(model(None, 0.72), events_per_parameter=15).reliable
    assert reliability(model(MIN_CALIBRATION_SLOPE, 0.72), events_per_parameter=15).reliable


def test_too_few_events_per_parameter_or_a_chance_auc_is_unreliable() -> None:
    assert "per parameter" in reliability(model(1.0, 0.7), events_per_parameter=4.2).reasons[0]
    assert "chance" in reliability(model(1.0, 0.5), events_per_parameter=15).reasons[0]
    unfitted = PrognosisModel(10, 2, "f", "too few episodes", {}, None)
    assert not reliability(unfitted, None).reliable
