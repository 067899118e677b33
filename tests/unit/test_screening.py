"""Appropriateness screening: the decision follows the questionnaire's rules, every
reason names its rule and source, and no positive answer ever makes it less strict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.commands import ScreeningAnswers
from needlepoint.domain.enums import ScreeningDecision
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.screening import STRICTNESS, check_acknowledged, evaluate, questionnaire

QUESTIONS = questionnaire().questions
ABSOLUTE = [q.id for q in QUESTIONS if q.category == "absolute"]
PRECAUTIONS = [q.id for q in QUESTIONS if q.category == "precaution"]
DETAILS = {q.id: q.detail for q in QUESTIONS}
AREA_EXAMPLES = {
    "surgery_areas": ["lower_limb:left"],
    "prosthetic_joints": ["knee:left"],
    "breast_implant_sides": ["left", "right"],
    "implant_areas": ["upper_limb:right"],
}


def screen(**yes: bool) -> ScreeningAnswers:
    """A questionnaire with the given answers yes, the rest no, and the details a yes needs."""
    answers = {q.id: False for q in QUESTIONS}
    answers.update(yes)
    extra: dict[str, object] = {"notes": {}}
    for qid, value in answers.items():
        if not value:
            continue
        if DETAILS[qid] == "reason":
            extra["notes"][qid] = "Clinician's reason."  # type: ignore[index]
        elif DETAILS[qid] == "lymphoedema_areas":
            extra["lymphoedema_areas"] = ["upper_limb:left"]
        elif DETAILS[qid] == "local_exclusions":
            extra["local_exclusions"] = [{"area": "lower_limb:right", "reason": "infected_tissue"}]
        elif DETAILS[qid] in AREA_EXAMPLES:
            extra[str(DETAILS[qid])] = AREA_EXAMPLES[str(DETAILS[qid])]
    return ScreeningAnswers.model_validate({"answers": answers, **extra})


def test_all_no_is_clear() -> None:
    result = evaluate(screen())
    assert result.decision is ScreeningDecision.CLEAR
    assert result.reasons == ()


def test_needle_phobia_is_an_absolute_contraindication() -> None:
    result = evaluate(screen(needle_phobia=True))
    assert result.decision is ScreeningDecision.CONTRAINDICATED
    (reason,) = result.reasons
    assert reason.rule == "needle_phobia"
    assert reason.action == "absolute"
    assert "mcevoy_2012" in reason.source_ids


def test_anticoagulants_are_a_precaution_not_a_contraindication() -> None:
    """Pain Res Manag 2022 (REFERENCE §1): a precaution, not an absolute contraindication."""
    result = evaluate(screen(anticoagulants=True))
    assert result.decision is ScreeningDecision.PRECAUTIONS
    assert result.to_acknowledge == ["anticoagulants"]
    assert "pain_res_manag_2022" in result.reasons[0].source_ids


def test_lymphoedema_limits_the_sites_but_does_not_stop_needling_elsewhere() -> None:
    result = evaluate(screen(lymphoedema=True))
    assert result.decision is ScreeningDecision.PRECAUTIONS
    assert result.reasons[0].action == "site"


def test_every_reason_shows_its_sources_and_a_caveat_when_unverified() -> None:
    shown = evaluate(screen(needle_phobia=True, anticoagulants=True)).reasons
    as_dicts = {r.rule: r.as_dict() for r in shown}
    assert as_dicts["needle_phobia"]["caveat"]  # McEvoy is a secondary source (⚠️)
    assert "caveat" not in as_dicts["anticoagulants"]  # a verified source
    for shown_reason in as_dicts.values():
        assert shown_reason["sources"]
        assert all("citation" in s for s in shown_reason["sources"])


def test_an_unanswered_question_is_refused_by_name() -> None:
    answers = {q.id: False for q in QUESTIONS}
    del answers["pregnancy"]
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=answers))
    assert err.value.field == "answers.pregnancy"


def test_an_unknown_question_is_refused_by_name() -> None:
    answers = {q.id: False for q in QUESTIONS} | {"astrology": True}
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=answers))
    assert err.value.field == "answers.astrology"


def test_a_yes_needs_its_details() -> None:
    answers = {q.id: False for q in QUESTIONS}
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers={**answers, "lymphoedema": True}))
    assert err.value.field == "lymphoedema_areas"
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers={**answers, "inappropriate_other": True}))
    assert err.value.field == "notes.inappropriate_other"
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=answers, lymphoedema_areas=["upper_limb:left"]))
    assert err.value.field == "lymphoedema_areas"


def test_every_missing_answer_and_detail_is_named_at_once() -> None:
    """A clinician's review: the missing reason was named, then on the next try the
    missing lymphoedema areas. All are named in one answer now, in questionnaire order."""
    answers = {q.id: False for q in QUESTIONS}
    del answers["pregnancy"]
    answers |= {"inappropriate_other": True, "lymphoedema": True}
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=answers))
    named = [e["field"] for e in err.value.errors or []]
    assert set(named) == {"answers.pregnancy", "notes.inappropriate_other", "lymphoedema_areas"}
    assert err.value.field == named[0]
    order = [q.id for q in QUESTIONS]
    keys = [f.split(".")[-1].removesuffix("_areas") for f in named]
    assert keys == sorted(keys, key=order.index)


@given(st.sets(st.sampled_from([q.id for q in QUESTIONS]), min_size=1))
def test_each_unanswered_question_is_named(left_out: set[str]) -> None:
    answers = {q.id: False for q in QUESTIONS if q.id not in left_out}
    with pytest.raises(InvalidInput) as err:
        evaluate(ScreeningAnswers(answers=answers))
    assert {e["field"] for e in err.value.errors or []} == {f"answers.{q}" for q in left_out}


def test_precautions_must_be_acknowledged_and_nothing_else() -> None:
    result = evaluate(screen(diabetes=True, epilepsy=True))
    with pytest.raises(InvalidInput) as err:
        check_acknowledged(result, ["diabetes"])
    assert "Epilepsy: Treat lying down" in err.value.detail
    assert "epilepsy" in err.value.detail.lower()
    assert "diabetes" not in err.value.detail.lower()
    # each source the rule cites is named, and marked when not verified against its text
    from needlepoint.domain.sources import sources

    cited = [sources()[i] for q in QUESTIONS if q.id == "epilepsy" for i in q.sources]
    assert cited
    for source in cited:
        marked = source.citation + ("" if source.verified is True else " (unverified)")
        assert marked in err.value.detail
    check_acknowledged(result, ["diabetes", "epilepsy"])
    with pytest.raises(InvalidInput):
        check_acknowledged(result, ["diabetes", "epilepsy", "pregnancy"])


def test_a_contraindicated_screening_needs_no_acknowledgement() -> None:
    check_acknowledged(evaluate(screen(needle_phobia=True, diabetes=True)), [])


yes_sets = st.sets(st.sampled_from([q.id for q in QUESTIONS]))


@given(yes_sets, st.sampled_from(ABSOLUTE))
def test_any_absolute_contraindication_gives_contraindicated_whatever_else_is_true(
    others: set[str], absolute: str
) -> None:
    answers = dict.fromkeys(others | {absolute}, True)
    assert evaluate(screen(**answers)).decision is ScreeningDecision.CONTRAINDICATED


@given(yes_sets, st.sampled_from([q.id for q in QUESTIONS]))
def test_adding_a_positive_answer_never_makes_the_decision_less_strict(
    before: set[str], added: str
) -> None:
    first = evaluate(screen(**dict.fromkeys(before, True))).decision
    then = evaluate(screen(**dict.fromkeys(before | {added}, True))).decision
    assert STRICTNESS[then] >= STRICTNESS[first]


@given(yes_sets)
def test_the_decision_is_clear_exactly_when_nothing_is_answered_yes(yes: set[str]) -> None:
    decision = evaluate(screen(**dict.fromkeys(yes, True))).decision
    assert (decision is ScreeningDecision.CLEAR) == (not yes)
    if yes and not yes & set(ABSOLUTE):
        assert decision is ScreeningDecision.PRECAUTIONS
