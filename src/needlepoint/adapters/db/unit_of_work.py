"""Units of work: the one door through which actions write.

An action stages its changes (`add`, `replace`, `delete`) and commits once. Two
implementations share the staging logic:

* `SqlUnitOfWork` — one database transaction per action (the product's path).
* `BulkUnitOfWork` — runs the *same* action code, but keeps committed changes in memory
  and writes them in large batches (`flush`); used by the synthetic clinic generator,
  whose output a test proves identical to the per-action path.

Reads are always scoped to the acting clinic: a record of another clinic is reported
exactly as a missing one."""

from __future__ import annotations

import functools
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import orjson
import sqlalchemy as sa

from needlepoint.adapters.db.analytics_marks import mark_changes
from needlepoint.adapters.db.engine import WRITE_OPTION, scope_to_clinic
from needlepoint.adapters.db.tables import TABLE_OF, audit_chain_heads, metadata
from needlepoint.domain.audit import GENESIS, content_digest, link_hash
from needlepoint.domain.entities import AuditEvent, Clinic, Entity, TrainingRecord, User
from needlepoint.domain.errors import InvalidInput, StaleVersion

E = TypeVar("E", bound=Entity)

Clock = Callable[[], datetime]
IdSource = Callable[[], UUID]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


# Which field a unique constraint protects, for a clear 422 instead of a database error.
UNIQUE_FIELDS: dict[tuple[str, frozenset[str]], tuple[str, str]] = {
    ("patients", frozenset({"clinic_id", "mrn"})): (
        "mrn",
        "a patient with this chart number (MRN) already exists in the clinic",
    ),
    ("users", frozenset({"clinic_id", "email"})): (
        "email",
        "a user with this email already exists in the clinic",
    ),
}


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind)) for kind in TABLE_OF
}


def to_row(entity: Entity) -> dict[str, Any]:
    """The entity as a column → value mapping."""
    return {name: getattr(entity, name) for name in _FIELD_NAMES[type(entity)]}


def _clinic_of(entity: Entity) -> UUID:
    return entity.id if isinstance(entity, Clinic) else entity.clinic_id


class UnitOfWork(ABC):
    """One action's transaction. Use as a context manager; call `commit()` once."""

    def __init__(self, clock: Clock = system_clock, ids: IdSource = uuid.uuid4) -> None:
        self.now = clock
        self.new_id = ids
        self._adds: dict[UUID, Entity] = {}
        self._replaces: dict[UUID, tuple[Entity, Entity]] = {}
        self._deletes: dict[UUID, Entity] = {}
        self._denials: list[AuditEvent] = []
        self._active = False

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._active:
            raise RuntimeError("unit of work already in use")
        self._active = True
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._active:
                self.rollback()
        finally:
            self._active = False

    def commit(self) -> None:
        """Make every staged change permanent, atomically."""
        try:
            self._persist(
                list(self._deletes.values()),
                [*self._adds.values(), *self._denials],
                list(self._replaces.values()),
            )
        except BaseException:
            self.rollback()
            raise
        self._clear()
        self._denials.clear()
        self._active = False

    def rollback(self) -> None:
        """Discard every staged change."""
        self._clear()
        self._abort()
        self._active = False

    def _clear(self) -> None:
        self._adds.clear()
        self._replaces.clear()
        self._deletes.clear()

    # -- staging --------------------------------------------------------------------------
    def add(self, entity: Entity) -> None:
        """Stage a new record."""
        self._require_active()
        self._adds[entity.id] = entity

    def replace(self, old: E, new: E) -> None:
        """Stage a change of `old` into `new`; fails at commit if `old.version` is stale."""
        self._require_active()
        if old.id != new.id:
            raise ValueError("replace() must keep the record's id")
        if old.id in self._adds:  # changed within the same action: still one insert
            self._adds[old.id] = new
        elif old.id in self._replaces:
            self._replaces[old.id] = (self._replaces[old.id][0], new)
        else:
            self._replaces[old.id] = (old, new)

    def delete(self, entity: Entity) -> None:
        """Stage removal of a record (only drafts' children are ever deleted)."""
        self._require_active()
        if self._adds.pop(entity.id, None) is None:
            self._deletes[entity.id] = entity

    def get(self, kind: type[E], id: UUID, clinic_id: UUID) -> E | None:
        """The record of this kind and id in this clinic, or None."""
        self._require_active()
        if id in self._deletes:
            return None
        staged = self._adds.get(id) or (self._replaces[id][1] if id in self._replaces else None)
        if staged is not None:
            found: Entity | None = staged
        else:
            found = self._load(kind, id)
        if not isinstance(found, kind) or _clinic_of(found) != clinic_id:
            return None
        return found

    def record_denial(self, event: AuditEvent) -> None:
        """Stage the audit event of a refused attempt: it is written even though the
        action's own changes are rolled back (see `_abort`)."""
        self._require_active()
        self._denials.append(event)

    def _require_active(self) -> None:
        if not self._active:
            raise RuntimeError("unit of work used outside its `with` block")

    # -- storage --------------------------------------------------------------------------
    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _abort(self) -> None: ...

    @abstractmethod
    def _load(self, kind: type[E], id: UUID) -> E | None: ...

    @abstractmethod
    def list_by(self, kind: type[E], clinic_id: UUID, **equals: Any) -> list[E]:
        """Records of `kind` in the clinic whose columns equal the given values."""

    @abstractmethod
    def _persist(
        self,
        deletes: list[Entity],
        adds: list[Entity],
        replaces: list[tuple[Entity, Entity]],
    ) -> None: ...


