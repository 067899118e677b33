"""Responder classification at, just above and just below each published threshold, for
improvement and for worsening, in each instrument's own direction."""

from __future__ import annotations

import pytest

from needlepoint.domain import instruments
from needlepoint.domain.responders import classify, first_meaningful_improvement

CERVICAL = {"joint": "cervical_spine", "movement": "rotation", "side": "left"}

# instrument, context, baseline, latest exactly at the threshold in the better direction,
# and in the worse direction. Baselines are chosen so that a percent MCID (where there is
# one) is not reached by a change just below the absolute one.
ABSOLUTE = [
    ("nprs", None, 8.0, 6.0, 10.0),  # 2 points (Farrar 2001)
    ("vas", None, 60.0, 45.0, 75.0),  # 15 mm (Ostelo 2008)
    ("ndi", None, 40.0, 25.0, 55.0),  # 7.5 of 50 points = 15 % (Young 2009)
    ("odi", None, 40.0, 30.0, 50.0),  # 10 points (Ostelo 2008)
    ("quickdash", None, 50.0, 36.0, 64.0),  # 14 (Sorensen 2013)
    ("lefs", None, 40.0, 49.0, 31.0),  # 9, higher is better (Binkley 1999)
    ("psfs", None, 4.0, 5.3, 2.7),  # 1.3, higher is better (Abbott & Schmitt 2014)
    ("psfs_2", None, 6.0, 4.7, 7.3),  # PSFS 2.0: the reversed scale
    ("rom", CERVICAL, 60.0, 69.6, 50.4),  # cervical MDC, largest of 5.4-9.6° (Fletcher 2008)
]
NUDGE = 0.01


@pytest.mark.parametrize(("instrument_id", "ctx", "base", "better", "worse"), ABSOLUTE)
def test_an_improvement_exactly_at_the_threshold_makes_a_responder(
    instrument_id: str, ctx: dict[str, str] | None, base: float, better: float, worse: float
) -> None:
    inst = instruments.get(instrument_id)
    r = classify(inst, base, better, ctx)
    assert r.status == "responder"
    assert r.direction == "better"
    assert r.worsened is False


@pytest.mark.parametrize(("instrument_id", "ctx", "base", "better", "worse"), ABSOLUTE)
def test_an_improvement_just_above_the_threshold_makes_a_responder(
    instrument_id: str, ctx: dict[str, str] | None, base: float, better: float, worse: float
) -> None:
    inst = instruments.get(instrument_id)
    beyond = better + (NUDGE if better > base else -NUDGE)
    assert classify(inst, base, beyond, ctx).status == "responder"


@pytest.mark.parametrize(("instrument_id", "ctx", "base", "better", "worse"), ABSOLUTE)
def test_an_improvement_just_below_the_threshold_does_not(
    instrument_id: str, ctx: dict[str, str] | None, base: float, better: float, worse: float
) -> None:
    inst = instruments.get(instrument_id)
    short = better - (NUDGE if better > base else -NUDGE)
    r = classify(inst, base, short, ctx)
    assert r.status == "not a responder"
    assert r.direction == "better"  # better, but not by a meaningful amount
    assert r.mcid_reached in (False, None)


@pytest.mark.parametrize(("instrument_id", "ctx", "base", "better", "worse"), ABSOLUTE)
def test_a_worsening_at_or_beyond_the_threshold_is_worsened_and_just_short_is_not(
    instrument_id: str, ctx: dict[str, str] | None, base: float, better: float, worse: float
) -> None:
    inst = instruments.get(instrument_id)
    step = NUDGE if worse > base else -NUDGE
    at, beyond, short = (
        classify(inst, base, worse, ctx),
        classify(inst, base, worse + step, ctx),
        classify(inst, base, worse - step, ctx),
    )
    assert (at.status, at.worsened, at.direction) == ("worsened", True, "worse")
    assert (beyond.status, beyond.worsened) == ("worsened", True)
    assert (short.status, short.worsened, short.direction) == ("not a responder", False, "worse")


# Percent MCIDs: "2 points or 30 %" -- a small baseline reaches 30 % before 2 points.
PERCENT = [
    ("nprs", 5.0, 3.5, 6.5),  # 30 % of 5 = 1.5 points
    ("vas", 40.0, 28.0, 52.0),  # 30 % of 40 = 12 mm
    ("odi", 20.0, 14.0, 26.0),  # 30 % of 20 = 6 points
]


@pytest.mark.parametrize(("instrument_id", "base", "better", "worse"), PERCENT)
def test_a_percent_mcid_counts_at_just_above_and_not_just_below_30_percent(
    instrument_id: str, base: float, better: float, worse: float
) -> None:
    inst = instruments.get(instrument_id)
    assert classify(inst, base, better).status == "responder"
    assert classify(inst, base, better - NUDGE).status == "responder"
    assert classify(inst, base, better + NUDGE).status == "not a responder"
    assert classify(inst, base, worse).status == "worsened"
    assert classify(inst, base, worse + NUDGE).status == "worsened"
    assert classify(inst, base, worse - NUDGE).status == "not a responder"


def test_change_and_percent_change_are_reported_in_the_instruments_units() -> None:
    r = classify(instruments.get("nprs"), 8, 4)
    assert (r.change, r.percent_change, r.mcid_reached) == (-4, -50, True)
    assert classify(instruments.get("nprs"), 0, 3).percent_change is None  # no % of zero


def test_lefs_reports_the_mdc_as_well_as_the_mcid() -> None:
    r = classify(instruments.get("lefs"), 40, 49)
    assert (r.mcid_reached, r.mdc_reached) == (True, True)
    r = classify(instruments.get("lefs"), 40, 48)
    assert (r.mcid_reached, r.mdc_reached) == (False, False)


def test_no_threshold_is_claimed_where_none_is_published() -> None:
    for instrument_id, ctx in [
        ("headache_days", None),
        ("ppt", {"site": "treated", "location": "x"}),
        ("rom", {"joint": "shoulder", "movement": "abduction", "side": "left"}),
    ]:
        r = classify(instruments.get(instrument_id), 10, 2, ctx)
        assert r.status == "no published threshold"
        assert (r.mcid_reached, r.mdc_reached, r.worsened) == (None, None, None)
        assert r.direction in ("better", "worse")


def test_first_meaningful_improvement_is_the_first_visit_reaching_the_mcid() -> None:
    nprs = instruments.get("nprs")
    assert first_meaningful_improvement(nprs, [8, 7, 7, 6, 5]) == 3
    assert first_meaningful_improvement(nprs, [8, 7, 7]) is None
    assert first_meaningful_improvement(instruments.get("headache_days"), [20, 2]) is None
