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

import orjson
import sqlalchemy as sa
from fastapi import Depends, Header, HTTPException, Request, Response

from needlepoint.actions.context import Actor
from needlepoint.adapters.db.logins import LoginAttempt, record_attempt
from needlepoint.adapters.db.tables import (
    api_tokens,
    clinics,
    security_settings,
    users,
    web_sessions,
)
from needlepoint.adapters.db.unit_of_work import CredentialCheck, SqlUnitOfWork
from needlepoint.adapters.passwords import hash_api_token
from needlepoint.domain.entities import Clinic, User, WebSession
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import (
    NotAuthenticated,
    PermissionDenied,
    VersionRequired,
)
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader, ReadSink, open_reader
from needlepoint.web.deferred_writes import DeferredWrites


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is acting in this request, and the database handles an action or query needs.

    `check` re-checks the request's credential inside each write transaction (see
    `CredentialCheck`); `sink` takes the audit events of reads (the web app's queue)."""

    engine: sa.Engine
    actor: Actor
    role: Role
    check: CredentialCheck | None = None
    sink: ReadSink | None = None
    time_zone: str = "UTC"  # the clinic's IANA zone: what a page shows and a form means

    def uow(self) -> SqlUnitOfWork:
        """A unit of work for one action of this request."""
        return SqlUnitOfWork(self.engine, check=self.check)

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
            sink=self.sink,
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
        api_tokens.c.expires_at > sa.bindparam("now"),  # NULL (undated) never matches
        users.c.is_active.is_(True),
    )
)


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """The active user holding an API token, their clinic, and the token's scopes."""

    user: User
    clinic: Clinic
    scopes: str


# Inside a write transaction on PostgreSQL the lookup also takes a share lock on the
# token and user rows: a revocation or deactivation committed first is seen; one that
# comes later waits until this write has committed (SQLite's BEGIN IMMEDIATE already
# serialises every writer).
_TOKEN_HOLDER_LOCKED = _TOKEN_HOLDER.with_for_update(read=True, of=[api_tokens, users])


def lookup_token(conn: sa.Connection, token: str, *, lock: bool = False) -> TokenHolder | None:
    """Who holds this unrevoked, unexpired token (an active user): one indexed query.
    `lock`: in a write transaction, hold the token and user rows until it ends
    (PostgreSQL)."""
    stmt = _TOKEN_HOLDER_LOCKED if lock and conn.dialect.name != "sqlite" else _TOKEN_HOLDER
    params = {"token_hash": hash_api_token(token), "now": datetime.now(UTC)}
    row = conn.execute(stmt, params).mappings().first()
    if row is None:
        return None
    return TokenHolder(
        user=User(**{c.name: row[f"user_{c.name}"] for c in users.c}),
        clinic=Clinic(**{c.name: row[f"clinic_{c.name}"] for c in clinics.c}),
        scopes=row["scopes"],
    )


UNAUTHENTICATED_DETAIL = (
    "a valid API token is required (Authorization: Bearer …); tokens expire, and are "
    "revoked by signing out everywhere"
)


class ApiCredentials:
    """The bearer token of an API request. Resolved to a user on first use, inside the
    endpoint's worker thread (never on the event loop), on a connection held only for
    that one query.

    Each write transaction of the request checks the token again, first thing inside
    the transaction (`uow()`), and uses the user and clinic it reads there: a token
    revoked or a user deactivated while the request waited for a lock is refused (401)
    and nothing is written. The request never holds one connection while asking for
    another, so requests cannot starve the pool."""

    def __init__(
        self,
        engine: sa.Engine,
        token: str | None,
        request_id: str,
        *,
        writes: bool = False,
        address: str = "unknown",
        deferred: DeferredWrites | None = None,
    ) -> None:
        self._engine = engine
        self._deferred = deferred
        self._token = token
        self._request_id = request_id
        self._writes = writes
        self._address = address
        self._context: RequestContext | None = None

    def _resolve(self) -> RequestContext:
        if self._context is None:
            holder = None
            if self._token:
                with self._engine.connect() as conn:
                    holder = lookup_token(conn, self._token)
            if holder is None:
                self._log_refused()
                raise HTTPException(
                    401, UNAUTHENTICATED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
                )
            self._require_scope(holder)
            actor = Actor(
                holder.user.id,
                holder.clinic.id,
                source="api",
                request_id=self._request_id,
                source_address=None if self._address == "unknown" else self._address,
            )
            sink = None if self._deferred is None else self._deferred.put
            self._context = RequestContext(
                self._engine, actor, holder.user.role, self._recheck, sink
            )
        return self._context

    def _recheck(self, conn: sa.Connection) -> tuple[User, Clinic]:
        """The token checked again inside a write transaction (see `CredentialCheck`)."""
        actor = self._resolve().actor
        holder = lookup_token(conn, self._token or "", lock=True)
        if holder is None or holder.user.id != actor.user_id:
            raise NotAuthenticated(
                "this API token was revoked, or its user deactivated, before the change "
                "could be saved; nothing was saved"
            )
        self._require_scope(holder)
        return holder.user, holder.clinic

    def _require_scope(self, holder: TokenHolder) -> None:
        needed = "write" if self._writes else "read"
        if needed not in holder.scopes.split():
            raise PermissionDenied(f"this API token lacks the '{needed}' scope")

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
        """A unit of work for one action of this request; its transaction re-checks the
        token first."""
        return self._resolve().uow()

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """A read-only view of the actor's clinic."""
        with self._resolve().reader() as r:
            yield r

    def settle_reads(self) -> None:
        """Write the audit events of reads this process has served so far (they are
        written in the background): call before reading the audit trail itself."""
        if self._deferred is not None:
            self._deferred.flush()