_TABLE_ORDER = {t.name: i for i, t in enumerate(metadata.sorted_tables)}


@functools.cache
def _by_id(table: sa.Table) -> sa.Select[Any]:
    return sa.select(table).where(table.c.id == sa.bindparam("id"))


@functools.cache
def _by_columns(table: sa.Table, columns: tuple[str, ...]) -> sa.Select[Any]:
    return sa.select(table).where(
        table.c.clinic_id == sa.bindparam("clinic_id"),
        *(table.c[c] == sa.bindparam(c) for c in columns),
    )


def _select_by_id(conn: sa.Connection, kind: type[E], id: UUID) -> E | None:
    row = conn.execute(_by_id(TABLE_OF[kind]), {"id": id}).mappings().first()
    return kind(**row) if row is not None else None


def _select_by_columns(
    conn: sa.Connection, kind: type[E], clinic_id: UUID, equals: dict[str, Any]
) -> list[E]:
    stmt = _by_columns(TABLE_OF[kind], tuple(equals))
    return [
        kind(**row) for row in conn.execute(stmt, {"clinic_id": clinic_id, **equals}).mappings()
    ]


def _in_dependency_order(adds: Iterable[Entity]) -> list[Entity]:
    return sorted(adds, key=lambda ent: _TABLE_ORDER[TABLE_OF[type(ent)].name])


@dataclass(frozen=True)
class _InsertPlan:
    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_INSERT_PLANS: dict[tuple[str, str], _InsertPlan] = {}


def _insert_plan(dialect: sa.Dialect, table: sa.Table) -> _InsertPlan:
    """The compiled INSERT of every column of `table`, with each column type's own bind
    processor: the values reach the driver exactly as SQLAlchemy would send them, without
    its per-row bookkeeping (which costs more than the insert itself in bulk)."""
    key = (dialect.name, table.name)
    plan = _INSERT_PLANS.get(key)
    if plan is None:
        compiled = sa.insert(table).compile(dialect=dialect)
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(table.c.keys())
        plan = _INSERT_PLANS[key] = _InsertPlan(
            sql=str(compiled),
            columns=names,
            processors=tuple(
                table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names
            ),
        )
    return plan


PreparedRows = list[tuple[str, list[Any]]]
"""Rows ready for the driver: (table name, rows) in foreign-key order."""


def prepare_inserts(dialect: sa.Dialect, adds: list[Entity]) -> PreparedRows:
    """Records as driver-ready rows, table by table in foreign-key order. Pure CPU work:
    the synthetic clinic generator runs it in worker processes."""
    by_table: dict[str, list[Entity]] = {}
    for ent in _in_dependency_order(adds):
        by_table.setdefault(TABLE_OF[type(ent)].name, []).append(ent)
    prepared: PreparedRows = []
    for name, ents in by_table.items():
        plan = _insert_plan(dialect, metadata.tables[name])
        pairs = list(zip(plan.columns, plan.processors, strict=True))
        rows: list[Any] = []
        # The chain's costly half, done wherever the rows are prepared (even in a worker
        # process): until linked, an audit event's `hash` holds its content digest.
        digest_at = plan.columns.index("hash") if name == _AUDIT else -1
        for ent in ents:
            values = [
                proc(getattr(ent, col)) if proc is not None else getattr(ent, col)
                for col, proc in pairs
            ]
            if digest_at >= 0 and not values[digest_at]:
                values[digest_at] = content_digest(ent)  # type: ignore[arg-type]
            rows.append(
                tuple(values)
                if dialect.positional
                else dict(zip(plan.columns, values, strict=True))
            )
        prepared.append((name, rows))
    return prepared


