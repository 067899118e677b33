"""Clinic analytics: the benefits dashboard, its CSV export, practitioner variation,
recovery curves, medication, adverse-event surveillance and a patient's prognosis.

Every route reads clinical data (`Permission.READ_CLINICAL`). Every route answers from the
clinic's latest analytics snapshot, computed in the background (`analytics.dashboard.
Dashboards`), and never waits for one:

* a snapshot exists: 200, with headers `Analytics-As-Of` (RFC 3339, UTC: when its records
  were read) and `Analytics-Refreshing` (`true` while a newer one is computed because the
  records changed); the dashboard's body carries the same as `as_of` and `refreshing`,
  and so does the prognosis';
* none yet (the clinic's first view since the server started): 202 with a `Preparing`
  body and `Retry-After`; ask again;
* none, and preparing it failed: 503 with `Retry-After` (the failure is in the log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from needlepoint.analytics.after_care import AfterCare
from needlepoint.analytics.dashboard import (
    Computed,
    Dashboard,
    View,
    dashboards_of,
    responders_csv,
)
from needlepoint.analytics.medication import MedicationRow
from needlepoint.analytics.practitioners import PractitionerModel
from needlepoint.analytics.prognosis import PatientIn, Prediction, PrognosisModel
from needlepoint.analytics.recovery import Recovery
from needlepoint.analytics.responders import ResponderRow
from needlepoint.analytics.safety import Safety
from needlepoint.domain.enums import Sex
from needlepoint.domain.permissions import Permission
from needlepoint.web.context import ApiContext, requires, respond
from needlepoint.web.problems import problem

router = APIRouter(tags=["analytics"])

RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class Preparing:
    """No analytics snapshot yet: it is being computed from the clinic's records."""

    status: str  # "preparing"
    message: str
    refreshing: bool
    refresh_started: datetime | None
    as_of: None = None


@dataclass(frozen=True, slots=True)
class DashboardOut(Dashboard):
    """The dashboard, with when its records were read and whether a newer one is being
    computed."""

    as_of: datetime | None = None
    refreshing: bool = False


@dataclass(frozen=True, slots=True)
class PrognosisOut:
    prediction: Prediction | None
    message: str
    model: PrognosisModel
    as_of: datetime
    refreshing: bool


PREPARING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": Preparing,
        "description": "The clinic's first analytics snapshot is being prepared: ask again "
        "after `Retry-After` seconds",
    }
}


def _view(ctx: ApiContext, request: Request) -> View:
    with ctx.reader() as r:
        return dashboards_of(request.app.state).view(r)


def _headers(view: View) -> dict[str, str]:
    headers = {"Analytics-Refreshing": "true" if view.refreshing else "false"}
    if view.as_of is not None:
        headers["Analytics-As-Of"] = view.as_of.isoformat()
    return headers


def _not_ready(view: View, request: Request) -> Response:
    """202 while the first snapshot is prepared; 503 when preparing it failed."""
    if view.refreshing:
        body = Preparing(
            status="preparing",
            message="The clinic's analytics are being prepared from its records; "
            f"ask again in {RETRY_AFTER_S} s.",
            refreshing=True,
            refresh_started=view.refresh_started,
        )
        response = respond(body, status=202)
        response.headers.update({"Retry-After": str(RETRY_AFTER_S), **_headers(view)})
        return response
    return problem(
        503,
        "Service Unavailable",
        "the clinic's analytics could not be prepared (the server log says why); "
        "a request after a minute tries again",
        headers={"Retry-After": "60"},
        request=request,
    )


def _answer(view: View, body: object) -> Response:
    response = respond(body)
    response.headers.update(_headers(view))
    return response


def _snapshot(ctx: ApiContext, request: Request) -> tuple[View, Computed | Response]:
    view = _view(ctx, request)
    if view.computed is None:
        return view, _not_ready(view, request)
    return view, view.computed


