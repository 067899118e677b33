"""What every request must satisfy before any route runs: its size, its input's
characters and numbers, and its caller's rate.

- `RequestLimits`: the address (path and query) at most `max_url_bytes` (414), headers
  at most `max_header_bytes` (431), a body at most
  `max_body_bytes` (413, read before the route sees a byte of it); no NUL character in
  the path, the query, a form or a JSON body (PostgreSQL cannot store one, and no
  clinical text has one), nor in JSON a lone surrogate (`"\\ud800"`: not encodable);
  in a JSON body, every number finite (no `NaN`, `Infinity`,
  `1e309`) and every integer within 64 bits, and nesting at most `MAX_JSON_DEPTH`
  deep. Refusals are 422 naming the field (`sites.0.notes`), like any other bad input.
- `RateLimit`: per caller (API token, else address) and per address, token buckets
  over the API, in each process's memory: a database row per request would put every
  read behind SQLite's single write lock and add a round trip on PostgreSQL. With
  `--workers N` the processes share the limit through the database about twice a
  second (`web.rate_sharing`, `adapters.db.rate_usage`), so a caller gets the
  configured rate across all of them, give or take one interval's admissions. Sign-in
  has its own limits, kept in the database (`login_attempts`). The patient's
  questionnaire links (`/q/`) have their own, stricter bucket per address
  (`PATIENT_LINK_RATE`, `PATIENT_LINK_BURST`): a patient answers in a few requests, and
  link entry is never a place to try tokens.

Plain ASGI, on the event loop, no database."""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from needlepoint.web import problems

MAX_JSON_DEPTH = 64
PATIENT_LINK_RATE = 0.5  # requests a second per address on /q/ (30 a minute) …
PATIENT_LINK_BURST = 40  # … in bursts of 40 (an address's twice that: see RateLimit)
INT_LIMIT = 2**63  # the databases' largest integers are signed 64-bit
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Bad:
    """A JSON value refused while parsing (the walk finds where it was)."""

    message: str


class Refused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _parse_int(text: str) -> int | Bad:
    if len(text.lstrip("-")) > 19:  # beyond 64 bits for certain; int() of it is costly too
        return Bad("is too large a number")
    value = int(text)
    return value if -INT_LIMIT <= value < INT_LIMIT else Bad("is too large a number")


def _parse_float(text: str) -> float | Bad:
    value = float(text)
    if not math.isfinite(value):
        return Bad("must be a finite number")
    # A whole float becomes an integer where one is expected: hold it to the same range.
    return value if abs(value) < INT_LIMIT else Bad("is too large a number")


