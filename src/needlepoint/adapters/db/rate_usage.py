"""The API rate limit's use, shared by the serving processes through the database.

Each process keeps its token buckets in memory (`web.limits.RateLimit`) and, about twice
a second, `exchange`s with the database: it writes its own running totals (requests
admitted per caller key) and reads the other processes' totals written since its last
exchange. The growth of each total since it last saw it is that process's new use,
which it takes from its own buckets. A caller therefore gets the configured rate across
all processes, give or take what the processes admit in one exchange interval. One
short transaction per interval and process, whatever the traffic: never a write per
request."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from needlepoint.adapters.db.engine import WRITE_OPTION
from needlepoint.adapters.db.tables import rate_usage

# Rows of processes that stopped (or keys unused) this long ago are deleted.
FORGET_AFTER = timedelta(hours=1)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(rate_usage)
    return statement.on_conflict_do_update(
        index_elements=[rate_usage.c.worker, rate_usage.c.key],
        set_={
            "used": statement.excluded.used,
            "started_at": statement.excluded.started_at,
            "updated_at": statement.excluded.updated_at,
        },
    )


def exchange(
    engine: sa.Engine,
    worker: str,
    totals: Mapping[str, tuple[int, datetime]],
    *,
    now: datetime,
    since: datetime | None,
) -> list[tuple[str, str, int, datetime]]:
    """Write this process's running totals (only the keys that changed: key → total and
    when it started) and return the other processes' totals written at or after `since`
    (all of them when `None`), as (process, key, total, started)."""
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        if totals:
            conn.execute(
                _upsert(engine.dialect.name),
                [
                    {
                        "worker": worker,
                        "key": key[:80],
                        "used": used,
                        "started_at": started,
                        "updated_at": now,
                    }
                    for key, (used, started) in totals.items()
                ],
            )
        t = rate_usage
        query = sa.select(t.c.worker, t.c.key, t.c.used, t.c.started_at).where(t.c.worker != worker)
        if since is not None:
            query = query.where(rate_usage.c.updated_at >= since)
        return [
            (other, key, int(used), started) for other, key, used, started in conn.execute(query)
        ]


def forget_old(engine: sa.Engine, *, now: datetime) -> int:
    """Delete the rows not written for `FORGET_AFTER`; returns how many."""
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        result = conn.execute(
            sa.delete(rate_usage).where(rate_usage.c.updated_at < now - FORGET_AFTER)
        )
        return result.rowcount or 0