_AUDIT = "audit_events"


@functools.cache
def _head_sql(dialect: sa.Dialect) -> str:
    """The chain head's SELECT in the driver's SQL: its parameter is a clinic id already
    processed for the driver (as prepared rows hold it)."""
    h = audit_chain_heads
    stmt = sa.select(h.c.last_seq, h.c.last_hash).where(h.c.clinic_id == sa.bindparam("clinic_id"))
    if dialect.name != "sqlite":
        # Writers of one clinic append in turn: the second waits here, then reads the
        # head the first committed. (SQLite's BEGIN IMMEDIATE already serialises them.)
        stmt = stmt.with_for_update()
    return str(stmt.compile(dialect=dialect))


def link_audit_chain(conn: sa.Connection, prepared: PreparedRows) -> None:
    """Give prepared audit events their places in their clinics' chains, in order.

    Reads (and on PostgreSQL locks) each clinic's chain head: one small query per clinic
    per transaction. Run it before the transaction writes or locks anything else, so
    that every writer takes the chain lock first (no deadlocks). Rows already linked are
    left alone; the database trigger refuses any row that does not extend the chain.

    PostgreSQL: only the locks are taken here. The rows keep their content digests, and
    `write_prepared` hands them to the database's append function, which links them
    itself (the application role may not insert audit rows directly)."""
    dialect = conn.dialect
    for i, (name, rows) in enumerate(prepared):
        if name != _AUDIT or not rows:
            continue
        if dialect.name == "postgresql":
            for clinic in dict.fromkeys(row["clinic_id"] for row in rows):
                conn.exec_driver_sql(_head_sql(dialect), {"clinic_id": clinic}).first()
            continue
        cols = _insert_plan(dialect, metadata.tables[_AUDIT]).columns
        # Driver rows are tuples (positional paramstyle) or dicts: address both by index.
        keys: dict[str, Any] = (
            {c: cols.index(c) for c in cols} if dialect.positional else {c: c for c in cols}
        )
        k_clinic, k_seq, k_prev, k_hash = (
            keys[c] for c in ("clinic_id", "seq", "prev_hash", "hash")
        )
        heads: dict[Any, tuple[int, str]] = {}
        linked: list[Any] = []
        for row in rows:
            if row[k_seq]:
                linked.append(row)
                continue
            clinic = row[k_clinic]
            if clinic not in heads:
                params = (clinic,) if dialect.positional else {"clinic_id": clinic}
                found = conn.exec_driver_sql(_head_sql(dialect), params).first()
                heads[clinic] = (found[0], found[1]) if found else (0, GENESIS)
            seq, prev = heads[clinic]
            seq += 1
            chained = link_hash(prev, seq, row[k_hash])
            heads[clinic] = (seq, chained)
            values = list(row) if dialect.positional else dict(row)
            values[k_seq], values[k_prev], values[k_hash] = seq, prev, chained
            linked.append(tuple(values) if dialect.positional else values)
        prepared[i] = (name, linked)


_MULTI_ROW_PARAMS = 50
"""A table's rows go to PostgreSQL as one multi-row INSERT when they need at most this
many parameters (psycopg caches the parsing of such statements only); otherwise (the
generator's batches, a note's needling sites) as one executemany, which psycopg
pipelines."""


@functools.cache
def _multi_row_sql(dialect: sa.Dialect, table_name: str, n: int) -> str:
    """INSERT of `n` rows in one statement, its bind names `r{i}_{column}`, typed (and
    cast) as the single-row plan's are."""
    table = metadata.tables[table_name]
    columns = _insert_plan(dialect, table).columns
    rows = [
        {c: sa.bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in columns} for i in range(n)
    ]
    return str(sa.insert(table).values(rows).compile(dialect=dialect))


APPEND_AUDIT_SQL = "SELECT needlepoint_append_audit_events(%(events)s::jsonb)"
"""PostgreSQL's one way for the application to write audit events (migration 0010): the
function computes each event's place and hash in its clinic's chain."""


