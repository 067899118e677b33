"""Per-request context: who is asking (from a bearer token or the web session), and the
database handles an action or query needs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from fastapi import Depends, Header, HTTPException, Request, Response

from needlepoint.actions.context import Actor
from needlepoint.adapters.db.engine import is_sqlite
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
from needlepoint.domain.entities import WebSession
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
    sa.select(users.c.id, users.c.clinic_id, users.c.role, api_tokens.c.scopes)
    .join(api_tokens, api_tokens.c.user_id == users.c.id)
    .where(
        api_tokens.c.token_hash == sa.bindparam("token_hash"),
        api_tokens.c.revoked_at.is_(None),
        users.c.is_active.is_(True),
    )
)


def _single_statement(engine: sa.Engine) -> sa.Connection:
    """A connection for one read statement, outside any transaction. On PostgreSQL it runs
    in autocommit, saving the BEGIN and ROLLBACK round trips on every API request; on
    SQLite a statement run on the driver's cursor (`ReadPlan`) opens no transaction. (The
    SQLite driver's own isolation setting stays off: resetting it would undo the engine's
    explicit transaction control.)"""
    conn = engine.connect()
    if not is_sqlite(engine):
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn


def lookup_token(engine: sa.Engine, token: str) -> tuple[UUID, UUID, Role, str] | None:
    """(user id, clinic id, role, scopes) of an active user holding this unrevoked token:
    one indexed query per request."""
    with _single_statement(engine) as conn:
        read = plan(conn.dialect, "token_holder", lambda: _TOKEN_HOLDER)
        rows = read.rows(conn, {"token_hash": hash_api_token(token)})
    if not rows:
        return None
    row = rows[0]
    return row["id"], row["clinic_id"], Role(row["role"]), row["scopes"]


class ApiCredentials:
    """The bearer token of an API request. Resolved to a user on first use, inside the
    endpoint's worker thread, so a request costs one thread hop, not two."""

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

    def _resolve(self) -> RequestContext:
        if self._context is None:
            found = lookup_token(self._engine, self._token) if self._token else None
            if found is None:
                self._log_refused()
                raise HTTPException(
                    401,
                    "a valid API token is required (Authorization: Bearer …)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            user_id, clinic_id, role, scopes = found
            needed = "write" if self._writes else "read"
            if needed not in scopes.split():
                raise PermissionDenied(f"this API token lacks the '{needed}' scope")
            actor = Actor(
                user_id,
                clinic_id,
                source="api",
                request_id=self._request_id,
                source_address=None if self._address == "unknown" else self._address,
            )
            self._context = RequestContext(self._engine, actor, role)
        return self._context

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
        """A unit of work for one action of this request."""
        return self._resolve().uow()

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A read-only view of the actor's clinic."""
        with self._resolve().reader() as r:
            yield r


async def api_context(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> ApiCredentials:
    """The caller of an API request, from its `Authorization: Bearer …` header.

    Every endpoint touches `actor`, `uow()` or `reader()` before doing anything, so an
    unauthenticated request is refused before any work."""
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip() or None
    if token is None:  # refused before the body is even validated; costs no query
        raise HTTPException(
            401,
            "a valid API token is required (Authorization: Bearer …)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return ApiCredentials(
        request.app.state.engine,
        token,
        request_id(request),
        writes=request.method not in SAFE_METHODS,
        address=request.client.host if request.client else "unknown",
    )


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
