"""Per-request context: who is asking (from a bearer token or the web session), and the
database handles an action or query needs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import sqlalchemy as sa
from fastapi import Depends, Header, HTTPException, Request

from needlepoint.actions.context import Actor
from needlepoint.adapters.db.tables import api_tokens, users
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.passwords import hash_api_token
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import StaleVersion, VersionRequired
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class RequestContext:
    engine: sa.Engine
    actor: Actor
    role: Role

    def uow(self) -> SqlUnitOfWork:
        """A unit of work for one action of this request."""
        return SqlUnitOfWork(self.engine)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A read-only view of the actor's clinic."""
        with self.engine.connect() as conn:
            yield Reader(conn, self.actor.clinic_id, self.role, self.actor.user_id)


def request_id(request: Request) -> str:
    """The id grouping this request's audit events (set by middleware)."""
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else uuid.uuid4().hex


def lookup_token(engine: sa.Engine, token: str) -> tuple[UUID, UUID, Role] | None:
    """(user id, clinic id, role) of an active user holding this unrevoked token."""
    stmt = (
        sa.select(users.c.id, users.c.clinic_id, users.c.role)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(
            api_tokens.c.token_hash == hash_api_token(token),
            api_tokens.c.revoked_at.is_(None),
            users.c.is_active.is_(True),
        )
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else (row.id, row.clinic_id, row.role)


def api_context(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> RequestContext:
    """The context of an API request, from its `Authorization: Bearer …` header."""
    engine: sa.Engine = request.app.state.engine
    unauthorized = HTTPException(
        401,
        "a valid API token is required (Authorization: Bearer …)",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if not authorization or not authorization.lower().startswith("bearer "):
        raise unauthorized
    found = lookup_token(engine, authorization[7:].strip())
    if found is None:
        raise unauthorized
    user_id, clinic_id, role = found
    actor = Actor(user_id, clinic_id, source="api", request_id=request_id(request))
    return RequestContext(engine, actor, role)


ApiContext = Annotated[RequestContext, Depends(api_context)]

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def etag(version: int) -> str:
    """The ETag of a record version."""
    return f'"{version}"'


def if_match(if_match: Annotated[str | None, Header()] = None) -> int:
    """The version an update is based on, from `If-Match` (required on every update)."""
    if if_match is None:
        raise VersionRequired(
            "send If-Match with the ETag you read, so a concurrent change is not overwritten",
            field="If-Match",
        )
    m = _ETAG.match(if_match)
    if m is None:
        raise StaleVersion(
            f"If-Match {if_match!r} is not a version of this record", field="If-Match"
        )
    return int(m.group(1))


IfMatch = Annotated[int, Depends(if_match)]
