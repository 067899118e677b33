"""Properties of the one responder rule (`domain.responders`), for every instrument with a
threshold, and agreement of its SQL twin (`analytics.responders.reach_sql`) with it."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlepoint.analytics.responders import reach_sql
from needlepoint.domain import instruments
from needlepoint.domain.instruments import Instrument, Threshold
from needlepoint.domain.responders import (
    classify,
    meaningful_threshold,
    reaches,
    required_change,
)

CERVICAL = {"joint": "cervical_spine", "movement": "rotation", "side": "left"}
RATED = [
    (i, CERVICAL if i.id == "rom" else None)
    for i in instruments.library().values()
    if i.responder is not None and i.change == "from_baseline"
]


def scores(inst: Instrument) -> st.SearchStrategy[float]:
    lo, hi = inst.score_range
    if inst.id == "rom":
        hi = 180.0
    return st.floats(min_value=lo, max_value=hi, allow_nan=False)


@pytest.mark.parametrize(("inst", "ctx"), RATED, ids=[i.id for i, _ in RATED])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_no_change_below_the_absolute_mcid_or_the_governing_value_is_ever_a_responder(
    inst: Instrument, ctx: dict[str, str] | None, data: st.DataObject
) -> None:
    base = data.draw(scores(inst))
    latest = data.draw(scores(inst))
    threshold = meaningful_threshold(inst, ctx)
    assert threshold is not None
    assert threshold.value is not None
    floor = max(threshold.value, inst.mcid.value if inst.mcid and inst.mcid.value else 0)
    r = classify(inst, base, latest, ctx)
    if abs(latest - base) < floor - 1e-6:
        assert r.status == "not a responder"
        assert r.worsened is False


@pytest.mark.parametrize(("inst", "ctx"), RATED, ids=[i.id for i, _ in RATED])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_larger_improvement_from_the_same_baseline_stays_a_responder(
    inst: Instrument, ctx: dict[str, str] | None, data: st.DataObject
) -> None:
    base, a, b = data.draw(scores(inst)), data.draw(scores(inst)), data.draw(scores(inst))
    worse_is_higher = inst.higher_is == "worse"
    nearer, further = sorted((a, b), reverse=worse_is_higher)  # further = more improved
    if classify(inst, base, nearer, ctx).status == "responder":
        assert classify(inst, base, further, ctx).status == "responder"


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(min_value=0, max_value=10, allow_nan=False),
    latest=st.floats(min_value=0, max_value=10, allow_nan=False),
)
def test_psfs_and_its_reversed_2_0_version_agree_on_mirrored_scores(
    base: float, latest: float
) -> None:
    original, reversed_ = instruments.get("psfs"), instruments.get("psfs_2")
    a = classify(original, base, latest)
    b = classify(reversed_, 10 - base, 10 - latest)
    assert (a.status, a.direction) == (b.status, b.direction)


ABSOLUTE_ONLY = [(i, c) for i, c in RATED if i.responder and i.responder.percent is None]


@pytest.mark.parametrize(("inst", "ctx"), ABSOLUTE_ONLY, ids=[i.id for i, _ in ABSOLUTE_ONLY])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_with_an_absolute_threshold_improving_and_worsening_are_mirror_images(
    inst: Instrument, ctx: dict[str, str] | None, data: st.DataObject
) -> None:
    base, latest = data.draw(scores(inst)), data.draw(scores(inst))
    forward = classify(inst, base, latest, ctx)
    backward = classify(inst, latest, base, ctx)
    assert (forward.status == "responder") == (backward.status == "worsened")


@settings(max_examples=200, deadline=None)
@given(
    shift=st.floats(min_value=-3, max_value=3, allow_nan=False),
    base=st.floats(min_value=3, max_value=7, allow_nan=False),
    latest=st.floats(min_value=3, max_value=7, allow_nan=False),
)
def test_an_absolute_threshold_depends_on_the_change_not_the_level(
    shift: float, base: float, latest: float
) -> None:
    psfs = instruments.get("psfs")
    moved = classify(psfs, base + shift, latest + shift)
    # (floating-point sums can move a change exactly at the threshold by an ulp)
    if abs(abs(latest - base) - 1.3) > 1e-6:
        assert classify(psfs, base, latest).status == moved.status


CON = duckdb.connect()
thresholds = st.builds(
    Threshold,
    value=st.one_of(st.none(), st.floats(min_value=0.1, max_value=50)),
    percent=st.one_of(st.none(), st.floats(min_value=1, max_value=90)),
    combine=st.sampled_from(["either", "both"]),
    source=st.just("test"),
    verified=st.just(True),
)


@settings(max_examples=400, deadline=None)
@given(
    threshold=thresholds,
    baseline=st.one_of(st.just(0.0), st.floats(min_value=-100, max_value=100, allow_nan=False)),
    amount=st.floats(min_value=-100, max_value=100, allow_nan=False),
)
def test_the_sql_of_the_clinic_analytics_agrees_with_the_domain_rule(
    threshold: Threshold, baseline: float, amount: float
) -> None:
    def lit(x: float | None) -> str:
        return "NULL::DOUBLE" if x is None else f"{x!r}::DOUBLE"

    expr = reach_sql(
        lit(amount),
        lit(baseline),
        lit(threshold.value),
        lit(threshold.percent),
        "true" if threshold.combine == "both" else "false",
    )
    row = CON.execute(f"SELECT coalesce({expr}, false)").fetchone()
    assert row is not None
    assert row[0] == reaches(threshold, baseline, amount)


@settings(max_examples=300, deadline=None)
@given(
    threshold=thresholds,
    baseline=st.floats(min_value=0.5, max_value=100, allow_nan=False),
)
def test_the_required_change_is_exactly_where_the_threshold_is_reached(
    threshold: Threshold, baseline: float
) -> None:
    need = required_change(threshold, baseline)
    if need is None:
        return
    assert reaches(threshold, baseline, need)
    assert not reaches(threshold, baseline, need * 0.999 - 1e-6)
