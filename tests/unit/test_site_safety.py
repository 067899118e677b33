"""Site-level safety: refusals name exactly the sites they concern; overrides need a
written reason; absolute exclusions cannot be overridden; the thorax is flagged."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.catalogue import muscles
from needlepoint.domain.commands import NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.enums import Side
from needlepoint.domain.errors import SafetyRefusal
from needlepoint.domain.screening import questionnaire
from needlepoint.domain.site_safety import decide, enforce, review_sites, site_areas
from tests.factories import site

CATALOGUE = muscles()
NO = {q.id: False for q in questionnaire().questions}


def sites(*specs: dict[str, Any]) -> list[NeedlingSiteIn]:
    return [NeedlingSiteIn.model_validate(s) for s in specs]


def lymphoedema(*areas: str) -> ScreeningAnswers:
    return ScreeningAnswers(answers={**NO, "lymphoedema": True}, lymphoedema_areas=list(areas))


RESOLVED = {
    "override_reason": "Cellulitis resolved after antibiotics, GP reviewed the leg",
    "override_code": "condition_resolved",
}
IMAGING = {
    "override_reason": "Ultrasound-guided: pleura seen at 32 mm, needle kept at 15 mm",
    "override_code": "imaging_guided",
}


def has(flags: list[dict[str, Any]], rule: str, action: str, site_index: int | None) -> bool:
    return any(
        f["rule"] == rule and f["action"] == action and f["site"] == site_index for f in flags
    )


def refused_sites(note: list[NeedlingSiteIn], screen: ScreeningAnswers | None) -> set[int]:
    return {f.site for f in decide(note, review_sites(note, screen)).refused if f.site is not None}


def test_a_limb_with_lymphoedema_is_refused_at_that_site_only() -> None:
    note = sites(
        site("extensor_carpi_radialis_brevis", side="left"),
        site("extensor_carpi_radialis_brevis", side="right"),
        site("upper_trapezius", side="left"),
    )
    with pytest.raises(SafetyRefusal) as err:
        enforce(note, lymphoedema("upper_limb:left"))
    assert [e["field"] for e in err.value.errors or []] == ["sites.0.muscle_id"]
    assert err.value.errors
    assert err.value.errors[0]["rule"] == "lymphoedema"


def test_lymphoedema_cannot_be_overridden() -> None:
    note = sites(site("brachioradialis", side="left", override_reason="Patient insists"))
    with pytest.raises(SafetyRefusal):
        enforce(note, lymphoedema("upper_limb:left"))


def test_infected_tissue_is_refused_unless_a_written_reason_overrides_it() -> None:
    screen = ScreeningAnswers(
        answers={**NO, "local_tissue_problem": True},
        local_exclusions=[{"area": "lower_limb:right", "reason": "infected_tissue"}],
    )
    with pytest.raises(SafetyRefusal) as err:
        enforce(sites(site("soleus", side="right")), screen)
    assert err.value.errors
    assert err.value.errors[0]["field"] == "sites.0.override_reason"
    flags = enforce(sites(site("soleus", side="right", **RESOLVED)), screen)
    assert has(flags, "infected_tissue", "overridden", 0)


def test_needling_both_sides_of_the_thorax_needs_a_written_override() -> None:
    both = sites(site("rhomboid_major", side="left"), site("rhomboid_major", side="right"))
    with pytest.raises(SafetyRefusal) as err:
        enforce(both, None)
    assert [e["field"] for e in err.value.errors or []] == ["sites.1.override_reason"]
    assert err.value.errors
    assert "sa_board_5_1" in [s["id"] for s in err.value.errors[0]["sources"]]
    overridden = sites(
        site("rhomboid_major", side="left"),
        site("rhomboid_major", side="right", **IMAGING),
    )
    assert has(enforce(overridden, None), "bilateral_thorax", "overridden", 1)


def test_thorax_muscles_carry_the_pneumothorax_flag() -> None:
    flags = enforce(sites(site("pectoralis_major"), site("gluteus_medius")), None)
    assert has(flags, "thorax_pneumothorax", "warn", 0)
    assert not [f for f in flags if f["site"] == 1 and f["rule"] == "thorax_pneumothorax"]


def test_rhomboid_deeper_than_its_published_safe_depth_is_refused_unless_overridden() -> None:
    note = sites(site("rhomboid_major", depth_mm=25))
    found = [f for f in review_sites(note, None) if f.rule == "depth_rhomboid_major"]
    assert found
    assert found[0].action == "refuse_override"
    assert "valera_calero" in found[0].source_ids
    with pytest.raises(SafetyRefusal) as err:
        enforce(note, None)
    assert [e["field"] for e in err.value.errors or []] == ["sites.0.override_reason"]
    assert has(
        enforce(sites(site("rhomboid_major", depth_mm=25, **IMAGING)), None),
        "depth_rhomboid_major",
        "overridden",
        0,
    )
    shallow = sites(site("rhomboid_major", depth_mm=15))
    assert not [f for f in review_sites(shallow, None) if f.rule.startswith("depth_")]


def test_electrical_stimulation_with_an_implanted_device_is_flagged() -> None:
    screen = ScreeningAnswers(answers={**NO, "implanted_electrical_device": True})
    estim = site("gluteus_medius", electrical_stimulation=True)
    flags = enforce(sites(estim, site("piriformis")), screen)
    assert has(flags, "estim_implanted_device_elsewhere", "warn", 0)
    assert not [f for f in flags if f["rule"].startswith("estim_") and f["site"] == 1]
    assert not [f for f in enforce(sites(estim), None) if f["rule"].startswith("estim_")]


def test_a_midline_site_lies_on_both_sides() -> None:
    multifidus = CATALOGUE.get("lumbar_multifidus")
    assert multifidus is not None
    assert site_areas(multifidus, Side.MIDLINE) == {"trunk:left", "trunk:right"}


# Thorax muscles are left out: both sides of the thorax is a rule of its own (tested below).
LIMB_MUSCLES = [
    m.id for m in CATALOGUE.muscles if m.limb in ("upper_limb", "lower_limb") and not m.thorax
]
AREAS = ["upper_limb:left", "upper_limb:right", "lower_limb:left", "lower_limb:right"]


@given(
    st.lists(
        st.tuples(st.sampled_from(LIMB_MUSCLES), st.sampled_from(["left", "right"])),
        min_size=1,
        max_size=8,
    ),
    st.sets(st.sampled_from(AREAS), min_size=1),
)
def test_site_checks_refuse_exactly_the_sites_in_excluded_areas(
    chosen: list[tuple[str, str]], excluded: set[str]
) -> None:
    note = sites(*(site(m, side=s) for m, s in chosen))
    expected = {
        i
        for i, (m, s) in enumerate(chosen)
        if f"{CATALOGUE.get(m).limb}:{s}" in excluded  # type: ignore[union-attr]
    }
    assert refused_sites(note, lymphoedema(*sorted(excluded))) == expected


THORAX = [m.id for m in CATALOGUE.muscles if m.thorax]


@given(st.lists(st.sampled_from(["left", "right"]), min_size=1, max_size=6))
def test_only_the_second_side_of_the_thorax_is_refused(sides: list[str]) -> None:
    note = sites(*(site(THORAX[i % len(THORAX)], side=s) for i, s in enumerate(sides)))
    expected = {i for i, s in enumerate(sides) if s != sides[0]}
    assert refused_sites(note, None) == expected


def test_a_refusal_message_says_what_to_do_and_cites_its_source() -> None:
    both = sites(site("rhomboid_major", side="left"), site("rhomboid_major", side="right"))
    with pytest.raises(SafetyRefusal) as err:
        enforce(both, None)
    (error,) = err.value.errors or []
    assert "reason code" in error["message"]
    assert "at least 30 characters" in error["message"]
    assert "South African board notice" in error["message"]
    with pytest.raises(SafetyRefusal) as err:
        enforce(sites(site("brachioradialis", side="left")), lymphoedema("upper_limb:left"))
    assert "cannot be overridden" in (err.value.errors or [{}])[0]["message"]
