"""Reference data: the muscle catalogue, conditions with their codes, billing codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from needlepoint.domain.billing import CptTable, billing_data, icd10_suggestions
from needlepoint.domain.catalogue import Condition, Muscle, conditions, muscles, search_muscles
from needlepoint.domain.errors import NotFound
from needlepoint.domain.permissions import Permission
from needlepoint.domain.site_safety import site_rules
from needlepoint.domain.sources import Finding
from needlepoint.web.context import ApiContext, requires

router = APIRouter(tags=["catalogue"])


class MuscleOut(BaseModel):
    muscle: Muscle
    cautions: list[dict[str, Any]]


class ConditionOut(BaseModel):
    condition: Condition
    icd10_suggestions: list[dict[str, Any]]


def _muscle_out(muscle: Muscle) -> MuscleOut:
    rules = site_rules().cautions
    return MuscleOut(
        muscle=muscle,
        cautions=[
            Finding(c, "warn", rules[c].text, tuple(rules[c].sources)).as_dict()
            for c in muscle.cautions
        ],
    )


@router.get("/muscles", response_model=list[Muscle], openapi_extra=requires(Permission.USE_ACCOUNT))
def list_muscles(
    ctx: ApiContext,
    q: str = "",
    region: str | None = None,
    chart: str | None = None,
    limit: int = 50,
) -> list[Muscle]:
    """Search the muscle catalogue by name or synonym; filter by region or body-chart key."""
    ctx.actor  # noqa: B018 - authenticates the caller
    return search_muscles(q, region=region, chart=chart, limit=max(1, min(limit, 200)))


@router.get(
    "/muscles/{muscle_id}", response_model=MuscleOut, openapi_extra=requires(Permission.USE_ACCOUNT)
)
def get_muscle(ctx: ApiContext, muscle_id: str) -> MuscleOut:
    """One muscle with its cautions and their sources."""
    ctx.actor  # noqa: B018 - authenticates the caller
    muscle = muscles().get(muscle_id)
    if muscle is None:
        raise NotFound(f"no muscle '{muscle_id}' in the catalogue", field="muscle_id")
    return _muscle_out(muscle)


@router.get(
    "/conditions", response_model=list[ConditionOut], openapi_extra=requires(Permission.USE_ACCOUNT)
)
def list_conditions(ctx: ApiContext) -> list[ConditionOut]:
    """Conditions an episode may be opened for, each with ICD-10-CM suggestions (every
    code with its source and verification status)."""
    ctx.actor  # noqa: B018 - authenticates the caller
    return [
        ConditionOut(
            condition=c,
            icd10_suggestions=[
                {
                    "code": s.code,
                    "title": s.title,
                    **Finding(s.code, "code", s.title, tuple(s.sources)).as_dict(),
                }
                for s in icd10_suggestions(c.id)
            ],
        )
        for c in conditions().conditions
    ]


@router.get("/billing/cpt", response_model=CptTable, openapi_extra=requires(Permission.USE_ACCOUNT))
def cpt_codes(ctx: ApiContext) -> CptTable:
    """The dry needling CPT codes and how they are derived."""
    ctx.actor  # noqa: B018 - authenticates the caller
    return billing_data().cpt
