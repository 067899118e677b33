"""Clinic analytics: the benefits dashboard, its CSV export, practitioner variation,
recovery curves, medication, adverse-event surveillance and a patient's prognosis.

Every route reads clinical data (`Permission.READ_CLINICAL`). The dashboard is computed
once per state of the clinic's records and cached (`analytics.dashboard`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Response

from needlepoint.analytics.dashboard import Dashboard, clinic_dashboard, responders_csv
from needlepoint.analytics.medication import MedicationRow
from needlepoint.analytics.practitioners import PractitionerModel
from needlepoint.analytics.prognosis import PatientIn, Prediction, PrognosisModel
from needlepoint.analytics.recovery import Recovery
from needlepoint.analytics.responders import ResponderRow
from needlepoint.analytics.safety import Safety
from needlepoint.domain.enums import Sex
from needlepoint.domain.permissions import Permission
from needlepoint.web.context import ApiContext, requires, respond

router = APIRouter(tags=["analytics"])


@dataclass(frozen=True, slots=True)
class PrognosisOut:
    prediction: Prediction | None
    message: str
    model: PrognosisModel


@router.get(
    "/analytics/dashboard",
    response_model=Dashboard,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def dashboard(ctx: ApiContext) -> Response:
    """Everything on the benefits dashboard: one tile per benefit (the clinic's rate with
    its denominators beside the published pooled effect), the responder table, the
    practitioner models, recovery curves, medication, safety and the prognosis model."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    return respond(result)


@router.get(
    "/analytics/benefits",
    response_model=list[ResponderRow],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def benefit_responders(
    ctx: ApiContext,
    dimension: Annotated[
        str | None,
        Query(pattern="^(overall|condition|practitioner|technique|co_intervention|period)$"),
    ] = None,
) -> Response:
    """Responder rates per benefit by condition, practitioner, technique, co-intervention
    and period, each with its 95 % Wilson interval, complete pairs and missing pairs."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    rows = [x for x in result.responders if dimension is None or x.dimension == dimension]
    return respond(rows)


@router.get(
    "/analytics/benefits.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The responder table"}},
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def benefit_responders_csv(ctx: ApiContext) -> Response:
    """The responder table as CSV (one row per benefit, dimension and level)."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    return Response(
        responders_csv(result.responders),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="benefit-responders.csv"'},
    )


@router.get(
    "/analytics/practitioners",
    response_model=list[PractitionerModel],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def practitioners(ctx: ApiContext) -> Response:
    """Risk-adjusted practitioner effects on NPRS and function change (mixed models)."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    return respond(result.practitioners)


@router.get(
    "/analytics/recovery", response_model=Recovery, openapi_extra=requires(Permission.READ_CLINICAL)
)
def recovery_curves(ctx: ApiContext) -> Response:
    """Kaplan–Meier curves of days to the first NPRS MCID, with log-rank tests."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    return respond(result.recovery)


@router.get(
    "/analytics/medication",
    response_model=list[MedicationRow],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def medication(ctx: ApiContext) -> Response:
    """Share of episodes whose analgesic drug-days per week fell; opioids separately."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    return respond(result.medication)


@router.get(
    "/analytics/safety", response_model=Safety, openapi_extra=requires(Permission.READ_CLINICAL)
)
def safety(ctx: ApiContext) -> Response:
    """Adverse events per 100 sessions beside the published rates, and the alert."""
    with ctx.reader() as r:
        result, _ = clinic_dashboard(r)
    return respond(result.safety)


@router.get(
    "/analytics/prognosis",
    response_model=PrognosisOut,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def prognosis(
    ctx: ApiContext,
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
    with ctx.reader() as r:
        _, fitted = clinic_dashboard(r)
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
        message = (
            f"No estimate: {fitted.prognosis.model.status}"
            if fitted.prognosis.result is None
            else f"No estimate: the clinic has no analysed episodes of {condition!r}."
        )
    else:
        message = found.caveat
    return respond(PrognosisOut(found, message, fitted.prognosis.model))