def _append_audit_events(conn: sa.Connection, rows: list[Any]) -> None:
    """Audit events to PostgreSQL's append function, in one call: their `hash` holds
    their content digests, the function links them."""
    conn.exec_driver_sql(
        APPEND_AUDIT_SQL, {"events": orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS).decode()}
    )


def write_prepared(conn: sa.Connection, prepared: PreparedRows, *, linked: bool = False) -> None:
    """Insert prepared rows, table by table (audit events linked first, unless `linked`
    says `link_audit_chain` already ran), with `exec_driver_sql` (SQLAlchemy's events
    see every statement; no per-row bookkeeping). SQLite: one executemany per table (in
    process, no round trips). PostgreSQL: a table's few rows as one multi-row INSERT
    (one round trip), larger batches as one executemany, which psycopg pipelines; audit
    events through the database's append function."""
    if not linked:
        link_audit_chain(conn, prepared)
    dialect = conn.dialect
    for name, rows in prepared:
        if name == _AUDIT and dialect.name == "postgresql":
            if rows:
                _append_audit_events(conn, rows)
        elif (
            not dialect.positional
            and len(rows) > 1
            and len(rows) * len(rows[0]) <= _MULTI_ROW_PARAMS
        ):
            params = {f"r{i}_{c}": v for i, row in enumerate(rows) for c, v in row.items()}
            conn.exec_driver_sql(_multi_row_sql(dialect, name, len(rows)), params)
        elif len(rows) == 1:
            conn.exec_driver_sql(_insert_plan(dialect, metadata.tables[name]).sql, rows[0])
        elif rows:
            conn.exec_driver_sql(_insert_plan(dialect, metadata.tables[name]).sql, rows)


def _insert_grouped(conn: sa.Connection, adds: list[Entity]) -> None:
    write_prepared(conn, prepare_inserts(conn.dialect, adds))


def _update_versioned(conn: sa.Connection, old: Entity, new: Entity) -> None:
    table = TABLE_OF[type(new)]
    stmt = sa.update(table).where(table.c.id == old.id)
    if "version" in table.c:
        stmt = stmt.where(table.c["version"] == getattr(old, "version", None))
    values = {k: v for k, v in to_row(new).items() if k != "id"}
    result = conn.execute(stmt.values(values))
    if result.rowcount != 1:
        raise StaleVersion(
            f"{type(new).__name__.lower()} {new.id} was changed by someone else; "
            "reload it and apply your change again",
            field="version",
        )


def _unique_violation(exc: sa.exc.IntegrityError) -> InvalidInput | None:
    text = str(exc.orig)
    # SQLite: "UNIQUE constraint failed: patients.clinic_id, patients.mrn"
    m = re.search(r"UNIQUE constraint failed: (.+)", text)
    if m:
        cols = [c.strip().split(".") for c in m.group(1).split(",")]
        key = (cols[0][0], frozenset(c[1] for c in cols))
    else:
        # PostgreSQL: the constraint name follows the naming convention in tables.py.
        name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or ""
        key = next(
            (
                k
                for k in UNIQUE_FIELDS
                if name.startswith(f"uq_{k[0]}_") or name == f"{k[0]}_{'_'.join(sorted(k[1]))}_key"
            ),
            ("", frozenset()),
        )
    if key in UNIQUE_FIELDS:
        field, message = UNIQUE_FIELDS[key]
        return InvalidInput(message, field=field)
    return None


CredentialCheck = Callable[[sa.Connection], Iterable[Entity]]
"""Re-checks, inside a write transaction, who is acting (an API token or a web session:
still valid, its user still active) and returns the records it read (the user and their
clinic), which the transaction then uses instead of reading them again. Raises a
`DomainError` when the credential no longer holds: nothing is written."""


