"""Appropriateness screening and informed consent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel

from needlepoint.actions import consent as consent_actions
from needlepoint.actions import screening as screening_actions
from needlepoint.actions.screening import patient_facts
from needlepoint.domain import screening as rules
from needlepoint.domain.commands import (
    ConsentIn,
    ConsentWithdrawal,
    RecordConsent,
    RecordScreening,
    ScreeningAnswers,
    ScreeningForm,
    WithdrawConsent,
)
from needlepoint.domain.consent import ConsentTemplate, get_template, templates
from needlepoint.domain.entities import Consent, Screening
from needlepoint.domain.enums import ScreeningDecision
from needlepoint.domain.permissions import Permission
from needlepoint.domain.screening import Questionnaire
from needlepoint.queries import screening as queries
from needlepoint.queries.patients import get_patient
from needlepoint.queries.screening import NeedlingStatus
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["screening and consent"])


class ScreeningEvaluation(BaseModel):
    decision: ScreeningDecision
    reasons: list[dict[str, Any]]
    to_acknowledge: list[str]
    questionnaire_version: str


class ConsentTemplateOut(BaseModel):
    template: ConsentTemplate
    text: str


@router.get(
    "/screening/questionnaire",
    response_model=Questionnaire,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def questionnaire(ctx: ApiContext, patient_id: UUID | None = None) -> Questionnaire:
    """The questions, their categories (absolute, site, precaution) and sources. With
    `patient_id`, only the questions asked of that patient: what the record knows (age
    from the date of birth, sex) is not asked, e.g. pregnancy is not asked of a male
    patient."""
    q = rules.questionnaire()
    if patient_id is None:
        ctx.actor  # noqa: B018 - authenticates the caller
        return q
    with ctx.reader() as r:
        patient = get_patient(r, patient_id)
    return q.model_copy(update={"questions": q.asked(patient_facts(patient))})


@router.post(
    "/screening/evaluate",
    response_model=ScreeningEvaluation,
    openapi_extra=requires(Permission.SCREEN_PATIENT),
)
def evaluate(
    ctx: ApiContext, answers: ScreeningAnswers, patient_id: UUID | None = None
) -> ScreeningEvaluation:
    """The decision and reasons for a set of answers, without recording anything (to show
    the clinician what must be acknowledged). With `patient_id`, for that patient today:
    a minor is flagged from the date of birth, and only the questions asked of the
    patient are expected."""
    with ctx.reader() as r:
        r.require(Permission.SCREEN_PATIENT)
        facts = patient_facts(get_patient(r, patient_id)) if patient_id else None
    result = rules.evaluate(answers, facts, datetime.now(UTC).date())
    return ScreeningEvaluation(
        decision=result.decision,
        reasons=[r.as_dict() for r in result.reasons],
        to_acknowledge=result.to_acknowledge,
        questionnaire_version=rules.questionnaire().version,
    )


@router.post(
    "/patients/{patient_id}/screenings",
    response_model=Screening,
    status_code=201,
    openapi_extra=requires(Permission.SCREEN_PATIENT),
)
def record_screening(ctx: ApiContext, patient_id: UUID, body: ScreeningForm) -> Response:
    """Record a screening; every precaution must be listed in `acknowledged_precautions`."""
    cmd = RecordScreening(patient_id=patient_id, **body.model_dump(exclude_unset=True))
    screening = screening_actions.record_screening(ctx.uow(), ctx.actor, cmd)
    return respond(screening, status=201)


@router.get(
    "/patients/{patient_id}/screenings",
    response_model=list[Screening],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def list_screenings(ctx: ApiContext, patient_id: UUID) -> Response:
    """The patient's screenings, newest first."""
    with ctx.reader() as r:
        found = queries.patient_screenings(r, patient_id)
        return respond(found)


@router.get(
    "/patients/{patient_id}/needling-status",
    response_model=NeedlingStatus,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def needling_status(ctx: ApiContext, patient_id: UUID) -> Response:
    """May this patient be needled now? The screening and consent in force, what blocks
    needling, and the precautions to keep in mind."""
    with ctx.reader() as r:
        status = queries.needling_status(r, patient_id, datetime.now(UTC))
        return respond(status)


@router.get(
    "/consent-templates",
    response_model=list[ConsentTemplate],
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def consent_templates(ctx: ApiContext) -> list[ConsentTemplate]:
    """Every consent template version (the current one is marked `current`)."""
    ctx.actor  # noqa: B018 - authenticates the caller
    return templates()


@router.get(
    "/consent-templates/{template_id}/{version}",
    response_model=ConsentTemplateOut,
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def consent_template(ctx: ApiContext, template_id: str, version: str) -> ConsentTemplateOut:
    """One template version with its full text, as the patient reads and signs it."""
    ctx.actor  # noqa: B018 - authenticates the caller
    template = get_template(template_id, version)
    return ConsentTemplateOut(template=template, text=template.text)


@router.post(
    "/patients/{patient_id}/consents",
    response_model=Consent,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_CONSENT),
)
def record_consent(ctx: ApiContext, patient_id: UUID, body: ConsentIn) -> Response:
    """Record a signed consent (signer, time, method, witness, copy given, signature)."""
    cmd = RecordConsent(patient_id=patient_id, **body.model_dump())
    consent = consent_actions.record_consent(ctx.uow(), ctx.actor, cmd)
    return respond(consent, status=201, version=consent.version)


@router.get(
    "/patients/{patient_id}/consents",
    response_model=list[Consent],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def list_consents(ctx: ApiContext, patient_id: UUID) -> Response:
    """The patient's consents, newest first."""
    with ctx.reader() as r:
        found = queries.patient_consents(r, patient_id)
        return respond(found)


@router.post(
    "/consents/{consent_id}/withdraw",
    response_model=Consent,
    openapi_extra=requires(Permission.RECORD_CONSENT),
)
def withdraw_consent(
    ctx: ApiContext, consent_id: UUID, body: ConsentWithdrawal, version: IfMatch
) -> Response:
    """Withdraw a consent: no needling is recorded after that moment."""
    cmd = WithdrawConsent(
        consent_id=consent_id,
        expected_version=version,
        withdrawn_at=body.withdrawn_at or datetime.now(UTC),
    )
    consent = consent_actions.withdraw_consent(ctx.uow(), ctx.actor, cmd)
    return respond(consent, version=consent.version)