@router.get(
    "/analytics/dashboard",
    response_model=DashboardOut,
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def dashboard(ctx: ApiContext, request: Request) -> Response:
    """Everything on the benefits dashboard: one tile per benefit (the clinic's rate with
    its denominators and the thresholds applied, each with its source, beside the published
    pooled effect; `status` "not measured", with `proxy` saying what was counted instead,
    where the benefit itself is not measured), the responder table, the
    practitioner models, recovery curves, medication, safety and the prognosis model;
    `as_of` (when its records were read) and `refreshing` (a newer one is computed)."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    d = got.dashboard
    out = DashboardOut(
        **{f: getattr(d, f) for f in Dashboard.__dataclass_fields__},
        as_of=got.as_of,
        refreshing=view.refreshing,
    )
    return _answer(view, out)


@router.get(
    "/analytics/benefits",
    response_model=list[ResponderRow],
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def benefit_responders(
    ctx: ApiContext,
    request: Request,
    dimension: Annotated[
        str | None,
        Query(pattern="^(overall|condition|practitioner|technique|co_intervention|period)$"),
    ] = None,
) -> Response:
    """Rates per benefit by condition, practitioner, technique, co-intervention and
    period, each with its 95 % Wilson interval, complete pairs and missing pairs. `counted`
    says what `responders` counts and `status` whether that is the benefit itself
    ("measured"), a stand-in for a benefit that is not measured ("proxy": trigger points
    for muscle relaxation, fewer drug-days for drug-free management, the NPRS threshold by
    session 6 for faster recovery, which has no comparator), or nothing ("not measured":
    `responders` and `rate` null, never 0)."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    rows = [x for x in got.dashboard.responders if dimension is None or x.dimension == dimension]
    return _answer(view, rows)


@router.get(
    "/analytics/benefits.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The responder table"},
        **PREPARING,
    },
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def benefit_responders_csv(ctx: ApiContext, request: Request) -> Response:
    """The responder table as CSV (one row per benefit, dimension and level)."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    return Response(
        responders_csv(got.dashboard.responders),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="benefit-responders.csv"',
            **_headers(view),
        },
    )


@router.get(
    "/analytics/practitioners",
    response_model=list[PractitionerModel],
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def practitioners(ctx: ApiContext, request: Request) -> Response:
    """Risk-adjusted practitioner effects on NPRS and function change (mixed models)."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    return _answer(view, got.dashboard.practitioners)


@router.get(
    "/analytics/recovery",
    response_model=Recovery,
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def recovery_curves(ctx: ApiContext, request: Request) -> Response:
    """Kaplan–Meier curves of days to the first NPRS MCID, with log-rank tests."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    return _answer(view, got.dashboard.recovery)


@router.get(
    "/analytics/medication",
    response_model=list[MedicationRow],
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def medication(ctx: ApiContext, request: Request) -> Response:
    """Share of episodes whose analgesic drug-days per week fell; opioids separately."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    return _answer(view, got.dashboard.medication)


@router.get(
    "/analytics/after-care",
    response_model=AfterCare,
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def after_care(ctx: ApiContext, request: Request) -> Response:
    """What patients report after discharge, per questionnaire at 6 weeks and 3 months:
    n/N of the eligible discharged episodes (follow-up day passed, asked or not), of
    those how many kept the benefit (change from baseline reaching the responder
    threshold, with its source and the 95 % Wilson interval), and the drug-free share
    from the analgesic log after discharge; `status` "not measured" (and `rate` null)
    where nobody answered."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    later = got.dashboard.after_care
    assert later is not None  # computed with every dashboard
    return _answer(view, later)


@router.get(
    "/analytics/safety",
    response_model=Safety,
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def safety(ctx: ApiContext, request: Request) -> Response:
    """Adverse events per 100 sessions beside the published rates, and the alert."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    return _answer(view, got.dashboard.safety)


@router.get(
    "/analytics/prognosis",
    response_model=PrognosisOut,
    responses=PREPARING,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def prognosis(
    ctx: ApiContext,
    request: Request,
    baseline_nprs: Annotated[float, Query(ge=0, le=10)],
    age: Annotated[float, Query(ge=0, le=120)],
    sex: Sex,
    condition: Annotated[str, Query(max_length=64)],
    chronic: bool = False,
    exercise: bool = False,
    manual_therapy: bool = False,
) -> Response:
    """The probability that a new patient reaches the NPRS MCID by the sixth session,
    from the clinic's own episodes, with its 95 % interval, the model's cross-validated
    calibration and a plain caveat."""
    view, got = _snapshot(ctx, request)
    if not isinstance(got, Computed):
        return got
    fitted = got.fitted
    patient = PatientIn(
        baseline_nprs=baseline_nprs,
        age=age,
        sex=sex.value,
        chronic=chronic,
        condition=condition,
        exercise=exercise,
        manual_therapy=manual_therapy,
    )
    found = fitted.prognosis.predict(patient)
    if found is None:
        judged = fitted.prognosis.reliability
        if fitted.prognosis.result is None:
            message = f"No estimate: {fitted.prognosis.model.status}"
        elif not judged.reliable:
            message = (
                "No estimate: the model's validation says it is unreliable for one patient ("
                + "; ".join(judged.reasons)
                + f"). It is {judged.criterion}."
            )
        else:
            message = f"No estimate: the clinic has no analysed episodes of {condition!r}."
    else:
        message = found.caveat
    out = PrognosisOut(found, message, fitted.prognosis.model, got.as_of, view.refreshing)
    return _answer(view, out)
