"""Clinic settings: jurisdiction, credential policy, screening validity, billing sides and
the clinic's own training rules. Owners change them; others read them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.credentials import update_clinic_settings
from needlepoint.domain import clinic_time
from needlepoint.domain.commands import UpdateClinicSettings
from needlepoint.domain.credentials import jurisdiction, jurisdictions
from needlepoint.domain.enums import CredentialPolicy, Role
from needlepoint.domain.errors import DomainError
from needlepoint.domain.permissions import GRANTS, Permission
from needlepoint.domain.sources import sources
from needlepoint.queries.overrides import override_review
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    field_errors,
    now,
    optional,
    posted_form,
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
    errors: Errors,
    saved: bool = False,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    with ctx.reader() as r:
        clinic = r.clinic()
        # the owner's review of written safety overrides (issue 13)
        may_review = ctx.role in GRANTS[Permission.READ_AUDIT]
        overrides = override_review(r, limit=100) if may_review else None
    rules = jurisdiction(clinic.jurisdiction)
    return render(
        request,
        "settings.html",
        status,
        clinic=clinic,
        form=form,
        errors=errors,
        saved=saved,
        may_edit=ctx.role is Role.OWNER,
        sides_checked=(text(form, "bill_sides_separately") == "on")
        if form
        else clinic.bill_sides_separately,
        jurisdictions=sorted(jurisdictions().values(), key=lambda j: (j.id != "none", j.name)),
        rules=rules,
        rule_sources=[sources()[i] for i in rules.sources],
        policies=list(CredentialPolicy),
        overrides=overrides,
        zone_names=sorted(clinic_time.zone_names()),
        zone_now=clinic_time.when(now(), clinic_time.zone(clinic.time_zone)),
    )


@router.get("/settings", response_model=None)
def settings_page(request: Request, saved: bool = False) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    return _page(request, ctx, {}, saved)


@router.post("/settings", response_model=None)
async def settings_post(request: Request) -> Response:
    return await posted_form(request, _post)


def _post(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
    try:
        cmd = UpdateClinicSettings.model_validate(
            {
                "expected_version": text(form, "version"),
                "jurisdiction": text(form, "jurisdiction"),
                "credential_policy": text(form, "credential_policy"),
                "screening_valid_days": text(form, "screening_valid_days"),
                "bill_sides_separately": text(form, "bill_sides_separately") == "on",
                "min_training_hours": optional(text(form, "min_training_hours")),
                "min_licence_years": optional(text(form, "min_licence_years")),
                "time_zone": optional(text(form, "time_zone")),
            }
        )
        update_clinic_settings(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, field_errors(err), form=form, status=400)
    return see_other("/settings?saved=true")
