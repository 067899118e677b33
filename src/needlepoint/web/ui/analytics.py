"""The clinic analytics page: the benefits dashboard with its charts (PNG images drawn
server-side and embedded as data: URIs; no inline scripts), practitioner variation,
recovery curves, medication, adverse-event surveillance and a prognosis form (a plain GET).

The page is a shell that answers at once (the heading, when the figures are from, the
CSV link) and loads its figures with htmx (`hx-trigger="load"`) from
`/analytics/figures`, showing "Computing…" until they come. The figures come from the
clinic's latest analytics snapshot and never wait for one
(`analytics.dashboard.Dashboards`); while the clinic's first snapshot is prepared, the
figures fragment answers "Computing…" and asks again every few seconds.

`/analytics/benefits.csv` is the responder table for the signed-in user (the API's
`/api/v1/analytics/benefits.csv` needs a bearer token): the same snapshot, the same
permission and tenant check through the session's reader (a refusal is on the audit
trail, as the API's is)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from needlepoint.analytics.dashboard import View, dashboards_of, responders_csv
from needlepoint.analytics.prognosis import PatientIn
from needlepoint.analytics.responders import DIMENSIONS
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.clinic_time import clock
from needlepoint.domain.errors import DomainError
from needlepoint.web.ui.forms import clinic_zone, refusal_page, render, signed_in, to_login

router = APIRouter(include_in_schema=False)

RELOAD_S = 5
"""How often the figures fragment asks again while the first snapshot is prepared."""


def local_time(moment: datetime | None, tz: ZoneInfo, *, clock_only: bool = False) -> str:
    """A time as the clinic reads it: `27 November 2026, 09:14 PST` (`09:14 PST`)."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return clock(moment, tz) if clock_only else f"{local.day} {local:%B %Y}, {clock(moment, tz)}"


Benefit = Annotated[str, Query(max_length=64)]
Dimension = Annotated[str, Query(max_length=32)]

_WORDS = {
    "overall": "All episodes",
    "co_intervention": "Co-intervention",
    "nprs": "NPRS",
    "function": "Function",
    "ppt": "Pressure pain threshold",
    "rom": "Range of motion",
}


def readable(value: object, labels: dict[str, str] | None = None) -> str:
    """A value as a clinician reads it: a catalogue label where one exists, otherwise the
    words of an internal id (`co_intervention` → `Co-intervention`, `low_back_pain` →
    `Low back pain`), starting with a capital."""
    text = str(value)
    if labels and text in labels:
        return labels[text]
    if text in _WORDS:
        return _WORDS[text]
    words = text.replace("_", " ").strip() if "_" in text else text
    return words[:1].upper() + words[1:]


def _labels() -> dict[str, str]:
    return {c.id: c.label for c in conditions().conditions}


def _status(view: View, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "as_of": local_time(view.as_of, tz),
        "started": local_time(view.refresh_started, tz, clock_only=True),
    }


@router.get("/analytics", response_model=None)
def analytics_page(request: Request) -> Response:
    """The page's shell: answered at once; the figures load into it (see the module)."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            view = dashboards_of(request.app.state).view(r)
    except DomainError as err:
        return refusal_page(request, err)
    query = request.url.query
    return render(
        request,
        "analytics.html",
        view=view,
        figures_url="/analytics/figures" + (f"?{query}" if query else ""),
        **_status(view, clinic_zone(ctx)),
    )


@router.get("/analytics/figures", response_model=None)
def analytics_figures(
    request: Request,
    benefit: Benefit = "pain_relief",
    dimension: Dimension = "condition",
    baseline_nprs: Annotated[float | None, Query(ge=0, le=10)] = None,
    age: Annotated[float | None, Query(ge=0, le=120)] = None,
    sex: Annotated[str, Query(pattern="^(female|male|other|unknown)?$")] = "",
    condition: Annotated[str, Query(max_length=64)] = "",
    chronic: bool = False,
    exercise: bool = False,
    manual_therapy: bool = False,
) -> Response:
    """The dashboard's figures (an htmx fragment of the page), or "Computing…" while
    the clinic's first snapshot is prepared."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            view = dashboards_of(request.app.state).view(r)
    except DomainError as err:
        return refusal_page(request, err)
    if view.computed is None:
        return _figures(
            request,
            view=view,
            d=None,
            again_s=RELOAD_S,
            figures_url=str(request.url.path)
            + (f"?{request.url.query}" if request.url.query else ""),
            **_status(view, clinic_zone(ctx)),
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
    return _figures(
        request,
        view=view,
        d=result,
        images=snapshot.images,
        rows=rows,
        benefit=benefit,
        dimension=dimension,
        dimensions=DIMENSIONS,
        labels=_labels(),
        readable=readable,
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
        reliability=fitted.prognosis.reliability,
        **_status(view, clinic_zone(ctx)),
    )


def _figures(request: Request, **context: Any) -> Response:
    """The figures: a fragment for htmx (`HX-Request`), or, asked for without a script
    (the shell's <noscript> link), the whole page with the figures in it."""
    if request.headers.get("HX-Request") == "true":
        return render(request, "analytics_figures.html", **context)
    return render(request, "analytics.html", inline=True, **context)


@router.get("/analytics/benefits.csv", response_model=None)
def analytics_csv(request: Request) -> Response:
    """The responder table as CSV, for the signed-in user (see the module)."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            view = dashboards_of(request.app.state).view(r)
    except DomainError as err:
        return refusal_page(request, err)
    if view.computed is None:
        page = render(
            request,
            "error.html",
            503,
            message="The clinic's analytics are still being prepared: try the download "
            f"again in {RELOAD_S} seconds.",
        )
        page.headers["Retry-After"] = str(RELOAD_S)
        return page
    headers = {
        "Content-Disposition": 'attachment; filename="benefit-responders.csv"',
        "Analytics-As-Of": view.computed.as_of.isoformat(),
    }
    return Response(
        responders_csv(view.computed.dashboard.responders),
        media_type="text/csv; charset=utf-8",
        headers=headers,
    )
