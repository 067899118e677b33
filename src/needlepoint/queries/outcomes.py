"""Measurements and analgesic use over time, and the one rule of which records count.

Only signed notes count (issue 13). A draft note is work in progress: its sites,
co-interventions, adverse events and measurements never feed a progress page, a benefit
summary, the clinic's analytics, an export or a CSV until the note is signed. What counts:

- sessions: signed ones (`SIGNED_ONLY`);
- a measurement recorded inside a note: when that note is signed;
- a measurement recorded on its own (`POST /measurements` without a session: a
  questionnaire, a return-to-work date, a GROC): it is a complete record from the moment it
  is recorded (its own action and audit event, no draft state), so it counts; linked to a
  session, it counts only once that session is signed;
- the analgesic log: entries are recorded on their own and count likewise.

An amendment appended to a signed note does not change what counts: the signed note's
records stay exactly as signed. Every read path that feeds outcomes uses `counted_sessions`
/ `counts_toward_outcomes` below (queries/benefits.py, analytics/dataset.py and this
module), so the rule lives in one place."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import measurements, medication_uses, sessions
from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.enums import SessionStatus
from needlepoint.queries.reader import Reader

#: The condition on `sessions` rows that count: signed notes only.
SIGNED_ONLY = sessions.c.status == SessionStatus.SIGNED


def counted_sessions(*where: Any) -> sa.Select[Any]:
    """The ids of signed sessions (optionally further filtered), for `IN` conditions."""
    return sa.select(sessions.c.id).where(SIGNED_ONLY, *where)


def counts_toward_outcomes(session_id: Any, *where: Any) -> sa.ColumnElement[bool]:
    """A record attached to `session_id` (a nullable column) counts when it belongs to no
    note or to a signed one."""
    return sa.or_(session_id.is_(None), session_id.in_(counted_sessions(*where)))


def patient_measurements(
    reader: Reader, patient_id: UUID, instrument_id: str | None = None
) -> list[Measurement]:
    """A patient's measurements that count (none from an unsigned draft note), oldest
    first, optionally of one instrument."""
    reader.patient_record(patient_id)
    where = [
        measurements.c.patient_id == patient_id,
        counts_toward_outcomes(
            measurements.c.session_id,
            sessions.c.clinic_id == reader.clinic_id,
            sessions.c.patient_id == patient_id,
        ),
    ]
    if instrument_id:
        where.append(measurements.c.instrument_id == instrument_id)
    return reader.select(
        Measurement, *where, order_by=(measurements.c.taken_at, measurements.c.instrument_id)
    )


def patient_medication(reader: Reader, patient_id: UUID) -> list[MedicationUse]:
    """A patient's analgesic-use log, oldest first (entries are recorded on their own, never
    inside a draft note, so all of them count)."""
    reader.patient_record(patient_id)
    return reader.select(
        MedicationUse,
        medication_uses.c.patient_id == patient_id,
        order_by=medication_uses.c.recorded_on,
    )
