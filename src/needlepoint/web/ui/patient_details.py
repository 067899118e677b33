"""Changing a patient's details: demographics (`update_patient`, refused when someone
changed them meanwhile) and the referring clinician (`record_referral`: a new referral is
appended; earlier ones stay in the record)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.patients import record_referral, update_patient
from needlepoint.domain.commands import RecordReferral, UpdatePatient
from needlepoint.domain.enums import Sex
from needlepoint.domain.errors import DomainError, PermissionDenied
from needlepoint.queries.patients import get_patient, referrals_of
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    field_errors,
    optional,
    posted_form,
    refusal_page,
    render,
    see_other,
    signed_in,
    text,
    to_login,
)

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    ctx: RequestContext,
    patient_id: UUID,
    status: int = 200,
    *,
    errors: Errors | None = None,
    form: dict[str, Any] | None = None,
    referral: dict[str, Any] | None = None,
    saved: str | None = None,
) -> Response:
    try:
        with ctx.reader() as r:
            patient = get_patient(r, patient_id)
            referrals = referrals_of(r, patient_id)
    except DomainError as err:
        return refusal_page(request, err)
    return render(
        request,
        "patient_edit.html",
        status,
        patient=patient,
        referrals=referrals,
        sexes=list(Sex),
        errors=errors or {},
        form=form or {},
        referral=referral or {},
        saved=saved,
    )


@router.get("/patients/{patient_id}/edit", response_model=None)
def edit_patient_page(request: Request, patient_id: UUID, saved: str = "") -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    message = {"details": "Details saved.", "referral": "Referral recorded."}.get(saved)
    return _page(request, ctx, patient_id, saved=message)


@router.post("/patients/{patient_id}/edit", response_model=None)
async def edit_patient(request: Request, patient_id: UUID) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = UpdatePatient.model_validate(
                {
                    "patient_id": patient_id,
                    "expected_version": text(form, "version"),
                    "given_name": text(form, "given_name"),
                    "family_name": text(form, "family_name"),
                    "birth_date": text(form, "birth_date"),
                    "sex": text(form, "sex"),
                    "phone": optional(text(form, "phone")),
                    "email": optional(text(form, "email")),
                }
            )
            update_patient(ctx.uow(), ctx.actor, cmd)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except (DomainError, ValidationError) as err:
            return _page(request, ctx, patient_id, 400, errors=field_errors(err), form=form)
        return see_other(f"/patients/{patient_id}/edit?saved=details")

    return await posted_form(request, handle)


@router.post("/patients/{patient_id}/referral", response_model=None)
async def add_referral(request: Request, patient_id: UUID) -> Response:
    def handle(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
        try:
            cmd = RecordReferral.model_validate(
                {
                    "patient_id": patient_id,
                    "referrer_name": text(form, "referrer_name"),
                    "received_on": text(form, "received_on"),
                    "reason": text(form, "reason"),
                }
            )
            record_referral(ctx.uow(), ctx.actor, cmd)
        except PermissionDenied as err:
            return refusal_page(request, err)
        except (DomainError, ValidationError) as err:
            errors = field_errors(err, "referral-")
            return _page(request, ctx, patient_id, 400, errors=errors, referral=form)
        return see_other(f"/patients/{patient_id}/edit?saved=referral")

    return await posted_form(request, handle)
