"""The JSON API, version 1: one router per clinical area, each mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from needlepoint.web.api import (
    account,
    adverse_events,
    analytics,
    audit,
    care_team,
    catalogue,
    clinic,
    completion,
    episodes,
    imports,
    outcomes,
    patients,
    questionnaires,
    research,
    screening,
    sessions,
    users,
)

PREFIX = "/api/v1"
routers: list[APIRouter] = [
    users.router,
    patients.router,
    care_team.router,
    episodes.router,
    sessions.router,
    adverse_events.router,
    outcomes.router,
    screening.router,
    catalogue.router,
    clinic.router,
    audit.router,
    account.router,
    analytics.router,
    research.router,
    imports.router,
    questionnaires.router,
    completion.router,
]
