"""Responder classification at, just above and just below each published threshold, for
improvement and for worsening, in each instrument's own direction."""

from __future__ import annotations

import pytest

from needlepoint.domain import instruments
from needlepoint.domain.responders import classify, first_meaningful_improvement

CERVICAL = {"joint": "cervical_spine", "movement": "rotation", "side": "left"}

# instrument, context, baseline, latest exactly at the threshold in the better direction,
# and in the worse direction. Where the rule needs both the absolute amount and 30 % (NPRS,
# VAS, ODI) the baselines are low enough that the absolute amount is the binding one.
ABSOLUTE = [
    ("nprs", None, 6.0, 4.0, 8.0),  # 2 points and 30 % (Farrar 2001; 2/6 = 33 %)
    ("vas", None, 40.0, 25.0, 55.0),  # 15 mm and 30 % (Ostelo 2008; 15/40 = 37.5 %)
    ("ndi", None, 40.0, 20.0, 60.0),  # 10 of 50 points = 20 %: the MDC governs (Young 2009)
    ("odi", None, 30.0, 20.0, 40.0),  # 10 points and 30 % (Ostelo 2008; 10/30 = 33 %)
    ("quickdash", None, 50.0, 32.9, 67.1),  # MDC 17.1 governs (van Kampen 2013; MCID 14)
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
    by_mdc = inst.responder is not None and inst.responder.basis == "mdc"
    governing = r.mdc_reached if by_mdc else r.mcid_reached
    assert governing is False


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


# "Both" rules (NPRS, VAS, ODI): at a high baseline 30 % is more than the absolute amount
# and binds (Farrar 2001: higher baselines need larger raw changes).
PERCENT = [
    ("nprs", 8.0, 5.6, 10.4),  # 30 % of 8 = 2.4 points
    ("vas", 60.0, 42.0, 78.0),  # 30 % of 60 = 18 mm
    ("odi", 50.0, 35.0, 65.0),  # 30 % of 50 = 15 points
]


@pytest.mark.parametrize(("instrument_id", "base", "better", "worse"), PERCENT)
def test_at_a_high_baseline_30_percent_is_also_needed(
    instrument_id: str, base: float, better: float, worse: float
) -> None:
    inst = instruments.get(instrument_id)
    assert classify(inst, base, better).status == "responder"
    assert classify(inst, base, better - NUDGE).status == "responder"
    assert classify(inst, base, better + NUDGE).status == "not a responder"
    assert classify(inst, base, worse).status == "worsened"
    assert classify(inst, base, worse + NUDGE).status == "worsened"
    assert classify(inst, base, worse - NUDGE).status == "not a responder"


# At a low baseline 30 % is less than the absolute MCID, which is never waived.
LOW_BASELINE = [
    ("nprs", 3.0, 2.0, 1.0),  # 1 point is 33 % of 3 but not clinically important
    ("nprs", 2.0, 1.0, 0.0),
    ("vas", 30.0, 20.0, 15.0),  # 10 mm is 33 % of 30, below 15 mm
    ("odi", 20.0, 14.0, 10.0),  # 6 points is 30 % of 20, below 10 points
]


@pytest.mark.parametrize(("instrument_id", "base", "short", "enough"), LOW_BASELINE)
def test_at_a_low_baseline_a_change_below_the_absolute_mcid_is_never_a_responder(
    instrument_id: str, base: float, short: float, enough: float
) -> None:
    inst = instruments.get(instrument_id)
    r = classify(inst, base, short)
    assert r.status == "not a responder"
    assert r.percent_change is not None
    assert r.percent_change <= -30
    assert classify(inst, base, enough).status == "responder"


def test_nprs_3_to_2_is_not_a_responder_and_3_to_1_is() -> None:
    nprs = instruments.get("nprs")
    assert classify(nprs, 3, 2).status == "not a responder"
    assert classify(nprs, 3, 1).status == "responder"


def test_the_ndi_needs_10_of_50_points_not_the_mcid_of_7_5() -> None:
    ndi = instruments.get("ndi")
    assert ndi.mdc is not None
    assert ndi.mdc.value == 20.4
    assert ndi.mcid is not None
    assert ndi.mcid.value == 15
    r = classify(ndi, 40, 24)  # 8 of 50 points: past the MCID, inside the MDC
    assert (r.status, r.mcid_reached, r.mdc_reached) == ("not a responder", True, False)
    assert classify(ndi, 40, 20).status == "responder"  # 10 of 50 points


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
    # 8 -> 6 is 2 points but 25 %: not yet; 8 -> 5 is 3 points and 37.5 %.
    assert first_meaningful_improvement(nprs, [8, 7, 7, 6, 5]) == 4
    assert first_meaningful_improvement(nprs, [6, 5, 4, 3]) == 2
    assert first_meaningful_improvement(nprs, [8, 7, 7]) is None
    assert first_meaningful_improvement(instruments.get("headache_days"), [20, 2]) is None