def patient_links_base(request: Request) -> str:
    """What the links e-mailed to patients start with: the server's configured public
    address (`Settings.resolved_public_url`), never the request's Host header, which the
    caller chooses: an unauthenticated "send me a new link" request could otherwise have
    a link to the caller's own host e-mailed to the patient, and so obtain the patient's
    token. Only an app built without one (tests) falls back to the request's address."""
    configured: str | None = getattr(request.app.state, "public_url", None)
    return configured or str(request.base_url).rstrip("/")


async def api_context(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> ApiCredentials:
    """The caller of an API request, from its `Authorization: Bearer …` header. No
    database work here (this runs on the event loop): the token is checked on first use,
    in the endpoint's thread.

    Every endpoint touches `actor`, `uow()` or `reader()` before doing anything, so an
    unauthenticated request is refused before any work."""
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip() or None
    if token is None:  # refused before the body is even validated; costs no query
        raise HTTPException(401, UNAUTHENTICATED_DETAIL, headers={"WWW-Authenticate": "Bearer"})
    return ApiCredentials(
        request.app.state.engine,
        token,
        request_id(request),
        writes=request.method not in SAFE_METHODS,
        address=request.client.host if request.client else "unknown",
        deferred=request.app.state.deferred,
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
    clinic_time_zone: str = "UTC"  # the clinic's IANA zone: pages show local time in it


_SESSION_COLUMNS = list(web_sessions.c)
_WEB_SESSION = (
    sa.select(
        *_SESSION_COLUMNS,
        users.c.role,
        users.c.full_name,
        clinics.c.name.label("clinic_name"),
        security_settings.c.idle_timeout_minutes,
        clinics.c.time_zone.label("clinic_time_zone"),
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


_WEB_SESSION_LOCKED = _WEB_SESSION.with_for_update(read=True, of=[web_sessions, users])


def lookup_web_session(conn: sa.Connection, token: str, *, lock: bool = False) -> WebSignIn | None:
    """The unrevoked session whose cookie value is `token` (one query; the cookie holds
    only a random id, stored here as its hash). `lock`: in a write transaction, hold the
    session and user rows until it ends (PostgreSQL)."""
    stmt = _WEB_SESSION_LOCKED if lock and conn.dialect.name != "sqlite" else _WEB_SESSION
    row = conn.execute(stmt, {"token_hash": hash_api_token(token)}).first()
    if row is None:
        return None
    m = row._mapping
    session = WebSession(**{c.name: m[c.name] for c in web_sessions.c})
    return WebSignIn(
        session,
        Role(m["role"]),
        m["full_name"],
        m["clinic_name"],
        m["idle_timeout_minutes"],
        m["clinic_time_zone"],
    )


def web_session_check(token: str, session_id: uuid.UUID) -> CredentialCheck:
    """The `CredentialCheck` of a signed-in browser: inside the write transaction, its
    session is still open (not signed out, not past its lifetime) and its user active."""

    def check(conn: sa.Connection) -> tuple[()]:
        found = lookup_web_session(conn, token, lock=True)
        if (
            found is None
            or found.session.id != session_id
            or found.session.mfa_pending
            or datetime.now(UTC) >= found.session.expires_at
        ):
            raise NotAuthenticated(
                "your session ended (signed out, expired, or the account was deactivated) "
                "before the change could be saved; nothing was saved"
            )
        return ()

    return check


MAX_OFFSET = 1_000_000_000  # paging: far beyond any clinic's records, far within 64 bits
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')
_SHOWN = 40  # characters of a refused If-Match echoed back


def etag(version: int) -> str:
    """The ETag of a record version."""
    return f'"{version}"'


async def if_match(if_match: Annotated[str | None, Header()] = None) -> int:
    """The version an update is based on, from `If-Match` (required on every update).
    Missing, empty or not a version at all (`"abc"`, a hundred kilobytes of digits): 428,
    as a missing one is. A well-formed version that is not the record's: 412 (later)."""
    if if_match is None or not if_match.strip():
        raise VersionRequired(
            "send If-Match with the ETag you read, so a concurrent change is not overwritten",
            field="If-Match",
        )
    m = _ETAG.match(if_match)
    if m is None:
        shown = if_match[:_SHOWN] + ("…" if len(if_match) > _SHOWN else "")
        raise VersionRequired(
            f"If-Match {shown!r} is not a version of this record: send the ETag you read",
            field="If-Match",
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