class SqlUnitOfWork(UnitOfWork):
    """One action, one database transaction (SQLite: `BEGIN IMMEDIATE`)."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock = system_clock,
        ids: IdSource = uuid.uuid4,
        *,
        check: CredentialCheck | None = None,
    ) -> None:
        """`check`: run first in every transaction of this unit of work (see
        `CredentialCheck`), so that authorisation and the write share one transaction:
        a token revoked or a user deactivated while this request waited for a lock is
        seen, and the write refused."""
        super().__init__(clock, ids)
        self.engine = engine
        self._check = check
        self._known: dict[UUID, Entity] = {}
        self._conn: sa.Connection | None = None
        self._scope: UUID | None = None

    @property
    def connection(self) -> sa.Connection:
        """The open transaction's connection."""
        if self._conn is None:
            raise RuntimeError("no open transaction")
        return self._conn

    def _begin(self) -> None:
        self._conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
        self._scope = None
        try:
            self._conn.begin()
            if self._check is not None:
                self._known = {e.id: e for e in self._check(self._conn)}
        except BaseException:
            self._conn.rollback()
            self._release()
            raise

    def _release(self) -> None:
        """End of the transaction: return the connection and forget what it read."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._known.clear()

    def _scope_to(self, clinic_id: UUID) -> None:
        # Row-level security: the transaction sees and writes only this clinic's rows.
        if self._scope != clinic_id:
            scope_to_clinic(self.connection, clinic_id)
            self._scope = clinic_id

    def get(self, kind: type[E], id: UUID, clinic_id: UUID) -> E | None:
        self._require_active()
        self._scope_to(clinic_id)
        return super().get(kind, id, clinic_id)

    def _abort(self) -> None:
        if self._conn is not None:
            self._conn.rollback()
        self._release()
        denials, self._denials = self._denials, []
        if denials:  # the refusal itself is recorded, in a transaction of its own
            with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
                conn.begin()
                scope_to_clinic(conn, denials[0].clinic_id)
                _insert_grouped(conn, list(denials))
                conn.commit()

    def _load(self, kind: type[E], id: UUID) -> E | None:
        known = self._known.get(id)
        if isinstance(known, kind):
            return known
        return _select_by_id(self.connection, kind, id)

    def list_by(self, kind: type[E], clinic_id: UUID, **equals: Any) -> list[E]:
        self._scope_to(clinic_id)
        loaded = _select_by_columns(self.connection, kind, clinic_id, equals)
        found = [f for f in loaded if f.id not in self._deletes]
        found = [self._replaces[f.id][1] if f.id in self._replaces else f for f in found]  # type: ignore[misc]
        found += [
            a
            for a in self._adds.values()
            if isinstance(a, kind)
            and _clinic_of(a) == clinic_id
            and all(getattr(a, c) == v for c, v in equals.items())
        ]
        return found

    def _persist(
        self,
        deletes: list[Entity],
        adds: list[Entity],
        replaces: list[tuple[Entity, Entity]],
    ) -> None:
        conn = self.connection
        first = next(iter([*adds, *deletes, *(new for _, new in replaces)]), None)
        if first is not None:
            self._scope_to(_clinic_of(first))
        try:
            prepared = prepare_inserts(conn.dialect, adds)
            audit: list[Any] = []
            if conn.dialect.name == "postgresql":
                # The clinic's chain head is locked last, by the append function, just
                # before the commit: writers of one clinic then queue only for the
                # append and the commit, not for each other's whole transaction. No
                # deadlock: after the chain lock a transaction takes only the analytics
                # mark's lock, in the same order for every writer.
                audit = [row for name, rows in prepared if name == _AUDIT for row in rows]
                prepared = [(name, rows) for name, rows in prepared if name != _AUDIT]
            else:  # SQLite: BEGIN IMMEDIATE already serialises the writers
                link_audit_chain(conn, prepared)
            for ent in deletes:
                table = TABLE_OF[type(ent)]
                conn.execute(sa.delete(table).where(table.c.id == ent.id))
            write_prepared(conn, prepared, linked=True)
            for old, new in replaces:
                _update_versioned(conn, old, new)
            if audit:
                _append_audit_events(conn, audit)
            mark_changes(conn, deletes, adds, replaces)  # the analytics' version, if changed
            conn.commit()
        except sa.exc.IntegrityError as exc:
            clear = _unique_violation(exc)
            if clear is not None:
                raise clear from exc
            raise
        self._release()


_INDEXED = ("patient_id", "session_id", "user_id", "episode_id")
"""The columns `BulkUnitOfWork.list_by` looks records up by."""


class BulkUnitOfWork(UnitOfWork):
    """Runs actions against an in-memory staging area; `flush()` writes all committed
    changes in one transaction with one executemany per table.

    Records of the kinds in `keep` (clinics, users and their training by default) stay
    readable after a flush; others are looked up in the database if an action asks for
    them later."""

    def __init__(
        self,
        engine: sa.Engine | None,
        clock: Clock = system_clock,
        ids: IdSource = uuid.uuid4,
        keep: tuple[type[Any], ...] = (Clinic, User, TrainingRecord),
    ) -> None:
        super().__init__(clock, ids)
        self.engine = engine
        self._keep = keep
        self._known: dict[UUID, Entity] = {}
        # Ids of known records by (kind, column, value), for `list_by` without a scan.
        self._index: dict[tuple[type[Any], str, Any], list[UUID]] = {}
        self._pending: dict[UUID, Entity] = {}
        self._pending_updates: dict[UUID, tuple[Entity, Entity]] = {}
        self.rows_written = 0

    def _begin(self) -> None:
        pass

    def _abort(self) -> None:
        pass

    def _load(self, kind: type[E], id: UUID) -> E | None:
        if id in self._known:
            found = self._known[id]
            return found if isinstance(found, kind) else None
        if self.engine is None:  # generating in memory only
            return None
        with self.engine.connect() as conn:
            return _select_by_id(conn, kind, id)

    def list_by(self, kind: type[E], clinic_id: UUID, **equals: Any) -> list[E]:
        """Records of `kind` known to this unit of work (written by its actions or
        preloaded); the bulk path never reads back what an earlier chunk wrote."""
        if not equals:
            raise NotImplementedError("the bulk path lists records by one of their columns")
        column, value = next(iter(equals.items()))
        found: list[E] = []
        for id in self._index.get((kind, column, value), []):
            ent = self._known.get(id)
            if (
                isinstance(ent, kind)
                and _clinic_of(ent) == clinic_id
                and all(getattr(ent, c) == v for c, v in equals.items())
            ):
                found.append(ent)
        staged = [
            a
            for a in self._adds.values()
            if isinstance(a, kind)
            and _clinic_of(a) == clinic_id
            and all(getattr(a, c) == v for c, v in equals.items())
        ]
        return found + staged

    def _remember(self, ent: Entity) -> None:
        if ent.id not in self._known:
            for column in _INDEXED:
                value = getattr(ent, column, None)
                if value is not None:
                    self._index.setdefault((type(ent), column, value), []).append(ent.id)
        self._known[ent.id] = ent

    def _persist(
        self,
        deletes: list[Entity],
        adds: list[Entity],
        replaces: list[tuple[Entity, Entity]],
    ) -> None:
        if deletes:
            raise NotImplementedError("the bulk path only creates records")
        for ent in adds:
            self._pending[ent.id] = ent
            self._remember(ent)
        for old, new in replaces:
            current = self._known.get(old.id)
            if current is not None and getattr(current, "version", None) != getattr(
                old, "version", None
            ):
                raise StaleVersion(f"{type(new).__name__} {new.id} is stale", field="version")
            self._known[new.id] = new
            if new.id in self._pending:
                self._pending[new.id] = new  # not yet written: the insert carries the change
            else:
                first = self._pending_updates.get(old.id, (old, new))[0]
                self._pending_updates[old.id] = (first, new)

    def preload(self, records: list[Entity]) -> None:
        """Make records written elsewhere readable by the actions run here."""
        for ent in records:
            self._remember(ent)

    def drain(self) -> tuple[list[Entity], list[tuple[Entity, Entity]]]:
        """Hand over every committed change (new records, changes to older ones) and
        forget them, keeping only the kinds in `keep` readable."""
        if self._active:
            raise RuntimeError("drain() inside an action")
        adds = list(self._pending.values())
        updates = list(self._pending_updates.values())
        self._pending.clear()
        self._pending_updates.clear()
        self._known = {k: v for k, v in self._known.items() if isinstance(v, self._keep)}
        self._index = {k: ids for k, ids in self._index.items() if issubclass(k[0], self._keep)}
        return adds, updates

    def flush(self, engine: sa.Engine | None = None) -> int:
        """Write every committed change in one transaction; return the rows written."""
        target = engine or self.engine
        if target is None:
            raise RuntimeError("no database to flush to")
        adds, updates = self.drain()
        if not adds and not updates:
            return 0
        with target.connect().execution_options(**{WRITE_OPTION: True}) as conn:
            conn.begin()
            _insert_grouped(conn, adds)
            for old, new in updates:
                _update_versioned(conn, old, new)
            mark_changes(conn, [], adds, updates)
            conn.commit()
        written = len(adds) + len(updates)
        self.rows_written += written
        return written
