"""The JSON API, version 1: one router per clinical area, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from needlepoint.web.api import episodes, outcomes, patients, sessions, users

router = APIRouter(prefix="/api/v1")
for module in (users, patients, episodes, sessions, outcomes):
    router.include_router(module.router)
