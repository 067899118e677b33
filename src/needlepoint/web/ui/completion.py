"""Questionnaire completion rates on the analytics page (issue 16): per questionnaire,
per time point and per clinician, n completed / n asked with a 95 % Wilson interval,
the published figures beside them with their sources (`analytics.completion`).

`/analytics/completion` answers the section as an htmx fragment (the analytics page
loads it) or, asked for without a script, as a whole page. Counted straight from the
records (no snapshot): a few grouped counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from needlepoint.analytics.completion import completion
from needlepoint.domain.errors import DomainError
from needlepoint.web.ui.forms import clinic_zone, refusal_page, render, signed_in, to_login
from needlepoint.web.ui.forms import today as clinic_today

router = APIRouter(include_in_schema=False)


@router.get("/analytics/completion", response_model=None)
def completion_rates(request: Request) -> Response:
    """The clinic's questionnaire completion rates beside the published figures."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            found = completion(r, clinic_today(clinic_zone(ctx)))
    except DomainError as err:
        return refusal_page(request, err)
    fragment = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "analytics_completion.html" if fragment else "analytics_completion_page.html",
        c=found,
    )
