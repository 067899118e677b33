"""Per-request context: who is asking (from a bearer token or the web session), and the
database handles an action or query needs."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import Depends, Header, HTTPException, Request, Response

from needlepoint.actions.context import Actor
from needlepoint.adapters.db.engine import CLINIC_SETTING
from needlepoint.adapters.db.logins import LoginAttempt, record_attempt
from needlepoint.adapters.db.statements import plan
from needlepoint.adapters.db.tables import (
    api_tokens,
    clinics,
    security_settings,
    users,
    web_sessions,
)
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.passwords import hash_api_token
from needlepoint.domain.entities import Clinic, User, WebSession
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import PermissionDenied, StaleVersion, VersionRequired
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader, open_reader


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
        a = self.actor
        with open_reader(
            self.engine,
            a.clinic_id,
            self.role,
            a.user_id,
            source=a.source,
            request_id=a.request_id,
            source_address=a.source_address,
        ) as reader:
            yield reader


def request_id(request: Request) -> str:
    """The id grouping this request's audit events (set by middleware)."""
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else uuid.uuid4().hex


PERMISSION_KEY = "x-permission"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires(permission: Permission) -> dict[str, Any]:
    """`openapi_extra` declaring the one permission a route needs (`x-permission` in the
    OpenAPI document). The action or query enforces it; the access-matrix test reads the
    declaration and checks every role against `domain.permissions.GRANTS`."""
    return {PERMISSION_KEY: permission.value}


_TOKEN_HOLDER = (
    sa.select(
        *(c.label(f"user_{c.name}") for c in users.c),
        *(c.label(f"clinic_{c.name}") for c in clinics.c),
        api_tokens.c.scopes,
    )
    .join(api_tokens, api_tokens.c.user_id == users.c.id)
    .join(clinics, clinics.c.id == users.c.clinic_id)
    .where(
        api_tokens.c.token_hash == sa.bindparam("token_hash"),
        api_tokens.c.revoked_at.is_(None),
        users.c.is_active.is_(True),
    )
)


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """The active user holding an API token, their clinic, and the token's scopes."""

    user: User
    clinic: Clinic
    scopes: str


# PostgreSQL writes: the same lookup inside the write transaction, setting its row-level
# security scope to the holder's clinic in the same statement (staff tables are outside
# row-level security, so the lookup needs no scope itself).
_TOKEN_HOLDER_SCOPING = _TOKEN_HOLDER.add_columns(
    sa.func.set_config(CLINIC_SETTING, sa.cast(users.c.clinic_id, sa.String), True).label("scope")
)


def lookup_token(conn: sa.Connection, token: str, *, begin: bool = False) -> TokenHolder | None:
    """Who holds this unrevoked token: one indexed query on a connection the request keeps
    for its action.

    By default outside any transaction (PostgreSQL: in autocommit, no BEGIN and ROLLBACK
    round trips; SQLite: a statement on the driver's cursor opens none). `begin=True` on
    PostgreSQL starts the action's transaction with the lookup, scoped to the holder's
    clinic (see `SqlUnitOfWork(scoped_to=…)`): a token revoked meanwhile cannot slip
    between the check and the write, and the scope costs no round trip of its own. If
    nobody holds the token, that transaction is rolled back."""
    params = {"token_hash": hash_api_token(token)}
    scoping = begin and conn.dialect.name != "sqlite"
    read = (
        plan(conn.dialect, "token_scoping", lambda: _TOKEN_HOLDER_SCOPING)
        if scoping
        else plan(conn.dialect, "token_holder", lambda: _TOKEN_HOLDER)
    )
    if scoping:
        conn.begin()
        rows = read.rows(conn, params)
        if not rows:
            conn.rollback()
    elif conn.dialect.name == "sqlite":
        rows = read.rows(conn, params)
    else:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            rows = read.rows(conn, params)
        finally:
            conn.execution_options(isolation_level=conn.default_isolation_level)
    if not rows:
        return None
    row = rows[0]
    return TokenHolder(
        user=User(**{c.name: row[f"user_{c.name}"] for c in users.c}),
        clinic=Clinic(**{c.name: row[f"clinic_{c.name}"] for c in clinics.c}),
        scopes=row["scopes"],
    )


