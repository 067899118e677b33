"""Measurements and analgesic use over time."""

from __future__ import annotations

from uuid import UUID

from needlepoint.adapters.db.tables import measurements, medication_uses
from needlepoint.domain.entities import Measurement, MedicationUse, Patient
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


def patient_measurements(
    reader: Reader, patient_id: UUID, instrument_id: str | None = None
) -> list[Measurement]:
    """A patient's measurements, oldest first, optionally of one instrument."""
    reader.require(Permission.READ_CLINICAL)
    reader.one(Patient, patient_id, field="patient_id")
    where = [measurements.c.patient_id == patient_id]
    if instrument_id:
        where.append(measurements.c.instrument_id == instrument_id)
    return reader.select(
        Measurement, *where, order_by=(measurements.c.taken_at, measurements.c.instrument_id)
    )


def patient_medication(reader: Reader, patient_id: UUID) -> list[MedicationUse]:
    """A patient's analgesic-use log, oldest first."""
    reader.require(Permission.READ_CLINICAL)
    reader.one(Patient, patient_id, field="patient_id")
    return reader.select(
        MedicationUse,
        medication_uses.c.patient_id == patient_id,
        order_by=medication_uses.c.recorded_on,
    )
