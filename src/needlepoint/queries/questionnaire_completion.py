"""How many of the questionnaires a clinic asked for were answered (issue 16): one row
per questionnaire that was due (not withdrawn, its due date reached in the clinic's
local date), with whether the patient submitted it. Only a submitted response counts as
completed: answers saved but never sent are not data. Aggregate figures for the analytics
page; they name no patient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import (
    episodes,
    questionnaire_assignments,
    questionnaire_responses,
    users,
)
from needlepoint.domain.enums import TimePoint
from needlepoint.domain.instruments import library
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader
from needlepoint.queries.screening import patient_consents


@dataclass(frozen=True, slots=True)
class AskedQuestionnaire:
    """One questionnaire that was due: what, when, whose patient, and whether submitted."""

    instrument_id: str
    time_point: TimePoint
    due_on: date
    discharged_on: date | None
    clinician_id: UUID
    clinician_name: str
    submitted: bool


def asked_questionnaires(reader: Reader, today: date) -> list[AskedQuestionnaire]:
    """Every questionnaire of the clinic due on or before `today` and not withdrawn by
    the clinic, with its episode's clinician; `submitted` only for a response the patient
    sent (a submitted response row), never for answers merely saved."""
    reader.require(Permission.READ_CLINICAL)
    a, r, e, u = questionnaire_assignments, questionnaire_responses, episodes, users
    sent = (
        sa.select(r.c.id)
        .where(
            r.c.clinic_id == a.c.clinic_id,
            r.c.assignment_id == a.c.id,
            r.c.submitted_at.is_not(None),
        )
        .exists()
    )
    stmt = (
        sa.select(
            a.c.instrument_id,
            a.c.time_point,
            a.c.due_on,
            e.c.closed_on,
            e.c.clinician_id,
            u.c.full_name,
            sent.label("submitted"),
        )
        .join(e, sa.and_(e.c.id == a.c.episode_id, e.c.clinic_id == a.c.clinic_id))
        .join(u, u.c.id == e.c.clinician_id)
        .where(
            a.c.clinic_id == reader.clinic_id,
            a.c.cancelled_at.is_(None),
            a.c.due_on <= today,
        )
    )
    return [
        AskedQuestionnaire(
            instrument_id=row.instrument_id,
            time_point=TimePoint(row.time_point),
            due_on=row.due_on,
            discharged_on=row.closed_on,
            clinician_id=row.clinician_id,
            clinician_name=row.full_name,
            submitted=bool(row.submitted),
        )
        for row in reader.conn.execute(stmt)
    ]


# -- the chart: what a patient has pending and overdue ---------------------------------------


@dataclass(frozen=True, slots=True)
class PendingQuestionnaire:
    """One questionnaire the patient has not answered yet, with its state in words."""

    instrument_id: str
    time_point: TimePoint
    due_on: date
    overdue_days: int
    words: str
    name: str = ""
    """The questionnaire's name (NDI: "Neck Disability Index")."""
    assignment_id: UUID | None = None
    """The assignment (for the chart's "Withdraw" button)."""


def due_words(due_on: date, today: date) -> tuple[int, str]:
    """How late a questionnaire is, in the clinic's dates: days overdue (0 when not) and
    words ("due today", "due in 3 days", "overdue by 2 days")."""
    days = (today - due_on).days
    if days > 0:
        return days, f"overdue by {days} day{'s' if days != 1 else ''}"
    if days == 0:
        return 0, "due today"
    return 0, f"due in {-days} day{'s' if days != -1 else ''}"


@dataclass(frozen=True, slots=True)
class ChartQuestionnaires:
    """The chart's questionnaire panel: pending ones, oldest due first, and withdrawn
    consents."""

    pending: list[PendingQuestionnaire]
    withdrawn: list[datetime]
    """When the patient's consents were withdrawn (by the patient through their link or by
    a clinician), newest first: from the consents the chart has already read."""


def chart_questionnaires(reader: Reader, patient_id: UUID, today: date) -> ChartQuestionnaires:
    """What the patient still has to answer (due date in the clinic's local date,
    "overdue" from it): one query; and when consents were withdrawn (the consents the
    chart reads anyway, shared through the reader)."""
    reader.patient_record(patient_id)
    a = questionnaire_assignments
    rows = reader.conn.execute(
        sa.select(a.c.id, a.c.instrument_id, a.c.time_point, a.c.due_on).where(
            a.c.clinic_id == reader.clinic_id,
            a.c.patient_id == patient_id,
            a.c.completed_at.is_(None),
            a.c.cancelled_at.is_(None),
        )
    )
    names = library()
    pending = []
    for row in rows:
        late, words = due_words(row.due_on, today)
        pending.append(
            PendingQuestionnaire(
                row.instrument_id,
                TimePoint(row.time_point),
                row.due_on,
                late,
                words,
                names[row.instrument_id].name if row.instrument_id in names else row.instrument_id,
                row.id,
            )
        )
    pending.sort(key=lambda p: (p.due_on, p.instrument_id))
    withdrawn = [
        c.withdrawn_at for c in patient_consents(reader, patient_id) if c.withdrawn_at is not None
    ]
    return ChartQuestionnaires(pending, withdrawn)
