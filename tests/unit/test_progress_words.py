"""The progress page's pure parts: a plot's value axis in round steps that hold every
value, and evidence that cites only sources that exist."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from needlepoint.domain.benefits import Evidence, benefits
from needlepoint.domain.sources import check_cited
from needlepoint.web.ui.progress import nice_axis

values = st.floats(-1000, 1000, allow_nan=False)


@given(values, values, st.booleans())
def test_the_axis_holds_both_ends_in_round_steps(a: float, b: float, whole: bool) -> None:
    lo, hi = min(a, b), max(a, b)
    start, end, step = nice_axis(lo, hi, whole=whole)
    assert start <= lo
    assert end >= hi
    assert step > 0
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert round(mantissa, 9) in ((1, 2, 5) if whole else (1, 2, 2.5, 5))
    assert (end - start) / step <= 12  # a handful of ticks, not hundreds
    if whole:
        assert step >= 1
        assert float(step).is_integer()


def test_a_count_of_muscles_gets_whole_ticks() -> None:
    assert nice_axis(0, 6, whole=True) == (0, 6, 2)
    assert nice_axis(0, 3, whole=True) == (0, 3, 1)
    assert nice_axis(0, 10, whole=True) == (0, 10, 2)


def test_evidence_cites_its_sources_or_says_none_was_found() -> None:
    with pytest.raises(ValidationError):
        Evidence(level="none", note="n", source_ids=[])  # neither
    with pytest.raises(ValidationError):
        Evidence(level="x", note="n", source_ids=["gattie_2017"], none_found="none")  # both
    with pytest.raises(ValueError, match="unknown sources"):
        check_cited("evidence.yaml: benefit x", ["reference_5_not_found"])


def test_every_benefit_evidence_resolves_to_a_real_citation() -> None:
    for b in benefits():
        text = b.evidence.source
        assert text
        assert "REFERENCE" not in text
        assert "not found)" not in text
        if b.evidence.source_ids:
            assert b.evidence.verified == all(
                s
                in (
                    "sanchez_infante_2021",
                    "navarro_santana_2020",
                    "gattie_2017",
                    "fernandez_de_las_penas_2021",
                )
                for s in b.evidence.source_ids
            )
        else:
            assert not b.evidence.verified


def test_every_pooled_effect_cites_a_source_that_exists() -> None:
    from needlepoint.analytics.evidence import pooled_effects
    from needlepoint.domain.sources import sources

    cited = [p for e in pooled_effects().values() for p in e.pooled]
    assert cited
    for p in cited:
        assert p.source_id in sources()
        assert p.verified == (sources()[p.source_id].verified is True)
