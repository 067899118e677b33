"""A reader: the connection, clinic and role every query is scoped by.

The clinic's care-team rule (`domain.care_team`) is enforced here, for every query: a
record of health information opened by id (`one`) and a patient's clinical record opened
for its lists (`patient_record`) are refused to a clinician or student outside the
patient's care team when the clinic restricts records to the care team; no route or page
needs to remember it.

Every record of health information a query opens by id (`one`) is noted on the reader,
and `open_reader` writes one `record.viewed` audit event per record when the reading is
done (HIPAA 164.312(b): record-level, not per SQL statement). A refused read is recorded
as `access.denied`. The events are written after the read connection is closed, in one
short write transaction, so reads never hold the write lock."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.db.tables import (
    TABLE_OF,
    care_team_members,
    clinics,
    emergency_accesses,
    episodes,
    security_settings,
)
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.care_team import Standing, binds, check_access
from needlepoint.domain.entities import AuditEvent, Clinic, Entity, Patient, User
from needlepoint.domain.enums import AuditAction, AuditOutcome, Role
from needlepoint.domain.errors import NotFound, PermissionDenied
from needlepoint.domain.permissions import CARE_TEAM_RESTRICTED, Permission, require
from needlepoint.ports import UnitOfWork, UnitOfWorkFactory

E = TypeVar("E", bound=Entity)

# Kinds whose reading is not a read of health information.
_NOT_HEALTH_INFORMATION: frozenset[type[Any]] = frozenset({Clinic, User})


@dataclass(frozen=True, slots=True)
class Viewed:
    """One audited read: what was disclosed, of which patient, and how."""

    action: AuditAction
    entity_type: str
    entity_id: UUID
    patient_id: UUID | None
    outcome: AuditOutcome = AuditOutcome.SUCCESS


@dataclass(frozen=True, slots=True)
class Reader:
    conn: sa.Connection
    clinic_id: UUID
    role: Role
    user_id: UUID
    source: str = "api"
    request_id: str | None = None
    source_address: str | None = None
    viewed: dict[Viewed, None] = field(default_factory=dict)
    """What was read, each once, in the order first read (a dict: an ordered set)."""
    in_care: dict[UUID, None] = field(default_factory=dict)
    """Patients whose clinical record this reader was let into (each checked once)."""
    restricted: list[bool] = field(default_factory=list)
    """Whether the clinic restricts records to the care team (read once, when needed)."""
    opened: dict[object, Any] = field(default_factory=dict)
    """What this reader has already loaded, by key: a page's several queries share one
    read of the patient (and of the screenings) instead of repeating it."""

    def once(self, key: object, load: Callable[[], Any]) -> Any:
        """`load()`'s result, computed at most once per reader for `key`."""
        if key not in self.opened:
            self.opened[key] = load()
        return self.opened[key]

    def require(self, permission: Permission) -> None:
        """PermissionDenied unless the reader's role holds `permission`."""
        try:
            require(self.role, permission)
        except PermissionDenied:
            self.note(
                AuditAction.ACCESS_DENIED,
                permission.value,
                self.user_id,
                outcome=AuditOutcome.DENIED,
            )
            raise

    def note(
        self,
        action: AuditAction,
        entity_type: str,
        entity_id: UUID,
        patient_id: UUID | None = None,
        *,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
    ) -> None:
        """Remember a read (or disclosure) for the audit trail; each record once."""
        self.viewed.setdefault(Viewed(action, entity_type[:32], entity_id, patient_id, outcome))

    def select(self, kind: type[E], *where: Any, order_by: Any = None) -> list[E]:
        """Records of `kind` in the reader's clinic matching `where`."""
        table = TABLE_OF[kind]
        stmt = sa.select(table).where(table.c.clinic_id == self.clinic_id, *where)
        if order_by is not None:
            stmt = (
                stmt.order_by(*order_by) if isinstance(order_by, tuple) else stmt.order_by(order_by)
            )
        return [kind(**row._mapping) for row in self.conn.execute(stmt)]

    def select_by(self, kind: type[E], *, order_by: tuple[str, ...] = (), **equal: Any) -> list[E]:
        """Records of `kind` in the reader's clinic whose columns equal `equal`, ordered by
        column names (a leading "-" for descending). The statement is built once per shape
        and run with bound values: the hot reads skip building and hashing a new one."""
        stmt = _statement_by(TABLE_OF[kind], tuple(sorted(equal)), order_by)
        return self.select_statement(kind, stmt, equal)

    def select_statement(self, kind: type[E], stmt: Any, values: dict[str, Any]) -> list[E]:
        """Records of `kind` read by a prepared statement whose `clinic_id` parameter the
        reader binds to its own clinic (with `values` for the others)."""
        rows = self.conn.execute(stmt, {**values, "clinic_id": self.clinic_id})
        return [kind(**row._mapping) for row in rows]

    def one(self, kind: type[E], id: UUID, *, field: str = "id") -> E:
        """The record with this id in the reader's clinic, or NotFound. Opening a record
        of health information is noted for the audit trail; a clinical record (anything
        of a patient's but their demographics) only under the care-team rule."""
        found: list[E] = self.once((kind, id), lambda: self.select_by(kind, id=id))
        if not found:
            raise NotFound(f"no {kind.__name__.lower()} {id} in this clinic", field=field)
        record = found[0]
        if kind not in _NOT_HEALTH_INFORMATION:
            patient = (
                record.id if isinstance(record, Patient) else getattr(record, "patient_id", None)
            )
            if patient is not None and not isinstance(record, Patient):
                self.require_care_team(patient)
            self.note(AuditAction.RECORD_VIEWED, kind.__name__.lower(), id, patient)
        return record

    def patient_record(self, patient_id: UUID) -> Patient:
        """Open a patient's clinical record (to list their episodes, notes, outcomes,
        screenings …): the READ_CLINICAL permission, the patient in this clinic, and the
        care-team rule."""
        self.require(Permission.READ_CLINICAL)
        patient = self.one(Patient, patient_id, field="patient_id")
        self.require_care_team(patient.id)
        return patient

    def restricts_to_care_team(self) -> bool:
        """Whether the clinic restricts clinical records to the care team (read once)."""
        if not self.restricted:
            self.restricted.append(_restricts(self.conn, self.clinic_id))
        return self.restricted[0]

    def require_care_team(self, patient_id: UUID) -> None:
        """PermissionDenied (noted as `access.denied`, naming the patient) when the
        clinic restricts clinical records to the care team and the reader is outside this
        patient's team without an unexpired emergency access (`domain.care_team`). No
        query for the owner; one per reader while the clinic does not restrict."""
        if patient_id in self.in_care:
            return
        # The role first: no query at all for the owner and the roles it never binds.
        if self.role in CARE_TEAM_RESTRICTED and binds(self.role, self.restricts_to_care_team()):
            try:
                check_access(care_standing(self.conn, self.clinic_id, self.user_id, patient_id))
            except PermissionDenied:
                self.note(
                    AuditAction.ACCESS_DENIED,
                    "care_team",
                    patient_id,
                    patient_id,
                    outcome=AuditOutcome.DENIED,
                )
                raise
        self.in_care[patient_id] = None

    def clinic(self) -> Clinic:
        """The reader's own clinic, with its settings (not health information)."""
        row = self.conn.execute(sa.select(clinics).where(clinics.c.id == self.clinic_id)).one()
        return Clinic(**row._mapping)

    def audit_events(self, uow: UnitOfWork) -> list[AuditEvent]:
        """The audit events of what was read, stamped now (the unit of work's clock)."""
        now = uow.now()
        return [
            AuditEvent(
                id=uow.new_id(),
                clinic_id=self.clinic_id,
                action=v.action,
                entity_type=v.entity_type,
                entity_id=v.entity_id,
                occurred_at=now,
                source=self.source,
                actor_user_id=self.user_id,
                patient_id=v.patient_id,
                request_id=self.request_id,
                outcome=v.outcome,
                source_address=self.source_address,
            )
            for v in self.viewed
        ]


