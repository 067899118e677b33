"""The clinic analytics page: the benefits dashboard with its charts (PNG images drawn
server-side and embedded as data: URIs; no scripts), practitioner variation, recovery
curves, medication, adverse-event surveillance and a prognosis form (a plain GET)."""

from __future__ import annotations

import secrets
import threading
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from needlepoint.actions.context import Actor
from needlepoint.adapters.db.tables import clinics, users
from needlepoint.analytics import charts
from needlepoint.analytics.dashboard import Dashboard, clinic_dashboard
from needlepoint.analytics.prognosis import PatientIn
from needlepoint.analytics.responders import DIMENSIONS
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import DomainError
from needlepoint.web.context import RequestContext, request_id

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("needlepoint.web", "templates"),
        autoescape=select_autoescape(),
    )
)
_charts_lock = threading.Lock()
_charts: dict[int, tuple[Dashboard, dict[str, Any]]] = {}


def _signed_in(request: Request) -> RequestContext | None:
    """The signed-in user of the web session, or None."""
    user_id = request.session.get("user_id")
    if not user_id:
        return None
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                users.c.id,
                users.c.clinic_id,
                users.c.role,
                users.c.full_name,
                clinics.c.name.label("clinic_name"),
            )
            .join(clinics, clinics.c.id == users.c.clinic_id)
            .where(users.c.id == UUID(user_id), users.c.is_active.is_(True))
        ).first()
    if row is None:
        return None
    request.state.user_name = row.full_name
    request.state.clinic_name = row.clinic_name
    actor = Actor(row.id, row.clinic_id, source="web", request_id=request_id(request))
    return RequestContext(engine, actor, Role(row.role))


def _csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user_name", getattr(request.state, "user_name", None))
    context.setdefault("clinic_name", getattr(request.state, "clinic_name", None))
    context.setdefault("csrf_token", _csrf_token(request))
    return templates.TemplateResponse(request, name, context, status_code=status)


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
    ctx = _signed_in(request)
    if ctx is None:
        return RedirectResponse("/login", status_code=303)
    try:
        with ctx.reader() as r:
            result, fitted = clinic_dashboard(r)
    except DomainError as err:
        return _render(request, "error.html", 403, message=err.detail)
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
    return _render(
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
