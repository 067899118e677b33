"""SQLite's writers queue in their process for the database's one write lock
(`adapters/db/engine.py::WriterQueue`): one at a time, in turn, each turn given back
however its transaction ends, every wait bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from needlepoint.adapters.db.engine import (
    WRITE_OPTION,
    Limits,
    WriterQueue,
    is_busy,
    make_engine,
    writer_queue,
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}", Limits(lock_timeout=2.0))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    yield engine
    engine.dispose()


def _writer(engine: sa.Engine) -> sa.Connection:
    return engine.connect().execution_options(**{WRITE_OPTION: True})


def _queued(queue: WriterQueue, n: int = 1) -> None:
    deadline = time.monotonic() + 10
    while queue.waiting < n:
        assert time.monotonic() < deadline, "nobody queued"
        time.sleep(0.005)


def _insert(engine: sa.Engine, body: str, out: dict[str, Any]) -> None:
    try:
        with _writer(engine) as conn:
            conn.begin()
            conn.exec_driver_sql("INSERT INTO notes (body) VALUES (?)", (body,))
            conn.commit()
        out["done"] = True
    except BaseException as exc:  # surfaced by the test
        out["error"] = exc


def _bodies(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT body FROM notes ORDER BY id")]


def test_a_second_writer_waits_in_the_process_then_writes(db: sa.Engine) -> None:
    """While one writer holds the lock, the next waits in the queue without sending its
    BEGIN IMMEDIATE (so it never sleeps in SQLite's busy handler); once the first has
    committed and given its connection back, the second writes."""
    queue = writer_queue(db)
    assert queue is not None
    begun: list[str] = []
    sa.event.listen(
        db,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_a: (
            begun.append(threading.current_thread().name)
            if statement == "BEGIN IMMEDIATE"
            else None
        ),
    )
    out: dict[str, Any] = {}
    with _writer(db) as first:
        first.begin()
        first.exec_driver_sql("INSERT INTO notes (body) VALUES ('first')")
        second = threading.Thread(target=_insert, args=(db, "second", out), name="second")
        second.start()
        _queued(queue)
        assert "second" not in begun
        first.commit()
    second.join(10)
    assert out == {"done": True}
    assert begun.count("second") == 1
    assert _bodies(db) == ["first", "second"]
    assert queue.waiting == 0


def test_a_turn_held_past_the_lock_timeout_is_a_busy_error(tmp_path: Path) -> None:
    """The wait is bounded: past the lock timeout the begin fails as SQLite's own
    "database is locked" would, which the web layer answers with 503 and Retry-After;
    nothing of the refused writer is written."""
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}", Limits(lock_timeout=0.2))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        out: dict[str, Any] = {}
        with _writer(engine) as holder:
            holder.begin()
            late = threading.Thread(target=_insert, args=(engine, "late", out))
            late.start()
            late.join(10)
            holder.commit()
        assert is_busy(out["error"]), out
        assert _bodies(engine) == []
        _insert(engine, "after", out := {})  # the turn was not lost
        assert out == {"done": True}
    finally:
        engine.dispose()


@pytest.mark.parametrize("ending", ["rollback", "error", "invalidate"])
def test_the_turn_is_given_back_however_the_transaction_ends(db: sa.Engine, ending: str) -> None:
    """A rolled-back transaction, one ended by an error, and a connection thrown away
    all give the turn back: the next writer is not left waiting for the timeout."""
    queue = writer_queue(db)
    assert queue is not None
    try:
        with _writer(db) as conn:
            conn.begin()
            conn.exec_driver_sql("INSERT INTO notes (body) VALUES ('gone')")
            if ending == "rollback":
                conn.rollback()
            elif ending == "error":
                conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
            else:
                conn.invalidate()
    except sa.exc.OperationalError:
        assert ending == "error"
    out: dict[str, Any] = {}
    _insert(db, "next", out)
    assert out == {"done": True}
    assert _bodies(db) == ["next"]
    assert queue.waiting == 0


def test_a_connection_keeps_its_turn_across_its_transactions(db: sa.Engine) -> None:
    """A connection that commits and begins again before going back to the pool (the
    generator's bulk load does) keeps its turn instead of waiting for itself."""
    with _writer(db) as conn:
        for body in ("one", "two", "three"):
            conn.begin()
            conn.exec_driver_sql("INSERT INTO notes (body) VALUES (?)", (body,))
            conn.commit()
    assert _bodies(db) == ["one", "two", "three"]


def test_readers_do_not_queue(db: sa.Engine) -> None:
    """Reads (no write option) never wait for the writers' turn."""
    queue = writer_queue(db)
    assert queue is not None
    with _writer(db) as holder:
        holder.begin()
        holder.exec_driver_sql("INSERT INTO notes (body) VALUES ('pending')")
        with db.connect() as reader:
            assert reader.exec_driver_sql("SELECT count(*) FROM notes").scalar_one() == 0
        holder.commit()
    assert queue.waiting == 0
