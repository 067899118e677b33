"""Many users at once: no request waits for a second connection while holding one, every
write re-checks who is acting inside its own transaction, lock and pool waits are bounded
and end in a clear 503, and the server answers while a writer holds the lock.

Ordering, not timing: each race is set up with another writer holding the lock (a
transaction left open by the test) and released by the test; no assertion is about how
long anything took."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.adapters.db.engine import WRITE_OPTION, Limits, make_engine
from needlepoint.synthetic.ready_patient import ReadyPatient, ready_patient
from needlepoint.web.app import create_app
from tests.factories import session_body

READY_AT = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple 42"


def _ready(engine: sa.Engine) -> ReadyPatient:
    return ready_patient(engine, ready_at=READY_AT, with_token=True, password=PASSWORD)


def _headers(ready: ReadyPatient) -> dict[str, str]:
    return {"Authorization": f"Bearer {ready.token}"}


def _notes_of(engine: sa.Engine, episode_id: uuid.UUID) -> int:
    from needlepoint.adapters.db.tables import sessions

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(sessions.c.episode_id == episode_id)
            ).scalar_one()
        )


@contextmanager
def another_writer(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction of another writer, holding the write lock (SQLite: BEGIN IMMEDIATE;
    PostgreSQL: the row locks of what it changes) until the block ends, then committed."""
    conn = engine.connect().execution_options(**{WRITE_OPTION: True})
    conn.begin()
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # surfaced by the test's assertions
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _write_transaction_started(engine: sa.Engine) -> threading.Event:
    """Set when a connection of `engine` starts a write transaction: on SQLite just
    before its `BEGIN IMMEDIATE` (which then waits for the lock), on PostgreSQL when
    it begins."""
    started = threading.Event()

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            started.set()

    def on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION) and conn.dialect.name != "sqlite":
            started.set()

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    sa.event.listen(engine, "begin", on_begin)
    return started


def _stop_listening(engine: sa.Engine) -> None:
    for event, name in (("begin", "on_begin"), ("before_cursor_execute", "on_statement")):
        for fn in list(getattr(engine.dispatch, event).listeners):
            if getattr(fn, "__name__", "") == name:
                sa.event.remove(engine, event, fn)


