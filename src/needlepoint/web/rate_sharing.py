"""The API rate limit shared by `needlepoint serve --workers N`'s processes.

A thread per process exchanges the process's running totals with the database
(`adapters.db.rate_usage`) every `interval` seconds and takes the other processes' new
use from this process's buckets (`web.limits.RateLimit.take_used_elsewhere`). Only
started when the server runs several processes: a single process needs nothing shared.

The first exchange only learns the totals already there (use before this process
started is not charged); after it, a total's growth is that process's new use."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from needlepoint.adapters.db import rate_usage

log = logging.getLogger(__name__)

# Rows are read again this long after their last exchange: the processes' clocks and
# commits need not line up exactly (a row seen twice is not charged twice).
_OVERLAP = timedelta(seconds=5)
_FORGET_EVERY = timedelta(minutes=5)


class SharedLimit(Protocol):
    def running_totals(self) -> dict[str, tuple[int, datetime]]: ...

    def take_used_elsewhere(self, used: dict[str, int]) -> None: ...


class RateSharing:
    """Shares one process's `RateLimit` with the other serving processes."""

    def __init__(self, engine: sa.Engine, *, interval: float = 0.5) -> None:
        self.engine = engine
        self.interval = interval
        self.worker = os.urandom(8).hex()  # this process, for as long as it runs
        self.limit: SharedLimit | None = None
        # (process, key) → (the total's start, the total, when this process saw it)
        self._seen: dict[tuple[str, str], tuple[datetime, int, datetime]] = {}
        self._unsent: dict[str, tuple[int, datetime]] = {}
        self._last: datetime | None = None
        self._forgot = datetime.min.replace(tzinfo=UTC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, limit: SharedLimit) -> None:
        """Called by the rate limit this process serves with."""
        self.limit = limit

    def exchange(self, now: datetime | None = None) -> dict[str, int]:
        """One exchange: write this process's new totals, take the others' new use
        from its buckets; returns that use per key.

        A total is charged by its growth since this process last saw it. A total not
        seen before is charged in full when it started after the previous exchange (a
        caller new to that process, or a key it had forgotten and started again);
        otherwise it is only noted (use from before this process started, or a total
        this process forgot after an hour unseen)."""
        now = now or datetime.now(UTC)
        if self.limit is not None:
            self._unsent.update(self.limit.running_totals())
        since = None if self._last is None else self._last - _OVERLAP
        rows = rate_usage.exchange(self.engine, self.worker, self._unsent, now=now, since=since)
        self._unsent = {}
        used: dict[str, int] = {}
        for worker, key, total, started in rows:
            seen = self._seen.get((worker, key))
            if seen is not None and seen[0] == started:
                grown = total - seen[1]
            elif since is not None and started >= since:
                grown = total
            else:
                grown = 0
            self._seen[(worker, key)] = (started, total, now)
            if grown > 0:
                used[key] = used.get(key, 0) + grown
        self._last = now
        if used and self.limit is not None:
            self.limit.take_used_elsewhere(used)
        if now - self._forgot >= _FORGET_EVERY:
            self._forgot = now
            rate_usage.forget_old(self.engine, now=now)
            horizon = now - rate_usage.FORGET_AFTER
            self._seen = {k: v for k, v in self._seen.items() if v[2] >= horizon}
        return used

    def start(self) -> None:
        """Start the sharing thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="needlepoint-rate-sharing", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.exchange()
            except Exception:  # e.g. the database busy past the lock wait: next time
                log.warning("could not share the API rate limit's use", exc_info=True)
            if self._stop.wait(self.interval):
                return
