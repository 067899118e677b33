"""The screening wizard: answer every question asked of this patient (step 1; the age
comes from the date of birth, and pregnancy is not asked of male patients), review the
decision with its reasons and sources, acknowledge each precaution and say why any
earlier contraindication no longer applies (step 2), record it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.screening import patient_facts, record_screening
from needlepoint.domain import screening as rules
from needlepoint.domain.commands import (
    Area,
    BodySide,
    ClearanceReason,
    JointSite,
    LocalExclusion,
    RecordScreening,
    ScreeningAnswers,
)
from needlepoint.domain.errors import DomainError
from needlepoint.queries.patients import get_patient
from needlepoint.queries.screening import CLEARANCE_WORDS, DECISION_WORDS, patient_screenings
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    clinic_zone,
    field_errors,
    many,
    posted_form,
    refusal_page,
    render,
    see_other,
    signed_in,
    text,
    to_login,
)
from needlepoint.web.ui.forms import (
    today as clinic_today,
)

router = APIRouter(include_in_schema=False)
AREAS = list(get_args(Area))
REASONS = list(get_args(LocalExclusion.model_fields["reason"].annotation))
GROUPS = [
    ("absolute", "Step 1a · Absolute contraindications (a yes stops needling)"),
    ("site", "Step 1b · Areas never to needle, surgery and implants"),
    ("precaution", "Step 1c · Precautions (each must be acknowledged)"),
]
CHOICES: dict[str, tuple[str, list[str]]] = {
    "lymphoedema_areas": ("lymph", AREAS),
    "surgery_areas": ("surgery", AREAS),
    "prosthetic_joints": ("joint", list(get_args(JointSite))),
    "breast_implant_sides": ("breast", list(get_args(BodySide))),
    "implant_areas": ("implant", AREAS),
}
"""Area details answered with checkboxes: the form field and its choices."""
CLEARANCE_REASONS = list(get_args(ClearanceReason))
CATEGORIES = [cat for cat, _ in GROUPS]


def form_from(answers: dict[str, Any]) -> dict[str, Any]:
    """A stored screening's answers as the form's fields: a re-screening starts from them."""
    form: dict[str, Any] = {}
    for qid, yes in (answers.get("answers") or {}).items():
        form[f"q-{qid}"] = "yes" if yes else "no"
    for qid, note in (answers.get("notes") or {}).items():
        form[f"note-{qid}"] = note
    for i, lx in enumerate((answers.get("local_exclusions") or [])[:3]):
        form[f"lx-{i}-area"] = lx.get("area", "")
        form[f"lx-{i}-reason"] = lx.get("reason", "")
    for detail, (name, _) in CHOICES.items():
        form[name] = list(answers.get(detail) or [])
    return form


def _section(data: dict[str, Any], category: str, asked: list[Any]) -> dict[str, Any]:
    """One section's answers (with the details its questions carry), to compare with the
    last screening's."""
    ids = [q.id for q in asked if q.category == category]
    details = {q.detail for q in asked if q.category == category}
    out: dict[str, Any] = {
        "answers": {k: v for k, v in (data.get("answers") or {}).items() if k in ids},
        "notes": {k: v for k, v in (data.get("notes") or {}).items() if k in ids and v},
    }
    for detail in CHOICES:
        if detail in details:
            out[detail] = sorted(data.get(detail) or [])
    if "local_exclusions" in details:
        out["local_exclusions"] = sorted(
            (x.get("area", ""), x.get("reason", "")) for x in data.get("local_exclusions") or []
        )
    return out


def unconfirmed_sections(
    data: dict[str, Any], last: dict[str, Any], form: dict[str, Any], asked: list[Any]
) -> Errors:
    """A re-screening starts from the last answers: a section left exactly as it was must be
    confirmed ("nothing has changed") with the patient, or it is not accepted."""
    errors: Errors = {}
    for cat in CATEGORIES:
        if not any(q.category == cat for q in asked):
            continue
        same = _section(data, cat, asked) == _section(last, cat, asked)
        if same and text(form, f"unchanged-{cat}") != "yes":
            errors[f"unchanged.{cat}"] = [
                'Ask the patient again: tick "nothing has changed" for this section, or '
                "change the answers that changed."
            ]
    return errors