def _restricts(conn: sa.Connection, clinic_id: UUID) -> bool:
    found = conn.execute(
        sa.select(security_settings.c.care_team_restriction).where(
            security_settings.c.clinic_id == clinic_id
        )
    ).scalar()
    return bool(found)


def care_standing(
    conn: sa.Connection,
    clinic_id: UUID,
    user_id: UUID,
    patient_id: UUID,
    *,
    now: datetime | None = None,
) -> Standing:
    """Where a user stands with a patient's record (`domain.care_team.Standing`), in one
    query: the responsible clinician of one of the patient's episodes or a named member
    of the team; an unexpired emergency access; whether the patient has a team at all."""
    when = now or datetime.now(UTC)
    is_member = sa.or_(
        sa.exists().where(
            episodes.c.clinic_id == clinic_id,
            episodes.c.patient_id == patient_id,
            episodes.c.clinician_id == user_id,
        ),
        sa.exists().where(
            care_team_members.c.clinic_id == clinic_id,
            care_team_members.c.patient_id == patient_id,
            care_team_members.c.user_id == user_id,
        ),
    )
    has_emergency = sa.exists().where(
        emergency_accesses.c.clinic_id == clinic_id,
        emergency_accesses.c.patient_id == patient_id,
        emergency_accesses.c.user_id == user_id,
        emergency_accesses.c.expires_at > when,
    )
    team_exists = sa.or_(
        sa.exists().where(episodes.c.clinic_id == clinic_id, episodes.c.patient_id == patient_id),
        sa.exists().where(
            care_team_members.c.clinic_id == clinic_id,
            care_team_members.c.patient_id == patient_id,
        ),
    )
    row = conn.execute(sa.select(is_member, has_emergency, team_exists)).one()
    return Standing(member=bool(row[0]), emergency=bool(row[1]), team_exists=bool(row[2]))


