"""The clinic analytics page: the benefits dashboard with its charts (PNG images drawn
server-side and embedded as data: URIs; no scripts), practitioner variation, recovery
curves, medication, adverse-event surveillance and a prognosis form (a plain GET)."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from needlepoint.analytics import charts
from needlepoint.analytics.dashboard import Dashboard, clinic_dashboard
from needlepoint.analytics.prognosis import PatientIn
from needlepoint.analytics.responders import DIMENSIONS
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.errors import DomainError
from needlepoint.web.ui.forms import refusal_page, render, signed_in, to_login

router = APIRouter(include_in_schema=False)
_charts_lock = threading.Lock()
_charts: dict[int, tuple[Dashboard, dict[str, Any]]] = {}


def _images(result: Dashboard) -> dict[str, Any]:
    """The dashboard's charts, drawn once per computed dashboard."""
    with _charts_lock:
        hit = _charts.get(id(result))
        if hit is not None and hit[0] is result:
            return hit[1]
    images = {
        "caterpillar": [charts.caterpillar(m) for m in result.practitioners],
        "funnel": [charts.funnel(m) for m in result.practitioners],
        "recovery": [charts.recovery_curves(c) for c in result.recovery.comparisons],
        "calibration": charts.calibration_plot(result.prognosis.validation),
    }
    with _charts_lock:
        _charts.clear()  # only the latest dashboard's charts are kept
        _charts[id(result)] = (result, images)
    return images


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
            result, fitted = clinic_dashboard(r)
    except DomainError as err:
        return refusal_page(request, err)
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
        d=result,
        images=_images(result),
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
