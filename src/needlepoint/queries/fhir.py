"""The read side of the FHIR export: patients' records loaded for `adapters.fhir.mapping`,
one patient (`$everything`) or a page of patients at a time (the bulk export).

A page is read with one query per kind of record (`IN` the page's patients or sessions),
so a clinic is exported in a bounded number of queries per page and bounded memory.
Every export of a patient's record is noted on the reader as a disclosure
(`records.disclosed`, naming the patient), written to the audit trail when the reader
closes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle

from needlepoint.adapters.db.tables import (
    TABLE_OF,
    patients,
)
from needlepoint.adapters.fhir import mapping
from needlepoint.domain.care_team import binds
from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    Consent,
    Episode,
    Measurement,
    NeedlingSite,
    Patient,
    Session,
    TrainingRecord,
    User,
)
from needlepoint.domain.enums import AuditAction, AuditOutcome, Role, SessionStatus
from needlepoint.domain.errors import PermissionDenied
from needlepoint.domain.permissions import CARE_TEAM_RESTRICTED, Permission
from needlepoint.queries.reader import Reader

CLINICAL_STAFF = (Role.OWNER, Role.CLINICIAN, Role.STUDENT)


def _in(reader: Reader, kind: type[Any], column: str, ids: Sequence[UUID]) -> list[Any]:
    if not ids:
        return []
    table = TABLE_OF[kind]
    return reader.select(kind, table.c[column].in_(list(ids)))


def load_records(reader: Reader, page: Sequence[Patient]) -> list[mapping.PatientRecord]:
    """The records of these patients (of the reader's clinic), signed notes only."""
    ids = [p.id for p in page]
    by_patient: dict[UUID, dict[str, list[Any]]] = {p: defaultdict(list) for p in ids}

    def group(rows: list[Any], key: str) -> None:
        for row in rows:
            by_patient[row.patient_id][key].append(row)

    group(sorted(_in(reader, Episode, "patient_id", ids), key=lambda e: e.opened_on), "episodes")
    sessions = [
        s for s in _in(reader, Session, "patient_id", ids) if s.status == SessionStatus.SIGNED
    ]
    sessions.sort(key=lambda s: s.started_at)
    group(sessions, "sessions")
    signed = {s.id for s in sessions}
    session_ids = list(signed)
    sites: dict[UUID, list[NeedlingSite]] = defaultdict(list)
    for site in sorted(
        _in(reader, NeedlingSite, "session_id", session_ids), key=lambda x: x.position
    ):
        sites[site.session_id].append(site)
    amendments: dict[UUID, list[Amendment]] = defaultdict(list)
    for a in sorted(_in(reader, Amendment, "session_id", session_ids), key=lambda x: x.created_at):
        amendments[a.session_id].append(a)

    def not_in_a_draft(row: Any) -> bool:
        """Whether a record is not part of a draft note (a draft, and what was recorded
        in it, is not yet the record)."""
        return row.session_id is None or row.session_id in signed

    group(
        sorted(
            filter(not_in_a_draft, _in(reader, Measurement, "patient_id", ids)),
            key=lambda m: (m.taken_at, m.instrument_id),
        ),
        "measurements",
    )
    group(sorted(_in(reader, Consent, "patient_id", ids), key=lambda c: c.signed_at), "consents")
    group(
        sorted(
            filter(not_in_a_draft, _in(reader, AdverseEvent, "patient_id", ids)),
            key=lambda a: a.onset_at,
        ),
        "adverse_events",
    )
    records = []
    for p in page:
        found = by_patient[p.id]
        own_sessions = found["sessions"]
        records.append(
            mapping.PatientRecord(
                patient=p,
                episodes=found["episodes"],
                sessions=own_sessions,
                sites={s.id: sites.get(s.id, []) for s in own_sessions},
                amendments={s.id: amendments.get(s.id, []) for s in own_sessions},
                measurements=found["measurements"],
                consents=found["consents"],
                adverse_events=found["adverse_events"],
            )
        )
    return records


def practitioners(reader: Reader, user_ids: set[UUID] | None = None) -> list[mapping.Practitioner]:
    """The clinic's clinical staff with their training records (or just `user_ids`)."""
    if user_ids is None:
        staff = reader.select(
            User, TABLE_OF[User].c.role.in_(CLINICAL_STAFF), order_by=TABLE_OF[User].c.id
        )
    else:
        staff = _in(reader, User, "id", sorted(user_ids)) if user_ids else []
    training: dict[UUID, list[TrainingRecord]] = defaultdict(list)
    for t in _in(reader, TrainingRecord, "user_id", [u.id for u in staff]):
        training[t.user_id].append(t)
    return [
        mapping.Practitioner(u, sorted(training[u.id], key=lambda t: t.completed_on)) for u in staff
    ]


def note_disclosed(reader: Reader, what: str, entity_id: UUID, patient_id: UUID | None) -> None:
    """Record a disclosure of health information on the reader's audit trail."""
    reader.note(AuditAction.RECORDS_DISCLOSED, what, entity_id, patient_id)


def everything(reader: Reader, patient_id: UUID, base_url: str) -> mapping.Json:
    """`Patient/{id}/$everything`: a searchset Bundle of every resource of the patient's
    record, the practitioners it names and the questionnaires it answers."""
    patient = reader.patient_record(patient_id)  # permission, clinic, care team, audited
    record = load_records(reader, [patient])[0]
    note_disclosed(reader, "fhir_everything", patient.id, patient.id)
    resources: list[mapping.Json] = list(mapping.patient_resources(record))
    resources += [
        mapping.practitioner_resource(p) for p in practitioners(reader, record.staff_ids())
    ]
    resources += mapping.questionnaires_for(record.measurements)
    return bundle(resources, base_url)


def bundle(resources: Sequence[mapping.Json], base_url: str) -> mapping.Json:
    """A searchset Bundle of the resources, validated by the R4B Bundle model."""
    base = base_url.rstrip("/")
    found: mapping.Json = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
    Bundle.model_validate(found)
    return found


def require_clinic_export(reader: Reader) -> None:
    """A clinic-level export reads every patient's clinical record: the READ_CLINICAL
    permission, and not for a role the clinic's care-team restriction binds (it would
    disclose records outside the caller's care team)."""
    reader.require(Permission.READ_CLINICAL)
    if reader.role in CARE_TEAM_RESTRICTED and binds(reader.role, reader.restricts_to_care_team()):
        reader.note(
            AuditAction.ACCESS_DENIED,
            "fhir_bulk_export",
            reader.user_id,
            outcome=AuditOutcome.DENIED,
        )
        raise PermissionDenied(
            "this clinic restricts records to each patient's care team: a clinic-level "
            "export of every record is for the owner"
        )


def count_patients(reader: Reader) -> int:
    return int(
        reader.conn.execute(
            sa.select(sa.func.count()).where(patients.c.clinic_id == reader.clinic_id)
        ).scalar_one()
    )


def patient_page(reader: Reader, size: int, after: UUID | None = None) -> list[Patient]:
    """The clinic's next `size` patients by id after `after` (keyset paging: each page
    costs the same however far the export has gone)."""
    stmt = sa.select(patients).where(patients.c.clinic_id == reader.clinic_id)
    if after is not None:
        stmt = stmt.where(patients.c.id > after)
    rows = reader.conn.execute(stmt.order_by(patients.c.id).limit(size)).all()
    return [Patient(**row._mapping) for row in rows]