ReadSink = Callable[[Sequence[AuditEvent]], None]
"""Where a reader's audit events go: the web app's queue (`web.deferred_writes`), so
a page view never waits for the write lock; by default they are written at once."""


def record_reads(
    engine: sa.Engine,
    reader: Reader,
    sink: ReadSink | None = None,
    unit_of_work: UnitOfWorkFactory = SqlUnitOfWork,
) -> None:
    """Write the reader's noted reads as audit events (in one transaction, through a unit
    of work from `unit_of_work`), or hand them to `sink`."""
    if not reader.viewed:
        return
    uow = unit_of_work(engine)
    events = reader.audit_events(uow)
    if sink is not None:
        sink(events)
    else:
        with uow:
            for event in events:
                uow.add(event)
            uow.commit()
    reader.viewed.clear()


@cache
def _statement_by(table: sa.Table, columns: tuple[str, ...], order_by: tuple[str, ...]) -> Any:
    """SELECT of a clinic's rows of `table` with `columns` equal to bound values."""
    stmt = sa.select(table).where(
        table.c.clinic_id == sa.bindparam("clinic_id"),
        *(table.c[name] == sa.bindparam(name) for name in columns),
    )
    return stmt.order_by(
        *(table.c[o[1:]].desc() if o.startswith("-") else table.c[o] for o in order_by)
    )


@contextmanager
def open_reader(
    engine: sa.Engine,
    clinic_id: UUID,
    role: Role,
    user_id: UUID,
    *,
    source: str = "api",
    request_id: str | None = None,
    source_address: str | None = None,
    sink: ReadSink | None = None,
    unit_of_work: UnitOfWorkFactory = SqlUnitOfWork,
) -> Iterator[Reader]:
    """A reader of one clinic; what it opened is on the audit trail when it closes
    (also when the reading fails part-way, e.g. a refused read), after its connection
    is returned: a read never holds a connection while its audit events are written
    (by `sink`, or through a unit of work from `unit_of_work`)."""
    reader: Reader | None = None
    try:
        with engine.connect() as conn:
            scope_to_clinic(conn, clinic_id)  # row-level security: this clinic only
            reader = Reader(conn, clinic_id, role, user_id, source, request_id, source_address)
            yield reader
    finally:
        if reader is not None:
            record_reads(engine, reader, sink, unit_of_work)
