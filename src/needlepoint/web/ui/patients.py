"""Finding and registering patients: the list with instant search, and the new-patient form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.patients import register_patient
from needlepoint.domain.commands import RegisterPatient
from needlepoint.domain.enums import Sex
from needlepoint.domain.errors import DomainError
from needlepoint.queries.patients import search_patients
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
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
PAGE_SIZE = 25


@router.get("/patients", response_model=None)
def patient_list(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The clinic's patients, searchable by name or chart number as you type (htmx swaps
    the results; without JavaScript the search button does the same)."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            found = search_patients(r, q, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    except DomainError as err:  # e.g. an auditor or a patient account: no patient list
        return refusal_page(request, err)
    pages = max(1, -(-found.total // PAGE_SIZE))
    name = "patients_results.html" if request.headers.get("HX-Request") else "patients.html"
    return render(request, name, found=found, q=q, page=page, pages=pages)


@router.get("/patients/new", response_model=None)
def new_patient_form(request: Request) -> Response:
    if signed_in(request) is None:
        return to_login()
    return render(request, "patient_new.html", form={}, sexes=list(Sex))


@router.post("/patients/new", response_model=None)
async def new_patient(request: Request) -> Response:
    return await posted_form(request, _register)


def _register(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
    try:
        cmd = RegisterPatient.model_validate(
            {
                "mrn": text(form, "mrn"),
                "given_name": text(form, "given_name"),
                "family_name": text(form, "family_name"),
                "birth_date": text(form, "birth_date"),
                "sex": text(form, "sex"),
                "phone": optional(text(form, "phone")),
                "email": optional(text(form, "email")),
            }
        )
        patient = register_patient(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return render(
            request, "patient_new.html", 400, form=form, sexes=list(Sex), errors=field_errors(err)
        )
    return see_other(f"/patients/{patient.id}")
