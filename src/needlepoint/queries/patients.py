"""Finding patients: search by name or chart number, with pagination."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import patients
from needlepoint.domain.entities import Patient
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Patient]
    total: int
    limit: int
    offset: int


def search_patients(reader: Reader, q: str = "", *, limit: int = 25, offset: int = 0) -> Page:
    """Patients whose names or MRN contain every word of `q` (case-insensitive), by name."""
    reader.require(Permission.READ_DEMOGRAPHICS)
    where = [patients.c.clinic_id == reader.clinic_id]
    # SQLite's LIKE already ignores case exactly as far as its lower() does (ASCII), and
    # without lower() the covering index answers the search; PostgreSQL needs ILIKE.
    sqlite = reader.conn.dialect.name == "sqlite"
    for word in q.split():
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = (patients.c.given_name, patients.c.family_name, patients.c.mrn)
        where.append(
            sa.or_(
                *(
                    c.like(pattern, escape="\\") if sqlite else c.ilike(pattern, escape="\\")
                    for c in columns
                )
            )
        )
    total = reader.conn.execute(
        sa.select(sa.func.count()).select_from(patients).where(*where)
    ).scalar_one()
    rows = reader.conn.execute(
        sa.select(patients)
        .where(*where)
        .order_by(patients.c.family_name, patients.c.given_name, patients.c.id)
        .limit(limit)
        .offset(offset)
    )
    found = [Patient(**r._mapping) for r in rows]
    for patient in found:  # a result list shows each patient's record: audited as a read
        reader.note(AuditAction.RECORD_VIEWED, "patient", patient.id, patient.id)
    return Page(found, total, limit, offset)


def get_patient(reader: Reader, patient_id: UUID) -> Patient:
    """One patient of the clinic (NotFound for other clinics' patients)."""
    reader.require(Permission.READ_DEMOGRAPHICS)
    return reader.one(Patient, patient_id, field="patient_id")