def _parse_constant(_text: str) -> Bad:  # NaN, Infinity, -Infinity
    return Bad("must be a finite number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, with a key given twice refused rather than the last silently kept
    (`{"mrn": "A", "mrn": "B"}` would otherwise record B while the caller may show A)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = Bad("is given more than once") if key in out else value
    return out


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain the NUL character"
    if _SURROGATE.search(text):  # "\ud800" alone: not text any database can store
        return "must be valid Unicode text (a lone surrogate escape is not)"
    return None


def _walk(value: Any) -> Iterator[tuple[str, str]]:
    """(field path, problem) for each refused value of a parsed JSON document,
    iteratively (no recursion limit to hit)."""
    stack: list[tuple[tuple[str, ...], Any, int]] = [((), value, 0)]
    while stack:
        path, v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            yield ".".join(path) or "body", f"is nested more than {MAX_JSON_DEPTH} levels deep"
            continue
        if isinstance(v, Bad):
            yield ".".join(path) or "body", v.message
        elif isinstance(v, str):
            if problem := _text_problem(v):
                yield ".".join(path) or "body", problem
        elif isinstance(v, dict):
            for k, item in v.items():
                if _text_problem(k):
                    yield ".".join(path) or "body", "must not name a field with such characters"
                stack.append(((*path, k), item, depth + 1))
        elif isinstance(v, list):
            for i, item in enumerate(v):
                stack.append(((*path, str(i)), item, depth + 1))


def check_json(body: bytes) -> None:
    """Raise `Refused` for the first refused value of a JSON body. A body that is not
    JSON at all is left to the route (FastAPI's own 422)."""
    try:
        parsed = json.loads(
            body,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_object,
        )
    except RecursionError:
        raise Refused("body", f"is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:  # not JSON (or not UTF-8): the route answers 422 as usual
        return
    for field, message in _walk(parsed):
        raise Refused(field, message)


def check_pairs(query: bytes, *, where: str) -> None:
    """Refuse a NUL character in a URL-encoded query or form (naming the field)."""
    if b"%00" not in query and b"\x00" not in query:
        return
    text = query.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="latin-1"):
        if "\x00" in name or "\x00" in value:
            raise Refused(name.replace("\x00", "") or where, "must not contain the NUL character")
    raise Refused(where, "must not contain the NUL character")


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return str(value.decode("latin-1")).split(";", 1)[0].strip().lower()
    return ""


class RequestLimits:
    """Size and input checks before the route (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = 1_048_576,
        max_header_bytes: int = 16_384,
        max_url_bytes: int = 8_192,
    ) -> None:
        self.app = app
        self.max_url = max_url_bytes
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        headers = scope.get("headers", ())
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
        if target > self.max_url:
            await problems.too_large(request, self.max_url, what="address")(scope, receive, send)
            return
        if sum(len(n) + len(v) + 4 for n, v in headers) > self.max_headers:
            await problems.too_large(request, self.max_headers, what="headers")(
                scope, receive, send
            )
            return
        try:
            length = int(request.headers.get("content-length", "0") or 0)
        except ValueError:
            length = 0
        if length > self.max_body:
            await problems.too_large(request, self.max_body)(scope, receive, send)
            return
        body = b""
        more = scope.get("method") not in ("GET", "HEAD", "OPTIONS")
        after: list[Message] = []
        while more:
            message = await receive()
            if message["type"] != "http.request":
                after.append(message)  # the client went away: let the route see it
                break
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await problems.too_large(request, self.max_body)(scope, receive, send)
                return
            more = message.get("more_body", False)
        try:
            raw_path = scope.get("raw_path") or scope.get("path", "").encode()
            if b"%00" in raw_path or "\x00" in scope.get("path", ""):
                raise Refused("path", "must not contain the NUL character")
            check_pairs(scope.get("query_string", b""), where="query")
            kind = _content_type(scope)
            if body and (kind == "application/json" or kind.endswith("+json")):
                check_json(body)
            elif body and kind == "application/x-www-form-urlencoded":
                check_pairs(body, where="body")
            elif b"\x00" in body and kind.startswith("text/"):
                raise Refused("body", "must not contain the NUL character")
        except Refused as refused:
            response = problems.invalid_field(request, refused.field, refused.message)
            await response(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            if after:
                return after.pop(0)
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class Bucket:
    tokens: float
    at: float


class RateLimit:
    """Token buckets over `/api/`: `per_caller` requests a second with bursts of
    `burst` for each API token (or address, without one), and twice that for each
    address (so neither many tokens nor no token escapes it). Over the limit: 429 with
    `Retry-After`. At most `max_keys` callers are remembered (least recent dropped), so
    the table cannot grow without bound.

    Several serving processes share the limit (`web.rate_sharing`): each counts what it
    admits per key (`running_totals`) and takes the others' use from its own buckets
    (`take_used_elsewhere`). The buckets are touched by the event loop and by the
    sharing thread, hence the lock (held for microseconds)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_caller: float = 20.0,
        burst: int = 200,
        max_keys: int = 10_000,
        clock: Any = time.monotonic,
        share: Any = None,
        prefix: str = "/api/",
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.rate = per_caller
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._lock = threading.Lock()
        # admitted here per key: the running total and when it started (it starts again
        # when the key is forgotten)
        self._used: dict[str, tuple[int, datetime]] = {}
        self._changed: set[str] = set()
        if share is not None:
            share.attach(self)

    def _limits(self, key: str) -> tuple[float, int]:
        if key.startswith("address:"):
            return self.rate * 2, self.burst * 2
        return self.rate, self.burst

    def _refill(self, key: str, rate: float, burst: int, now: float) -> Bucket:
        bucket = self.buckets.pop(key, None) or Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        self.buckets[key] = bucket  # most recent last
        while len(self.buckets) > self.max_keys:
            forgotten, _ = self.buckets.popitem(last=False)
            self._used.pop(forgotten, None)
            self._changed.discard(forgotten)
        return bucket

    def _take(self, key: str, rate: float, burst: int, now: float) -> float:
        """0 when a request may pass (one token taken), else the seconds to wait."""
        with self._lock:
            bucket = self._refill(key, rate, burst, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                used, started = self._used.get(key) or (0, datetime.now(UTC))
                self._used[key] = (used + 1, started)
                self._changed.add(key)
                return 0.0
            return (1 - bucket.tokens) / rate

    def running_totals(self) -> dict[str, tuple[int, datetime]]:
        """The keys admitted here since the last call, with their running totals and
        when those started."""
        with self._lock:
            changed, self._changed = self._changed, set()
            return {key: self._used[key] for key in changed}

    def take_used_elsewhere(self, used: dict[str, int]) -> None:
        """Take the requests other processes admitted (per key) from the buckets here:
        never below empty, so a caller waits at most as long as a full burst takes to
        refill."""
        now = self.clock()
        with self._lock:
            for key, count in used.items():
                rate, burst = self._limits(key)
                bucket = self._refill(key, rate, burst, now)
                bucket.tokens = max(0.0, bucket.tokens - count)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        credential = address
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                credential = "token:" + hashlib.sha256(value).hexdigest()[:32]
                break
        now = self.clock()
        keys = ["address:" + address] + ([credential] if credential != address else [])
        wait = max(self._take(key, *self._limits(key), now) for key in keys)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            await problems.too_many(Request(scope), retry)(scope, receive, send)
            return
        await self.app(scope, receive, send)
