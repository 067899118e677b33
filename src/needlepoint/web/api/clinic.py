"""The clinic's settings and its practitioners' credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Response

from needlepoint.actions import credentials as actions
from needlepoint.domain.commands import (
    AddTrainingRecord,
    ClinicSettingsIn,
    TrainingForm,
    UpdateClinicSettings,
)
from needlepoint.domain.credentials import Jurisdiction, jurisdictions
from needlepoint.domain.entities import Clinic, TrainingRecord
from needlepoint.domain.permissions import Permission
from needlepoint.queries.credentials import Credentials, user_credentials
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["clinic"])


@router.get("/clinic", response_model=Clinic, openapi_extra=requires(Permission.USE_ACCOUNT))
def get_clinic(ctx: ApiContext) -> Response:
    """The clinic and its settings (jurisdiction, credential policy, screening validity,
    billing of both sides). The ETag is the version to send when changing them."""
    with ctx.reader() as r:
        clinic = r.clinic()
    return respond(clinic, version=clinic.version)


@router.patch("/clinic", response_model=Clinic, openapi_extra=requires(Permission.MANAGE_CLINIC))
def update_settings(ctx: ApiContext, body: ClinicSettingsIn, version: IfMatch) -> Response:
    """Change the clinic's settings (owner only); only the fields given change."""
    cmd = UpdateClinicSettings(expected_version=version, **body.model_dump(exclude_unset=True))
    clinic = actions.update_clinic_settings(ctx.uow(), ctx.actor, cmd)
    return respond(clinic, version=clinic.version)


@router.get(
    "/jurisdictions",
    response_model=list[Jurisdiction],
    openapi_extra=requires(Permission.USE_ACCOUNT),
)
def list_jurisdictions(ctx: ApiContext) -> list[Jurisdiction]:
    """The rule sets a clinic may choose, with their (unverified) sources."""
    ctx.actor  # noqa: B018 - authenticates the caller
    return list(jurisdictions().values())


@router.get(
    "/users/{user_id}/credentials",
    response_model=Credentials,
    openapi_extra=requires(Permission.READ_CREDENTIALS),
)
def credentials(ctx: ApiContext, user_id: UUID) -> Response:
    """A practitioner's training and licence against the clinic's rules today."""
    with ctx.reader() as r:
        return respond(user_credentials(r, user_id, datetime.now(UTC).date()))


@router.post(
    "/users/{user_id}/training",
    response_model=TrainingRecord,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_TRAINING),
)
def add_training(ctx: ApiContext, user_id: UUID, body: TrainingForm) -> Response:
    """Record a dry needling course a practitioner completed (owner only)."""
    cmd = AddTrainingRecord(user_id=user_id, **body.model_dump())
    return respond(actions.add_training_record(ctx.uow(), ctx.actor, cmd), status=201)
