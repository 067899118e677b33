"""Informed consent: the current template shown in full, the signer, the method and the
signature captured on screen (or a typed name, or a witness)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.consent import record_consent
from needlepoint.domain.commands import RecordConsent
from needlepoint.domain.consent import ConsentTemplate, templates
from needlepoint.domain.enums import ConsentMethod
from needlepoint.domain.errors import DomainError
from needlepoint.domain.screening import age_on, questionnaire
from needlepoint.queries.patients import get_patient
from needlepoint.queries.screening import patient_consents
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    clinic_zone,
    field_errors,
    now,
    optional,
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
RELATIONSHIPS = [
    ("patient", "the patient"),
    ("parent", "a parent"),
    ("legal_guardian", "a legal guardian"),
]


def current_templates() -> list[ConsentTemplate]:
    return [t for t in templates() if t.current]


def _page(
    request: Request,
    ctx: RequestContext,
    patient_id: UUID,
    form: dict[str, Any],
    errors: Errors,
    status: int = 200,
) -> Response:
    with ctx.reader() as r:
        patient = get_patient(r, patient_id)
        signed = patient_consents(r, patient_id)
    chosen = text(form, "template") or current_templates()[0].id
    template = next(t for t in current_templates() if t.id == chosen)
    age = age_on(patient.birth_date, clinic_today(clinic_zone(ctx)))
    minor = age < questionnaire().adult_age_years
    if minor:
        form.setdefault("signer_relationship", "parent")
        form.setdefault("signer_name", "")
    form.setdefault("signer_name", f"{patient.given_name} {patient.family_name}")
    form.setdefault("signer_relationship", "patient")
    return render(
        request,
        "consent.html",
        status,
        patient=patient,
        template=template,
        choices=current_templates(),
        methods=list(ConsentMethod),
        relationships=RELATIONSHIPS,
        minor=minor,
        age=age,
        form=form,
        errors=errors,
        signed=signed,
    )


@router.get("/patients/{patient_id}/consent", response_model=None)
def consent_form(request: Request, patient_id: UUID, template: str = "") -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        known = {t.id for t in current_templates()}
        form = {"template": template if template in known else "", "method": "signature"}
        return _page(request, ctx, patient_id, form, {})
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/patients/{patient_id}/consent", response_model=None)
async def consent_post(request: Request, patient_id: UUID) -> Response:
    return await posted_form(request, _post, patient_id)


def _post(
    request: Request, ctx: RequestContext, patient_id: UUID, form: dict[str, Any]
) -> Response:
    chosen = next((t for t in current_templates() if t.id == text(form, "template")), None)
    if chosen is None:
        return _page(request, ctx, patient_id, form, {"template": ["Choose a consent form."]}, 400)
    if text(form, "read") != "on":
        return _page(
            request,
            ctx,
            patient_id,
            form,
            {"read": ["Confirm that the patient read the form and had their questions answered."]},
            400,
        )
    try:
        cmd = RecordConsent.model_validate(
            {
                "patient_id": patient_id,
                "template_id": chosen.id,
                "template_version": chosen.version,
                "signer_name": text(form, "signer_name"),
                "signer_relationship": text(form, "signer_relationship") or "patient",
                "method": text(form, "method"),
                "signed_at": now(),
                "copy_given": text(form, "copy_given") == "on",
                "witness_name": optional(text(form, "witness_name")),
                "signature": optional(text(form, "signature")),
            }
        )
        record_consent(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        errors = field_errors(err)
        if "" in errors and isinstance(err, ValidationError):
            errors["method"] = errors.pop("")
        return _page(request, ctx, patient_id, form, errors, 400)
    return see_other(f"/patients/{patient_id}")
