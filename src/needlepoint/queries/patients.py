"""Finding patients: search by name or chart number, with pagination."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import patients, referrals
from needlepoint.domain.entities import Patient, Referral
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
    words = q.split()
    count, page = _search_statements(len(words), reader.conn.dialect.name == "sqlite")
    values: dict[str, object] = {"clinic_id": reader.clinic_id, "limit": limit, "offset": offset}
    for i, word in enumerate(words):
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        values[f"w{i}"] = f"%{escaped}%"
    rows = reader.conn.execute(page, values).all()
    found = [Patient(**dict(zip(_PATIENT_COLUMNS, r, strict=False))) for r in rows]
    if rows:  # the page carries the whole count: one pass over the matches, not two
        total = int(rows[0][-1])
    else:  # nothing here: nothing at all, or a page past the end
        total = reader.conn.execute(count, values).scalar_one() if offset else 0
    for patient in found:  # a result list shows each patient's record: audited as a read
        reader.note(AuditAction.RECORD_VIEWED, "patient", patient.id, patient.id)
    return Page(found, total, limit, offset)


_PATIENT_COLUMNS = tuple(patients.c.keys())  # a search row: these, then the total


@cache
def _search_statements(n_words: int, sqlite: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The count and the page of a search for `n_words` words, built once per shape and
    run with bound values (clinic_id, w0…, limit, offset)."""
    where: list[sa.ColumnElement[bool]] = [patients.c.clinic_id == sa.bindparam("clinic_id")]
    columns = (patients.c.given_name, patients.c.family_name, patients.c.mrn)
    # PostgreSQL: one string, the three joined by spaces, as its trigram index holds it
    # (migration 0022). A word holds no whitespace, so it is found in the joined string
    # exactly when it is found in one of the three.
    # a constant, not a parameter: the expression must be the index's
    space: sa.ColumnElement[str] = sa.literal_column("' '", sa.String)
    joined = patients.c.given_name + space + patients.c.family_name + space + patients.c.mrn
    for i in range(n_words):
        word: sa.BindParameter[str] = sa.bindparam(f"w{i}")
        # SQLite's LIKE already ignores case exactly as far as its lower() does (ASCII),
        # and without lower() the covering index answers the search; PostgreSQL needs ILIKE.
        where.append(
            sa.or_(*(c.like(word, escape="\\") for c in columns))
            if sqlite
            else joined.ilike(word, escape="\\")
        )
    count = sa.select(sa.func.count()).select_from(patients).where(*where)
    page = (
        sa.select(*patients.c, sa.func.count().over().label("total"))
        .where(*where)
        .order_by(patients.c.family_name, patients.c.given_name, patients.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
    )
    return count, page


def patient_emails(reader: Reader) -> set[str]:
    """The e-mail addresses of the clinic's patients, lower-cased (the demo's mailbox
    shows a clinic only the mail sent to its own patients)."""
    reader.require(Permission.READ_DEMOGRAPHICS)
    found = reader.conn.execute(
        sa.select(patients.c.email).where(
            patients.c.clinic_id == reader.clinic_id, patients.c.email.is_not(None)
        )
    )
    return {str(e).lower() for (e,) in found}


def get_patient(reader: Reader, patient_id: UUID) -> Patient:
    """One patient of the clinic (NotFound for other clinics' patients)."""
    reader.require(Permission.READ_DEMOGRAPHICS)
    return reader.one(Patient, patient_id, field="patient_id")


def referrals_of(reader: Reader, patient_id: UUID) -> list[Referral]:
    """The patient's referrals, the latest received first (the current referrer)."""
    reader.require(Permission.READ_DEMOGRAPHICS)
    return reader.select(
        Referral,
        referrals.c.patient_id == patient_id,
        order_by=(referrals.c.received_on.desc(), referrals.c.created_at.desc()),
    )
