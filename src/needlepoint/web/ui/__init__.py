"""The clinician's web app: server-rendered pages, one module per area of the clinic's
work. Every page reads through `queries/` and writes through `actions/` (the one write
path); domain errors are shown next to the field they name, with the input kept.

May import: actions, queries, domain, web.context, web.pages (sign-in state)."""

from __future__ import annotations

from fastapi import APIRouter

from needlepoint.web.ui import (
    accounts,
    analytics,
    care_team,
    chart,
    completion,
    consent,
    demo_mail,
    documents,
    episode_care,
    episodes,
    errors,
    note_signing,
    notes,
    patient_details,
    patient_questionnaires,
    patient_record,
    patients,
    progress,
    questionnaire_sending,
    screening,
    settings,
    signed_notes,
    templates_page,
)

routers: list[APIRouter] = [
    patients.router,  # before chart: /patients/new must not read as a patient id
    chart.router,
    patient_details.router,
    care_team.router,
    screening.router,
    consent.router,
    episodes.router,
    note_signing.router,  # before notes: /sessions/{id}/sign is not a note id
    notes.router,
    signed_notes.router,
    progress.router,
    settings.router,
    completion.router,  # before analytics: /analytics/completion
    analytics.router,
    accounts.router,
    errors.router,
    templates_page.router,
    episode_care.router,
    documents.router,
    questionnaire_sending.router,
    patient_record.router,  # before patient_questionnaires: /q/{token}/progress
    patient_questionnaires.router,
    demo_mail.router,
]
