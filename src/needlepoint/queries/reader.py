"""A reader: the connection, clinic and role every query is scoped by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import TABLE_OF, clinics
from needlepoint.domain.entities import Clinic, Entity
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import NotFound
from needlepoint.domain.permissions import Permission, require

E = TypeVar("E", bound=Entity)


@dataclass(frozen=True, slots=True)
class Reader:
    conn: sa.Connection
    clinic_id: UUID
    role: Role
    user_id: UUID

    def require(self, permission: Permission) -> None:
        """PermissionDenied unless the reader's role holds `permission`."""
        require(self.role, permission)

    def select(self, kind: type[E], *where: Any, order_by: Any = None) -> list[E]:
        """Records of `kind` in the reader's clinic matching `where`."""
        table = TABLE_OF[kind]
        stmt = sa.select(table).where(table.c.clinic_id == self.clinic_id, *where)
        if order_by is not None:
            stmt = (
                stmt.order_by(*order_by) if isinstance(order_by, tuple) else stmt.order_by(order_by)
            )
        return [kind(**row._mapping) for row in self.conn.execute(stmt)]

    def one(self, kind: type[E], id: UUID, *, field: str = "id") -> E:
        """The record with this id in the reader's clinic, or NotFound."""
        table = TABLE_OF[kind]
        found = self.select(kind, table.c.id == id)
        if not found:
            raise NotFound(f"no {kind.__name__.lower()} {id} in this clinic", field=field)
        return found[0]

    def clinic(self) -> Clinic:
        """The reader's own clinic, with its settings."""
        row = self.conn.execute(sa.select(clinics).where(clinics.c.id == self.clinic_id)).one()
        return Clinic(**row._mapping)
