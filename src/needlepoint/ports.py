"""What the application layer (`actions/`, `queries/`) needs from the outside world,
stated as interfaces. `adapters/` implements them; `bootstrap.py` chooses the
implementation (and mypy checks there that it satisfies the interface).

The unit of work is the one door through which an action writes: it stages records,
reads them back scoped to a clinic, and commits everything (the action's records and its
audit event) in one transaction, or nothing. Actions and queries import this interface,
never `adapters/db/unit_of_work.py` (an import-linter contract in pyproject.toml).

Structural typing (`typing.Protocol`): an implementation needs no import of this module,
so `adapters/` stays below the application layer; test doubles (a unit of work that
records what each commit carried) satisfy it the same way. This module imports nothing of
ours but `domain`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar
from uuid import UUID

from needlepoint.domain.entities import AuditEvent, Entity

if TYPE_CHECKING:
    import sqlalchemy as sa

E = TypeVar("E", bound=Entity)


class UnitOfWork(Protocol):
    """One action's transaction. Use as a context manager (`with uow:`); stage changes;
    call `commit()` once. Leaving the block without a commit discards every staged
    change, except refusals recorded with `record_denial` (written all the same)."""

    def now(self) -> datetime:
        """The clock of this unit of work (UTC)."""
        ...

    def new_id(self) -> UUID:
        """A new record id."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make every staged change permanent, atomically."""
        ...

    def rollback(self) -> None:
        """Discard every staged change."""
        ...

    def add(self, entity: Entity) -> None:
        """Stage a new record."""
        ...

    def replace(self, old: E, new: E) -> None:
        """Stage a change of `old` into `new`; the commit fails (`StaleVersion`) when
        `old.version` is no longer the stored one."""
        ...

    def delete(self, entity: Entity) -> None:
        """Stage removal of a record (only drafts' children are ever deleted)."""
        ...

    def get(self, kind: type[E], id: UUID, clinic_id: UUID) -> E | None:
        """The record of this kind and id in this clinic (staged changes included), or
        None: another clinic's record is reported exactly as a missing one."""
        ...

    def list_by(self, kind: type[E], clinic_id: UUID, **equals: Any) -> list[E]:
        """Records of `kind` in the clinic whose fields equal the given values."""
        ...

    def record_denial(self, event: AuditEvent) -> None:
        """Stage the audit event of a refused attempt: written even though the action's
        own changes are rolled back."""
        ...


class ConnectedUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also exposes its database and its open transaction's
    connection.

    Only sign-in needs it: the password hash is read and checked before the write
    transaction (argon2 is slow on purpose; SQLite has one write lock), and the login log
    (`adapters/db/logins.py`: lock-out counts and attempts, which also cover unknown
    accounts of no clinic) is read and written on the same transaction as the sign-in's
    audit event and web session."""

    @property
    def engine(self) -> sa.Engine:
        """The database, for reads outside the unit of work's transaction."""
        ...

    @property
    def connection(self) -> sa.Connection:
        """The open transaction's connection."""
        ...


UnitOfWorkFactory = Callable[["sa.Engine"], UnitOfWork]
"""Makes a unit of work over a database: one call per action."""
