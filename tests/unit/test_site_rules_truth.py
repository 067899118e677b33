"""Issue 13 site rules: never-needle places, organ and nerve cautions, override reasons,
bilateral pincer needling, electrical stimulation with a cardiac device, precautions at
each site, billable codes, and clinical wording everywhere a clinician reads a rule."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.billing import billing_data, check_billable, icd10_suggestions
from needlepoint.domain.catalogue import conditions, muscles
from needlepoint.domain.commands import JointSite, NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.enums import Approach, OverrideCode
from needlepoint.domain.errors import InvalidInput, SafetyRefusal
from needlepoint.domain.notes import check_sites
from needlepoint.domain.screening import evaluate, questionnaire
from needlepoint.domain.site_safety import (
    area_statement,
    decide,
    enforce,
    override_problem,
    review_sites,
    screening_statement,
    site_rules,
)
from needlepoint.domain.sources import sources
from tests.factories import site

CATALOGUE = muscles()
RULES = site_rules()
NO = {q.id: False for q in questionnaire().questions}
GOOD_OVERRIDE = {
    "override_reason": "Ultrasound-guided: pleura seen at 32 mm, needle kept at 15 mm",
    "override_code": "imaging_guided",
}

# An internal id on screen: a snake_case word, or an area id such as upper_limb:left.
INTERNAL_ID = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|\b[a-z_]+:[a-z_]+\b")


def sites(*specs: dict[str, Any]) -> list[NeedlingSiteIn]:
    return [NeedlingSiteIn.model_validate(s) for s in specs]


def screen(**yes: bool | Any) -> ScreeningAnswers:
    extra = {k: v for k, v in yes.items() if k in ("lymphoedema_areas", "local_exclusions")}
    answers = {k: bool(v) for k, v in yes.items() if k not in extra and k != "device_clearance"}
    return ScreeningAnswers(
        answers={**NO, **answers},
        device_clearance=yes.get("device_clearance"),
        **extra,
    )


def refused(note: list[NeedlingSiteIn], answers: ScreeningAnswers | None) -> set[tuple[str, int]]:
    decision = decide(note, review_sites(note, answers))
    return {(f.rule, f.site) for f in decision.refused if f.site is not None}


# --- never-needle places ----------------------------------------------------------------

PLACES = [(rule_id, term) for rule_id, p in RULES.never_needle.items() for term in p.terms]


@given(st.sampled_from(PLACES), st.sampled_from([str.lower, str.upper, str.title]))
def test_a_place_never_needled_is_refused_absolutely_with_its_source(
    place: tuple[str, str], case: Any
) -> None:
    rule_id, term = place
    name = case(term).replace(" ", "_")
    note = sites(site("upper_trapezius"), site(name, **GOOD_OVERRIDE))
    with pytest.raises(SafetyRefusal) as err:
        check_sites(note)
    (error,) = err.value.errors or []
    assert error["field"] == "sites.1.muscle_id"
    assert error["rule"] == rule_id
    assert error["action"] == "refuse"
    assert "asap_2007" in [s["id"] for s in error["sources"]]
    assert "never needled" in error["message"]
    assert not INTERNAL_ID.search(error["message"])


def test_the_four_never_needle_places_are_rules() -> None:
    assert set(RULES.never_needle) == {"nipple", "umbilicus", "external_genitalia", "eye_orbit"}


def test_catalogue_muscles_are_not_mistaken_for_never_needle_places() -> None:
    check_sites(sites(*(site(m.id, side="left") for m in CATALOGUE.muscles[:60])))
    check_sites(sites(*(site(m.id, side="right") for m in CATALOGUE.muscles[60:])))


# --- paired muscles and midline ----------------------------------------------------------


@given(st.sampled_from([m.id for m in CATALOGUE.muscles if m.laterality == "paired"]))
def test_a_paired_muscle_cannot_be_recorded_as_midline(muscle_id: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_sites(sites(site("soleus", side="right"), site(muscle_id, side="midline")))
    assert err.value.field == "sites.1.side"
    assert not INTERNAL_ID.search(err.value.detail)


# --- the muscle catalogue's cautions ------------------------------------------------------


def cautions(muscle_id: str) -> list[str]:
    m = CATALOGUE.get(muscle_id)
    assert m is not None
    return m.cautions


def test_levator_scapulae_has_the_lung_caution_of_its_neighbour() -> None:
    levator = CATALOGUE.get("levator_scapulae")
    assert levator is not None
    assert levator.thorax
    assert "lung_apex" in cautions("levator_scapulae")
    assert "lung_apex" in cautions("upper_trapezius")


def test_organ_and_spinal_canal_cautions_are_where_the_organs_are() -> None:
    for m in ("rectus_abdominis", "external_oblique", "internal_oblique", "transversus_abdominis"):
        assert "peritoneum" in cautions(m)
    for m in ("quadratus_lumborum", "iliocostalis_lumborum", "longissimus_thoracis"):
        assert "kidney" in cautions(m)
    for m in ("cervical_multifidus", "semispinalis_cervicis", "thoracic_multifidus"):
        assert "spinal_canal" in cautions(m)
    assert "umbilicus_near" in cautions("rectus_abdominis")
    assert "breast_tissue" in cautions("pectoralis_major")
    assert "genitalia_near" in cautions("adductor_longus")


# Muscles with no named nerve or vessel close enough to caution, by decision (audited).
NO_NAMED_STRUCTURE = {"anconeus", "vastus_lateralis", "vastus_intermedius"}


def test_every_muscle_but_the_audited_few_carries_a_caution() -> None:
    bare = {m.id for m in CATALOGUE.muscles if not m.cautions}
    assert bare == NO_NAMED_STRUCTURE


def test_every_caution_is_sourced_and_the_unverified_ones_are_marked() -> None:
    for caution_id, caution in RULES.cautions.items():
        assert caution.sources, caution_id
        for source_id in caution.sources:
            assert sources()[source_id].verified in (True, False, "partial")


# --- overrides ----------------------------------------------------------------------------


@given(st.text(max_size=29))
def test_an_override_shorter_than_30_characters_is_not_an_override(text: str) -> None:
    data = site("rhomboid_major", side="right", override_code="imaging_guided")
    if text.strip():
        data["override_reason"] = text
    assert override_problem(NeedlingSiteIn.model_validate(data)) is not None


@pytest.mark.parametrize(
    "reason",
    [
        "x" * 40,
        "ok ok ok ok ok ok ok ok ok ok ok ok",
        "override override override override",
        "1234567890 1234567890 1234567890 12",
    ],
)
def test_a_long_but_empty_override_is_refused(reason: str) -> None:
    data = site("rhomboid_major", side="right", override_code="imaging_guided")
    note = sites(site("rhomboid_major"), {**data, "override_reason": reason})
    assert ("bilateral_thorax", 1) in refused(note, None)


def test_an_override_needs_its_reason_code() -> None:
    data = site("rhomboid_major", side="right", override_reason=GOOD_OVERRIDE["override_reason"])
    note = sites(site("rhomboid_major"), data)
    with pytest.raises(SafetyRefusal) as err:
        enforce(note, None)
    assert [e["field"] for e in err.value.errors or []] == ["sites.1.override_code"]
    ok = sites(site("rhomboid_major"), {**data, "override_code": "technique_modified"})
    flags = enforce(ok, None)
    (over,) = [f for f in flags if f["action"] == "overridden"]
    assert over["override_code"] == "technique_modified"


def test_every_override_code_is_worded() -> None:
    assert set(RULES.override_reasons.codes) == set(OverrideCode)


# --- bilateral thorax: routine pincer needling versus dangerous combinations -------------

THORAX = [m.id for m in CATALOGUE.muscles if m.thorax]
EXEMPT = RULES.bilateral_exempt
APPROACHES = [None, *(a.value for a in Approach)]


def thorax_site(muscle_id: str, side: str, approach: str | None, depth: float) -> dict[str, Any]:
    data = site(muscle_id, side=side, depth_mm=depth, needle_length_mm=60)
    if approach is not None:
        data["approach"] = approach
    return data


@given(st.sampled_from(["left", "right"]), st.floats(min_value=5, max_value=18))
def test_bilateral_upper_trapezius_in_a_pincer_grip_needs_no_override(
    first: str, depth: float
) -> None:
    other = "right" if first == "left" else "left"
    note = sites(
        thorax_site("upper_trapezius", first, "pincer", depth),
        thorax_site("upper_trapezius", other, "pincer", depth),
    )
    assert not refused(note, None)
    flags = enforce(note, None)
    assert {f["site"] for f in flags if f["rule"] == "thorax_pneumothorax"} == {0, 1}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(THORAX),
            st.sampled_from(["left", "right"]),
            st.sampled_from(APPROACHES),
            st.floats(min_value=5, max_value=40),
        ),
        min_size=2,
        max_size=6,
    )
)
def test_both_sides_of_the_thorax_are_refused_unless_every_site_is_a_pincer_grip(
    chosen: list[tuple[str, str, str | None, float]],
) -> None:
    note = sites(*(thorax_site(*c) for c in chosen))
    routine = all(m in EXEMPT.muscles and a in EXEMPT.approaches for m, _, a, _ in chosen)
    first = chosen[0][1]
    expected = set()
    if not routine and len({s for _, s, _, _ in chosen}) == 2:
        expected = {("bilateral_thorax", i) for i, (_, s, _, _) in enumerate(chosen) if s != first}
    got = {r for r in refused(note, None) if r[0] == "bilateral_thorax"}
    assert got == expected


def test_bilateral_upper_trapezius_needled_perpendicular_is_still_refused() -> None:
    for approach in ("perpendicular", "tangential", None):
        note = sites(
            thorax_site("upper_trapezius", "left", "pincer", 15),
            thorax_site("upper_trapezius", "right", approach, 15),
        )
        assert ("bilateral_thorax", 1) in refused(note, None)
    with_rhomboid = sites(
        thorax_site("upper_trapezius", "left", "pincer", 15),
        thorax_site("upper_trapezius", "right", "pincer", 15),
        thorax_site("rhomboid_major", "left", "tangential", 15),
    )
    assert ("bilateral_thorax", 1) in refused(with_rhomboid, None)


# --- electrical stimulation with an implanted device -------------------------------------

NEAR = [m.id for m in CATALOGUE.muscles if m.thorax or m.region in RULES.estim_device_regions]
FAR = [m.id for m in CATALOGUE.muscles if m.id not in NEAR]
CLEARANCE = {
    "cleared_by": "Dr A. Heart, device clinic",
    "cleared_on": date(2026, 1, 10),
    "document": "Letter of 10 January 2026 in the chart",
}


@given(st.sampled_from(NEAR))
def test_estim_near_the_chest_or_arm_with_a_device_is_refused_unless_cleared(m: str) -> None:
    note = sites(site(m, electrical_stimulation=True))
    device = screen(implanted_electrical_device=True)
    assert ("estim_implanted_device", 0) in refused(note, device)
    # a written override does not clear it: only a documented clearance does
    overriding = sites(site(m, electrical_stimulation=True, **GOOD_OVERRIDE))
    assert ("estim_implanted_device", 0) in refused(overriding, device)
    cleared = screen(implanted_electrical_device=True, device_clearance=CLEARANCE)
    assert not {r for r in refused(note, cleared) if r[0].startswith("estim")}
    flags = enforce(sites(site(m, electrical_stimulation=True, **GOOD_OVERRIDE)), cleared)
    (f,) = [f for f in flags if f["rule"] == "estim_device_cleared"]
    assert "Dr A. Heart" in f["message"]
    # needling the same muscle without stimulation is not refused for the device
    plain = sites(site(m))
    assert not {r for r in refused(plain, device) if r[0].startswith("estim")}


@given(st.sampled_from(FAR))
def test_estim_away_from_the_chest_and_arms_is_a_precaution(m: str) -> None:
    note = sites(site(m, electrical_stimulation=True))
    flags = enforce(note, screen(implanted_electrical_device=True))
    assert [f["action"] for f in flags if f["rule"].startswith("estim")] == ["warn"]


def test_a_clearance_without_a_device_is_refused() -> None:
    with pytest.raises(ValueError, match="no implanted electrical device"):
        screen(device_clearance=CLEARANCE)


# --- precautions at the point of needling ---------------------------------------------


@given(st.lists(st.sampled_from(FAR), min_size=1, max_size=5))
def test_anticoagulation_is_flagged_at_every_site_with_what_to_do(chosen: list[str]) -> None:
    note = sites(*(site(m) for m in chosen))
    flags = enforce(note, screen(anticoagulants=True))
    at = {f["site"] for f in flags if f["rule"] == "anticoagulants"}
    assert at == set(range(len(chosen)))
    message = next(f["message"] for f in flags if f["rule"] == "anticoagulants")
    assert message.startswith("Anticoagulant")
    assert "press firmly" in message


# --- wording: no internal ids where clinicians read ---------------------------------------


def test_every_rule_caution_and_question_is_worded_without_internal_ids() -> None:
    texts = [
        *(r.text for r in RULES.session_rules.values()),
        *(c.text for c in RULES.cautions.values()),
        *(d.text for d in RULES.depth_caveats.values()),
        *(f"{p.name}: {p.text}" for p in RULES.never_needle.values()),
        *RULES.override_reasons.codes.values(),
        *(area_statement(r, a) for r in RULES.area_exclusions for a in RULES.area_labels),
    ]
    for q in questionnaire().questions:
        assert q.id in RULES.screening_findings, f"{q.id} has no clinical wording"
        texts.append(screening_statement(q.id, None, q.text))
    offenders = [t for t in texts if INTERNAL_ID.search(t)]
    assert not offenders


def test_lymphoedema_is_stated_with_the_limb() -> None:
    answers = screen(lymphoedema=True, lymphoedema_areas=["upper_limb:left"])
    statement = screening_statement("lymphoedema", answers, "")
    assert statement == "Lymphoedema of the left arm: never needle this limb."
    (reason,) = evaluate(answers).reasons
    assert reason.message == statement
    with pytest.raises(SafetyRefusal) as err:
        enforce(sites(site("biceps_brachii", side="left")), answers)
    (error,) = err.value.errors or []
    assert error["message"].startswith("Lymphoedema of the left arm: never needle this limb.")


AREAS = list(RULES.area_labels)
ALL_YES_BUT_ABSOLUTE = {q.id: q.category != "absolute" for q in questionnaire().questions}
JOINTS = list(get_args(JointSite))


@given(
    st.lists(
        st.tuples(
            st.sampled_from([m.id for m in CATALOGUE.muscles]),
            st.sampled_from(["left", "right"]),
            st.booleans(),
            st.sampled_from(APPROACHES),
            st.floats(min_value=3, max_value=40),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sets(st.sampled_from(AREAS), min_size=1, max_size=3),
    st.sampled_from(["infected_tissue", "inflamed_tissue", "varicose_veins"]),
    st.sets(st.sampled_from(JOINTS), min_size=1, max_size=3),
)
def test_no_refusal_or_warning_shows_an_internal_id(
    chosen: list[tuple[str, str, bool, str | None, float]],
    areas: set[str],
    local: str,
    joints: set[str],
) -> None:
    answers = ScreeningAnswers(
        answers=ALL_YES_BUT_ABSOLUTE,
        lymphoedema_areas=sorted(areas),
        local_exclusions=[{"area": a, "reason": local} for a in sorted(areas)],
        surgery_areas=sorted(areas),
        implant_areas=sorted(areas),
        prosthetic_joints=sorted(joints),
        breast_implant_sides=["left", "right"],
        notes={"allergy_metal_latex": "Nickel", "current_medication": "Apixaban 5 mg"},
    )
    data = []
    for m, side, estim, approach, depth in chosen:
        d = site(m, side=side, electrical_stimulation=estim, depth_mm=depth, needle_length_mm=60)
        if approach:
            d["approach"] = approach
        data.append(d)
    note = sites(*data)
    for f in review_sites(note, answers):
        assert not INTERNAL_ID.search(f.message), f.message
    problems: list[str] = []
    try:
        enforce(note, answers)
    except SafetyRefusal as err:
        problems = [err.detail, *(e["message"] for e in err.errors or [])]
    for message in problems:
        assert not INTERNAL_ID.search(message), message
    for r in evaluate(answers).reasons:
        assert not INTERNAL_ID.search(r.message), r.message


# --- billing codes ------------------------------------------------------------------------


def test_no_category_header_is_offered_and_m79_1_is_refused() -> None:
    data = billing_data().icd10cm
    offered = {c.code for cond in conditions().conditions for c in icd10_suggestions(cond.id)}
    assert "M79.1" not in offered
    assert not offered & set(data.headers)
    assert {"M79.10", "M79.11", "M79.12", "M79.18"} <= offered
    with pytest.raises(InvalidInput) as err:
        check_billable("M79.1")
    assert err.value.field == "icd10_code"
    assert "M79.18" in err.value.detail
    check_billable("M79.18")


def test_every_condition_code_is_verified_against_the_release_and_offered() -> None:
    for cond in conditions().conditions:
        assert cond.icd10.verified is True
        assert cond.icd10.code in {c.code for c in icd10_suggestions(cond.id)}
        assert cond.icd10.code not in billing_data().icd10cm.headers
    assert sources()["icd10cm_2026"].verified is True


# --- the clinical safety guide -------------------------------------------------------------


def test_the_clinical_safety_guide_is_regenerated_from_the_data() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "scripts" / "clinical_safety_doc.py"
    spec = importlib.util.spec_from_file_location("clinical_safety_doc", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = module.DOC.read_text("utf-8")
    assert module.render(current) == current, (
        "docs/clinical-safety.md is out of step: run scripts/clinical_safety_doc.py"
    )


def test_a_device_refusal_says_what_lifts_it() -> None:
    note = sites(site("pectoralis_major", electrical_stimulation=True))
    with pytest.raises(SafetyRefusal) as err:
        enforce(note, screen(implanted_electrical_device=True))
    (error,) = err.value.errors or []
    assert "record the clearance" in error["message"]
    assert "cannot be overridden" not in error["message"]