def _answers(form: dict[str, Any]) -> dict[str, Any]:
    q = rules.questionnaire()
    answers = {}
    for question in q.questions:
        value = text(form, f"q-{question.id}")
        if value in ("yes", "no"):
            answers[question.id] = value == "yes"
    exclusions = [
        {"area": text(form, f"lx-{i}-area"), "reason": text(form, f"lx-{i}-reason")}
        for i in range(3)
        if text(form, f"lx-{i}-area")
    ]
    notes = {
        question.id: text(form, f"note-{question.id}")
        for question in q.questions
        if text(form, f"note-{question.id}")
    }
    data: dict[str, Any] = {
        "answers": answers,
        "local_exclusions": exclusions,
        "notes": notes,
    }
    # A detail counts only under a yes: a re-screening that turns a yes into a no (the areas
    # of the last one still ticked) does not keep the areas.
    said_yes = {q.detail for q in q.questions if answers.get(q.id)}
    for detail, (name, _) in CHOICES.items():
        data[detail] = many(form, name) if detail in said_yes else []
    if "local_exclusions" not in said_yes:
        data["local_exclusions"] = []
    return data


def _clearance(form: dict[str, Any]) -> dict[str, str] | None:
    reason = text(form, "clearance-reason")
    explanation = text(form, "clearance-explanation")
    if not reason and not explanation:
        return None
    return {"reason": reason, "explanation": explanation}


def _page(
    request: Request,
    ctx: RequestContext,
    patient_id: UUID,
    form: dict[str, Any],
    errors: Errors,
    result: rules.ScreeningResult | None = None,
    status: int = 200,
) -> Response:
    with ctx.reader() as r:
        patient = get_patient(r, patient_id)
        earlier = patient_screenings(r, patient_id)
    facts = patient_facts(patient)
    today = clinic_today(clinic_zone(ctx))
    last = earlier[0] if earlier else None  # the newest (a second ago counts too)
    if not form and last is not None:
        form = form_from(last.answers)
    # The precise time, not `now()` (whole seconds): a screening recorded earlier in this
    # same second is the one this review replaces, and must not be missed.
    at = datetime.now(UTC)
    cleared = rules.cleared_findings(rules.latest_before(earlier, at), result) if result else {}
    return render(
        request,
        "screening.html",
        status,
        patient=patient,
        age=facts.age_on(today),
        adult_age=rules.questionnaire().adult_age_years,
        questions=rules.questionnaire().asked(facts),
        groups=GROUPS,
        form=form,
        errors=errors,
        result=result,
        decision_words=DECISION_WORDS,
        reasons=[f.as_dict() for f in result.reasons] if result else [],
        areas=AREAS,
        area_words=rules.area_words,
        choices=CHOICES,
        chosen={detail: many(form, name) for detail, (name, _) in CHOICES.items()},
        exclusion_reasons=REASONS,
        acknowledged=many(form, "ack"),
        cleared=cleared,
        clearance_reasons=CLEARANCE_REASONS,
        clearance_words=CLEARANCE_WORDS,
        last=last,
    )


@router.get("/patients/{patient_id}/screening", response_model=None)
def screening_form(request: Request, patient_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        return _page(request, ctx, patient_id, {}, {})
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/patients/{patient_id}/screening", response_model=None)
async def screening_post(request: Request, patient_id: UUID) -> Response:
    return await posted_form(request, _post, patient_id)


def _post(
    request: Request, ctx: RequestContext, patient_id: UUID, form: dict[str, Any]
) -> Response:
    intent = text(form, "intent")
    if intent.startswith("none-"):  # without JavaScript: answer a section "no" in one tap
        form = dict(form)
        for q in rules.questionnaire().questions:
            if q.category == intent[5:]:
                form[f"q-{q.id}"] = "no"
        return _page(request, ctx, patient_id, form, {})
    data = _answers(form)
    try:
        with ctx.reader() as r:
            facts = patient_facts(get_patient(r, patient_id))
            earlier = patient_screenings(r, patient_id)  # newest first
            last = earlier[0] if earlier else None
        result = rules.evaluate(
            ScreeningAnswers.model_validate(data), facts, clinic_today(clinic_zone(ctx))
        )
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, patient_id, form, field_errors(err), status=400)
    if last is not None:
        asked = rules.questionnaire().asked(facts)
        unconfirmed = unconfirmed_sections(data, last.answers, form, asked)
        if unconfirmed:
            return _page(request, ctx, patient_id, form, unconfirmed, status=400)
    if intent != "record":
        return _page(request, ctx, patient_id, form, {}, result)
    try:
        record_screening(
            ctx.uow(),
            ctx.actor,
            RecordScreening.model_validate(
                {
                    "patient_id": patient_id,
                    "acknowledged_precautions": many(form, "ack"),
                    "clearance": _clearance(form),
                    **data,
                }
            ),
        )
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, patient_id, form, field_errors(err), result, status=400)
    return see_other(f"/patients/{patient_id}")