class ApiCredentials:
    """The bearer token of an API request. Resolved to a user on first use, inside the
    endpoint's worker thread, so a request costs one thread hop, not two.

    The request keeps the connection it authenticated on for its action (one pool
    checkout, one liveness ping on PostgreSQL), and the action's first transaction is
    given the user and clinic just read rather than reading them again. `close()` (run
    by the `api_context` dependency when the request ends) returns the connection."""

    def __init__(
        self,
        engine: sa.Engine,
        token: str | None,
        request_id: str,
        *,
        writes: bool = False,
        address: str = "unknown",
    ) -> None:
        self._engine = engine
        self._token = token
        self._request_id = request_id
        self._writes = writes
        self._address = address
        self._context: RequestContext | None = None
        self._conn: sa.Connection | None = None
        self._known: tuple[User, Clinic] | None = None

    def _resolve(self) -> RequestContext:
        if self._context is None:
            holder = None
            if self._token:
                self._conn = self._engine.connect()
                holder = lookup_token(self._conn, self._token, begin=self._writes)
            if holder is None:
                self.close()
                self._log_refused()
                raise HTTPException(
                    401,
                    "a valid API token is required (Authorization: Bearer …)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            needed = "write" if self._writes else "read"
            if needed not in holder.scopes.split():
                raise PermissionDenied(f"this API token lacks the '{needed}' scope")
            actor = Actor(
                holder.user.id,
                holder.clinic.id,
                source="api",
                request_id=self._request_id,
                source_address=None if self._address == "unknown" else self._address,
            )
            self._context = RequestContext(self._engine, actor, holder.user.role)
            self._known = (holder.user, holder.clinic)
        return self._context

    def close(self) -> None:
        """Return the request's connection to the pool."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _log_refused(self) -> None:
        """An unknown or revoked token is a failed authentication attempt: logged (only
        on this failure path, so a valid request still costs one query)."""
        with self._engine.begin() as conn:
            record_attempt(
                conn,
                LoginAttempt(
                    occurred_at=datetime.now(UTC),
                    email="",
                    address=self._address,
                    succeeded=False,
                    reason="bad_api_token",
                    request_id=self._request_id,
                ),
            )

    @property
    def actor(self) -> Actor:
        """The authenticated user (401 when the token is missing or invalid)."""
        return self._resolve().actor

    @property
    def role(self) -> Role:
        return self._resolve().role

    def uow(self) -> SqlUnitOfWork:
        """A unit of work for one action of this request, on the request's connection."""
        context = self._resolve()
        known, self._known = self._known or (), None  # only the first action's reads
        scoped = self._conn is not None and self._conn.in_transaction()
        return SqlUnitOfWork(
            context.engine,
            connection=self._conn,
            known=known,
            scoped_to=context.actor.clinic_id if scoped else None,
        )

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A read-only view of the actor's clinic."""
        with self._resolve().reader() as r:
            yield r


async def api_context(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AsyncIterator[ApiCredentials]:
    """The caller of an API request, from its `Authorization: Bearer …` header.

    Every endpoint touches `actor`, `uow()` or `reader()` before doing anything, so an
    unauthenticated request is refused before any work. When the request ends, its
    connection goes back to the pool."""
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip() or None
    if token is None:  # refused before the body is even validated; costs no query
        raise HTTPException(
            401,
            "a valid API token is required (Authorization: Bearer …)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    credentials = ApiCredentials(
        request.app.state.engine,
        token,
        request_id(request),
        writes=request.method not in SAFE_METHODS,
        address=request.client.host if request.client else "unknown",
    )
    try:
        yield credentials
    finally:
        credentials.close()


ApiContext = Annotated[ApiCredentials, Depends(api_context)]

SESSION_COOKIE = "needlepoint_session"


@dataclass(frozen=True, slots=True)
class WebSignIn:
    """A browser's server-side session, with what the pages show about its user."""

    session: WebSession
    role: Role
    full_name: str
    clinic_name: str
    idle_timeout_minutes: int | None  # None: the clinic keeps the default policy


_SESSION_COLUMNS = list(web_sessions.c)
_WEB_SESSION = (
    sa.select(
        *_SESSION_COLUMNS,
        users.c.role,
        users.c.full_name,
        clinics.c.name.label("clinic_name"),
        security_settings.c.idle_timeout_minutes,
    )
    .join(users, users.c.id == web_sessions.c.user_id)
    .join(clinics, clinics.c.id == web_sessions.c.clinic_id)
    .outerjoin(security_settings, security_settings.c.clinic_id == web_sessions.c.clinic_id)
    .where(
        web_sessions.c.token_hash == sa.bindparam("token_hash"),
        web_sessions.c.revoked_at.is_(None),
        users.c.is_active.is_(True),
    )
)


def lookup_web_session(engine: sa.Engine, token: str) -> WebSignIn | None:
    """The unrevoked session whose cookie value is `token` (one query; the cookie holds
    only a random id, stored here as its hash)."""
    with engine.connect() as conn:
        row = conn.execute(_WEB_SESSION, {"token_hash": hash_api_token(token)}).first()
    if row is None:
        return None
    m = row._mapping
    session = WebSession(**{c.name: m[c.name] for c in web_sessions.c})
    return WebSignIn(
        session, Role(m["role"]), m["full_name"], m["clinic_name"], m["idle_timeout_minutes"]
    )


_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def etag(version: int) -> str:
    """The ETag of a record version."""
    return f'"{version}"'


async def if_match(if_match: Annotated[str | None, Header()] = None) -> int:
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


def respond(
    body: object,
    *,
    status: int = 200,
    version: int | None = None,
    location: str | None = None,
) -> Response:
    """Records as JSON, serialised by orjson straight from the dataclasses (UUIDs, enums
    and RFC 3339 times included). The route's `response_model` still documents the shape
    in OpenAPI; the schema tests check the two agree."""
    headers = {}
    if version is not None:
        headers["ETag"] = etag(version)
    if location is not None:
        headers["Location"] = location
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