def sign_in(browser: Any, ready: ReadyPatient) -> str:
    """Sign the ready clinician in on `browser` (a TestClient or an httpx client) and
    return the session's CSRF token from the new-episode form."""
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
    assert csrf
    r = browser.post(
        "/login",
        data={"email": ready.clinician.email, "password": PASSWORD, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = browser.get(f"/patients/{ready.patient.id}/episodes/new")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return token[1]


def _episode_form(csrf: str) -> dict[str, str]:
    """The new-episode form as a clinician fills it in."""
    today = datetime.now(UTC).date()
    return {
        "csrf": csrf,
        "condition": "neck_pain",
        "opened_on": today.isoformat(),
        "onset_date": (today - timedelta(days=20)).isoformat(),
        "goals": "Turn the head fully to drive",
        "plan-dry_needling": "on",
    }


def _private_engine(engine: sa.Engine, limits: Limits) -> sa.Engine:
    """Another engine on the same database, with its own pool and limits."""
    return make_engine(engine.url, limits)


# --- 1. no pool starvation --------------------------------------------------------------


def test_no_request_needs_a_second_connection(engine: sa.Engine) -> None:
    """With a pool of ONE connection and no overflow, a whole clinical round works: a
    request that held a connection while asking for another would wait for itself and
    fail (503 after the pool timeout) instead."""
    ready = _ready(engine)
    tight = _private_engine(engine, Limits(pool_size=1, max_overflow=0, pool_timeout=3))
    try:
        client = TestClient(create_app(tight, secret_key="k" * 40, threads=4))
        h = _headers(ready)
        r = client.get("/api/v1/patients", headers=h, params={"q": ready.patient.family_name})
        assert r.status_code == 200, r.text
        r = client.post("/api/v1/sessions", json=session_body(ready.episode.id), headers=h)
        assert r.status_code == 201, r.text
        note = r.json()
        r = client.get(f"/api/v1/sessions/{note['id']}", headers=h)
        assert r.status_code == 200, r.text
        r = client.post(
            f"/api/v1/sessions/{note['id']}/sign", headers={**h, "If-Match": f'"{note["version"]}"'}
        )
        assert r.status_code == 200, r.text
        for path in (
            f"/api/v1/patients/{ready.patient.id}/timeline",
            f"/api/v1/episodes/{ready.episode.id}/benefits",
        ):
            assert client.get(path, headers=h).status_code == 200, path
        # the web app: sign in, chart, progress, a form post
        sign_in(client, ready)
        for path in (
            "/patients",
            f"/patients/{ready.patient.id}",
            f"/episodes/{ready.episode.id}/progress",
        ):
            assert client.get(path).status_code == 200, path
        assert tight.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        tight.dispose()


def test_an_exhausted_pool_answers_503_with_retry_after(engine: sa.Engine) -> None:
    """Nothing free within the pool timeout: a clear 503 with Retry-After, not a 500
    after 30 s; the request is answered as soon as its bounded wait ends."""
    ready = _ready(engine)
    tight = _private_engine(engine, Limits(pool_size=1, max_overflow=0, pool_timeout=0.5))
    try:
        client = TestClient(create_app(tight, secret_key="k" * 40))
        with tight.connect():  # someone holds the only connection
            r = client.get("/api/v1/patients", headers=_headers(ready))
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit()
            assert "nothing was saved" in r.json()["detail"].lower()
            page = client.get("/login")  # no database work: still served
            assert page.status_code == 200
        assert client.get("/api/v1/patients", headers=_headers(ready)).status_code == 200
    finally:
        tight.dispose()


def test_overload_is_refused_at_the_door(sqlite_engine: sa.Engine) -> None:
    """More requests in the server than it admits: the next one is answered 503 at
    once (it does not queue behind the lock)."""
    ready = _ready(sqlite_engine)
    app = create_app(sqlite_engine, secret_key="k" * 40, max_in_flight=1)
    client = TestClient(app)
    try:
        with another_writer(sqlite_engine):
            started = _write_transaction_started(sqlite_engine)  # after its BEGIN
            thread, out = _in_thread(
                lambda: client.post(
                    "/api/v1/sessions",
                    json=session_body(ready.episode.id),
                    headers=_headers(ready),
                )
            )
            assert started.wait(10)  # the first request is in, waiting for the lock
            r = client.get("/api/v1/patients", headers=_headers(ready))
            assert r.status_code == 503
            assert "Retry-After" in r.headers
        thread.join(30)
        assert out["result"].status_code == 201, out["result"].text
    finally:
        _stop_listening(sqlite_engine)


def test_a_lock_held_past_the_lock_timeout_is_a_clear_503(engine: sa.Engine) -> None:
    """Another writer keeps the lock longer than the bounded wait: the API answers 503
    with Retry-After, the form post a 503 page that says nothing was saved; nothing is
    written."""
    ready = _ready(engine)
    quick = _private_engine(engine, Limits(lock_timeout=0.5))
    try:
        client = TestClient(create_app(quick, secret_key="k" * 40))
        browser = TestClient(create_app(quick, secret_key="k" * 40))
        token = sign_in(browser, ready)
        with another_writer(engine) as holder:
            if engine.dialect.name != "sqlite":
                # PostgreSQL: the other writer appends to the clinic's audit chain
                holder.execute(
                    sa.text("select 1 from audit_chain_heads where clinic_id = :c for update"),
                    {"c": ready.clinician.clinic_id},
                )
            r = client.post(
                "/api/v1/sessions", json=session_body(ready.episode.id), headers=_headers(ready)
            )
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit()
            form = browser.post(
                f"/patients/{ready.patient.id}/episodes/new", data=_episode_form(token)
            )
            assert form.status_code == 503
            assert "Nothing was saved" in form.text
            assert form.headers["Retry-After"].isdigit()
        assert _notes_of(engine, ready.episode.id) == 0
        from needlepoint.adapters.db.tables import episodes

        with engine.connect() as conn:
            opened = conn.execute(
                sa.select(sa.func.count()).where(episodes.c.patient_id == ready.patient.id)
            ).scalar_one()
        assert opened == 1
    finally:
        quick.dispose()


# --- 2. authorisation inside the transaction ---------------------------------------------


def _revoke_token(conn: sa.Connection, ready: ReadyPatient) -> None:
    from needlepoint.adapters.db.tables import api_tokens

    conn.execute(
        sa.update(api_tokens)
        .where(api_tokens.c.user_id == ready.clinician.id)
        .values(revoked_at=datetime.now(UTC))
    )


def _deactivate(conn: sa.Connection, ready: ReadyPatient) -> None:
    from needlepoint.adapters.db.tables import users

    conn.execute(sa.update(users).where(users.c.id == ready.clinician.id).values(is_active=False))


@pytest.mark.parametrize("change", [_revoke_token, _deactivate], ids=["revoked", "deactivated"])
def test_a_credential_withdrawn_while_the_request_waits_writes_nothing(
    engine: sa.Engine, change: Any
) -> None:
    """The request authenticates, then waits for the lock held by another writer, who
    revokes the token (or deactivates the user) and commits: the request must see it
    inside its own transaction: 401, and no note written."""
    ready = _ready(engine)
    client = TestClient(create_app(engine, secret_key="k" * 40))
    try:
        with another_writer(engine) as holder:
            started = _write_transaction_started(engine)  # after its BEGIN
            change(holder, ready)  # uncommitted: the request's first lookup passes
            thread, out = _in_thread(
                lambda: client.post(
                    "/api/v1/sessions",
                    json=session_body(ready.episode.id),
                    headers=_headers(ready),
                )
            )
            assert started.wait(10), out  # authenticated; its write transaction begins
            time.sleep(0.2)  # let it reach the lock (the outcome is the same if not)
        thread.join(30)
    finally:
        _stop_listening(engine)
    response = out["result"]
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert _notes_of(engine, ready.episode.id) == 0


def test_a_web_session_ended_while_the_form_waits_writes_nothing(engine: sa.Engine) -> None:
    """Signed out everywhere (on another device) while a form post waits for the lock:
    the post is sent to sign in again, and nothing is written."""
    from needlepoint.adapters.db.tables import web_sessions

    ready = _ready(engine)
    client = TestClient(create_app(engine, secret_key="k" * 40))
    token = sign_in(client, ready)
    form = _episode_form(token)
    try:
        with another_writer(engine) as holder:
            started = _write_transaction_started(engine)  # after its BEGIN
            holder.execute(
                sa.update(web_sessions)
                .where(web_sessions.c.user_id == ready.clinician.id)
                .values(revoked_at=datetime.now(UTC))
            )
            thread, out = _in_thread(
                lambda: client.post(
                    f"/patients/{ready.patient.id}/episodes/new", data=form, follow_redirects=False
                )
            )
            assert started.wait(10), out
            time.sleep(0.2)
        thread.join(30)
    finally:
        _stop_listening(engine)
    response = out["result"]
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/login"
    from needlepoint.adapters.db.tables import episodes

    with engine.connect() as conn:
        opened = conn.execute(
            sa.select(sa.func.count()).where(episodes.c.patient_id == ready.patient.id)
        ).scalar_one()
    assert opened == 1  # only the episode the fixture opened


def test_a_write_after_the_credential_check_succeeds_normally(engine: sa.Engine) -> None:
    """The in-transaction check does not refuse a valid credential, also when another
    writer held the lock for a while (the request waits its turn)."""
    ready = _ready(engine)
    client = TestClient(create_app(engine, secret_key="k" * 40))
    try:
        with another_writer(engine):
            started = _write_transaction_started(engine)  # after its BEGIN
            thread, out = _in_thread(
                lambda: client.post(
                    "/api/v1/sessions",
                    json=session_body(ready.episode.id),
                    headers=_headers(ready),
                )
            )
            assert started.wait(10)
        thread.join(30)
    finally:
        _stop_listening(engine)
    assert out["result"].status_code == 201, out["result"].text
    assert _notes_of(engine, ready.episode.id) == 1


# --- 3. the event loop is never blocked -------------------------------------------------


@contextmanager
def live_server(engine: sa.Engine, **app_options: Any) -> Iterator[str]:
    """The app served by uvicorn on a free local port, in this process."""
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(engine, secret_key="k" * 40, **app_options),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_the_server_answers_while_a_form_post_waits_for_the_lock(
    sqlite_engine: sa.Engine,
) -> None:
    """A signed-in form post waits for SQLite's write lock (held by another writer);
    meanwhile the server still answers pages and API reads: they complete while the lock
    is still held, so nothing waited on the event loop."""
    ready = _ready(sqlite_engine)
    with live_server(sqlite_engine) as url, httpx.Client(base_url=url) as browser:
        token = sign_in(browser, ready)
        form = _episode_form(token)
        try:
            with another_writer(sqlite_engine):
                started = _write_transaction_started(sqlite_engine)  # after its BEGIN
                thread, out = _in_thread(
                    lambda: browser.post(f"/patients/{ready.patient.id}/episodes/new", data=form)
                )
                assert started.wait(10), out
                with httpx.Client(base_url=url, timeout=10) as other:
                    assert other.get("/login").status_code == 200
                    assert other.get("/static/needlepoint.css").status_code == 200
                    r = other.get("/api/v1/patients", headers=_headers(ready))
                    assert r.status_code == 200
                    # ... and the chart of a signed-in colleague: a read, no write lock
                    chart = browser.get(f"/patients/{ready.patient.id}")
                    assert chart.status_code == 200
                assert thread.is_alive(), "the form post should still be waiting"
            thread.join(30)
        finally:
            _stop_listening(sqlite_engine)
        assert out["result"].status_code in (200, 303), out


def test_page_views_and_sign_ins_checks_never_take_the_write_lock(sqlite_engine: sa.Engine) -> None:
    """While another writer holds SQLite's write lock, a signed-in clinician can still
    open the patient list, a chart and the progress page: their read-audit events and
    session activity are written afterwards, by the background writer."""
    from needlepoint.adapters.db.tables import audit_events

    ready = _ready(sqlite_engine)
    with live_server(sqlite_engine) as url, httpx.Client(base_url=url, timeout=10) as browser:
        sign_in(browser, ready)
        with sqlite_engine.connect() as conn:
            before = conn.execute(
                sa.select(sa.func.count()).where(
                    audit_events.c.action == "record.viewed",
                    audit_events.c.actor_user_id == ready.clinician.id,
                )
            ).scalar_one()
        with another_writer(sqlite_engine):
            for path in (
                "/patients",
                f"/patients/{ready.patient.id}",
                f"/episodes/{ready.episode.id}/progress",
            ):
                assert browser.get(path).status_code == 200, path
        deadline = time.monotonic() + 20
        while True:  # the reads reach the audit trail once the lock is free
            with sqlite_engine.connect() as conn:
                after = conn.execute(
                    sa.select(sa.func.count()).where(
                        audit_events.c.action == "record.viewed",
                        audit_events.c.actor_user_id == ready.clinician.id,
                    )
                ).scalar_one()
            if after > before or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert after > before, "the chart views were never audited"


# --- 5. every statement is visible --------------------------------------------------------


def test_every_statement_of_an_api_write_is_seen_by_sqlalchemy_events(
    sqlite_engine: sa.Engine,
) -> None:
    """SQLite's own trace of what ran equals what SQLAlchemy's events saw (apart from
    transaction ends, which SQLAlchemy issues through the driver's commit/rollback)."""
    ready = _ready(sqlite_engine)
    private = _private_engine(sqlite_engine, Limits())
    traced: list[str] = []
    seen: list[str] = []

    @sa.event.listens_for(private, "connect")
    def trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(traced.append)

    @sa.event.listens_for(private, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    try:
        client = TestClient(create_app(private, secret_key="k" * 40))
        private.dispose()  # new connections, traced from their first statement
        traced.clear()
        seen.clear()
        r = client.post(
            "/api/v1/sessions", json=session_body(ready.episode.id), headers=_headers(ready)
        )
        assert r.status_code == 201, r.text
    finally:
        private.dispose()

    def kind(sql: str) -> tuple[str, str]:
        """A statement's verb and the first table it names (the trace expands values)."""
        words = sql.replace("(", " ").split()
        table = next((w for w in words[1:] if w.lower() in tables), "")
        return words[0].upper(), table.lower()

    from needlepoint.adapters.db.tables import metadata

    tables = set(metadata.tables)
    skip = {"COMMIT", "ROLLBACK", "PRAGMA"}
    driver = {kind(s) for s in traced if kind(s)[0] not in skip}
    assert ("INSERT", "needling_sites") in driver, "the trace saw nothing"
    # (SQLite's trace also shows statements run by triggers: compared as kinds.)
    assert driver == {kind(s) for s in seen}


def test_the_api_write_path_runs_a_fixed_number_of_statements(engine: sa.Engine) -> None:
    """A statement-count guard on the write path: a complete note (4 sites, NPRS, ROM)
    costs the same statements as a note with one site; a budget per database catches a
    new query sneaking in (update it knowingly when the path changes)."""
    budgets = {"sqlite": 22, "postgresql": 28}
    ready = _ready(engine)
    client = TestClient(create_app(engine, secret_key="k" * 40))
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    counts = []
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for n_sites in (1, 4):
            body = session_body(ready.episode.id)
            body["sites"] = body["sites"][:n_sites]
            body["started_at"] = (READY_AT + timedelta(hours=n_sites)).isoformat()
            seen.clear()
            r = client.post("/api/v1/sessions", json=body, headers=_headers(ready))
            assert r.status_code == 201, r.text
            counts.append(len(seen))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert counts[0] == counts[1], counts
    assert counts[1] <= budgets[engine.dialect.name], (counts, seen)


# --- writers of one clinic do not queue behind each other's whole transaction -----------


def test_a_writer_blocked_on_a_record_does_not_stall_the_clinics_other_writers(
    postgres_engine: sa.Engine,
) -> None:
    """PostgreSQL: every write appends to its clinic's audit chain, whose head is locked
    until the commit. A writer waiting for a record another transaction holds (here:
    signing a note someone else has locked) must not hold that chain lock while it
    waits, or every colleague's save would queue behind it. So a new note is saved while
    the signer still waits; then the signer finishes too, in one unbroken chain."""
    engine = postgres_engine
    ready = _ready(engine)
    from needlepoint.adapters.db.tables import sessions

    client = TestClient(create_app(engine, secret_key="k" * 40))
    draft = client.post(
        "/api/v1/sessions", json=session_body(ready.episode.id), headers=_headers(ready)
    )
    assert draft.status_code == 201, draft.text
    note = draft.json()
    signed: list[int] = []

    def sign() -> None:
        r = client.post(
            f"/api/v1/sessions/{note['id']}/sign",
            headers={**_headers(ready), "If-Match": f'"{note["version"]}"'},
        )
        signed.append(r.status_code)

    with another_writer(engine) as holder:
        holder.execute(
            sa.select(sessions.c.id).where(sessions.c.id == uuid.UUID(note["id"])).with_for_update()
        )
        signer = threading.Thread(target=sign)
        signer.start()
        deadline = time.monotonic() + 30
        # Wait until the signer waits for the record. Autocommit: within one transaction
        # pg_stat_activity is a snapshot, and would never show the signer arriving.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
            while not watch.execute(
                sa.text(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                    "and datname = current_database()"
                )
            ).scalar_one():
                assert time.monotonic() < deadline, f"the signer never waited: {signed}"
                time.sleep(0.05)
        other = client.post(
            "/api/v1/sessions",
            json=session_body(
                ready.episode.id,
                started_at=(READY_AT + timedelta(hours=3)).isoformat(),
            ),
            headers=_headers(ready),
        )
        assert other.status_code == 201, other.text
        assert signer.is_alive(), "the signer was still waiting for the record"
    signer.join(30)
    assert signed == [200]

    from typer.testing import CliRunner

    from needlepoint.cli import app

    url = engine.url.render_as_string(hide_password=False)
    clinic = str(ready.clinician.clinic_id)
    verified = CliRunner().invoke(app, ["audit", "verify", "--db", url, "--clinic", clinic])
    assert verified.exit_code == 0, verified.output
