"""The clinic analytics page: the benefits dashboard with its charts (PNG images drawn
server-side and embedded as data: URIs; no scripts), practitioner variation, recovery
curves, medication, adverse-event surveillance and a prognosis form (a plain GET).

The page shows the clinic's latest analytics snapshot and never waits for one
(`analytics.dashboard.Dashboards`): it says when the figures' records were read, in the
clinic's time, and whether a refresh is running because the records changed since. The
clinic's first view (no snapshot yet) is a short "being prepared" page that reloads
itself every few seconds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from needlepoint.analytics.dashboard import dashboards_of
from needlepoint.analytics.prognosis import PatientIn
from needlepoint.analytics.responders import DIMENSIONS
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.clinic_time import clock
from needlepoint.domain.errors import DomainError
from needlepoint.web.ui.forms import clinic_zone, refusal_page, render, signed_in, to_login

router = APIRouter(include_in_schema=False)

RELOAD_S = 5
"""How often the "being prepared" page reloads itself."""


def local_time(moment: datetime | None, tz: ZoneInfo, *, clock_only: bool = False) -> str:
    """A time as the clinic reads it: `27 November 2026, 09:14 PST` (`09:14 PST`)."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return clock(moment, tz) if clock_only else f"{local.day} {local:%B %Y}, {clock(moment, tz)}"


@router.get("/analytics", response_model=None)
def analytics_page(
    request: Request,
    benefit: Annotated[str, Query(max_length=64)] = "pain_relief",
    dimension: Annotated[str, Query(max_length=32)] = "condition",
    baseline_nprs: Annotated[float | None, Query(ge=0, le=10)] = None,
    age: Annotated[float | None, Query(ge=0, le=120)] = None,
    sex: Annotated[str, Query(pattern="^(female|male|other|unknown)?$")] = "",
    condition: Annotated[str, Query(max_length=64)] = "",
    chronic: bool = False,
    exercise: bool = False,
    manual_therapy: bool = False,
) -> Response:
    """The benefits dashboard of the signed-in user's clinic."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            view = dashboards_of(request.app.state).view(r)
    except DomainError as err:
        return refusal_page(request, err)
    if view.computed is None:
        return render(
            request,
            "analytics.html",
            view=view,
            d=None,
            reload_s=RELOAD_S if view.refreshing else None,
            started=local_time(view.refresh_started, clinic_zone(ctx), clock_only=True),
        )
    snapshot = view.computed
    result, fitted = snapshot.dashboard, snapshot.fitted
    if dimension not in DIMENSIONS:
        dimension = "condition"
    rows = [x for x in result.responders if x.benefit == benefit and x.dimension == dimension]
    prediction = None
    asked = baseline_nprs is not None and age is not None and sex and condition
    if asked:
        prediction = fitted.prognosis.predict(
            PatientIn(
                baseline_nprs=baseline_nprs or 0.0,
                age=age or 0.0,
                sex=sex,
                chronic=chronic,
                condition=condition,
                exercise=exercise,
                manual_therapy=manual_therapy,
            )
        )
    labels = {c.id: c.label for c in conditions().conditions}
    return render(
        request,
        "analytics.html",
        view=view,
        d=result,
        images=snapshot.images,
        as_of=local_time(snapshot.as_of, clinic_zone(ctx)),
        started=local_time(view.refresh_started, clinic_zone(ctx), clock_only=True),
        rows=rows,
        benefit=benefit,
        dimension=dimension,
        dimensions=DIMENSIONS,
        labels=labels,
        asked=bool(asked),
        prediction=prediction,
        form={
            "baseline_nprs": baseline_nprs,
            "age": age,
            "sex": sex,
            "condition": condition,
            "chronic": chronic,
            "exercise": exercise,
            "manual_therapy": manual_therapy,
        },
        prognosis_status=fitted.prognosis.model.status,
    )
