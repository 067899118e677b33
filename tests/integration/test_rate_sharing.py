"""The API rate limit holds across serving processes: each process takes the others'
use (shared through the database) from its own buckets. Two apps (or two limiters) on
one database stand for two processes of `needlepoint serve --workers 2`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.adapters.db.tables import rate_usage
from needlepoint.web.app import create_app
from needlepoint.web.limits import RateLimit
from needlepoint.web.rate_sharing import RateSharing

KEY = "token:" + "a" * 32


def _process(engine: sa.Engine, *, rate: float = 0.01, burst: int = 5) -> RateLimit:
    sharing = RateSharing(engine)
    limit = RateLimit(_never_called, per_caller=rate, burst=burst, share=sharing)
    limit.sharing = sharing  # type: ignore[attr-defined]
    return limit


async def _never_called(*_: Any) -> None:
    raise AssertionError("not called")


def _admitted(limit: RateLimit, n: int) -> int:
    return sum(limit._take(KEY, limit.rate, limit.burst, limit.clock()) == 0.0 for _ in range(n))


def _exchange(limit: RateLimit, at: datetime) -> dict[str, int]:
    used: dict[str, int] = limit.sharing.exchange(at)  # type: ignore[attr-defined]
    return used


def test_a_burst_used_on_one_process_is_spent_on_the_other(engine: sa.Engine) -> None:
    first, second = _process(engine), _process(engine)
    now = datetime.now(UTC)
    _exchange(first, now)
    _exchange(second, now)  # both running before the caller comes

    assert _admitted(first, 5) == 5
    _exchange(first, now + timedelta(seconds=0.5))
    assert _exchange(second, now + timedelta(seconds=0.6)) == {KEY: 5}
    assert _admitted(second, 3) == 0, "the burst was spent on the other process"

    # and back: what the second admits once it has refilled counts on the first
    second.buckets[KEY].tokens = 2.0
    assert _admitted(second, 2) == 2
    _exchange(second, now + timedelta(seconds=1))
    assert _exchange(first, now + timedelta(seconds=1.1)) == {KEY: 2}
    # a total seen again (the overlap re-reads rows) is not charged twice
    assert _exchange(first, now + timedelta(seconds=1.2)) == {}


def test_without_sharing_each_process_would_admit_its_own_burst(engine: sa.Engine) -> None:
    """The control: the same use on two unshared limiters admits twice the burst."""
    first = RateLimit(_never_called, per_caller=0.01, burst=5)
    second = RateLimit(_never_called, per_caller=0.01, burst=5)
    assert _admitted(first, 5) + _admitted(second, 5) == 10


def test_use_before_a_process_started_is_not_charged_again(engine: sa.Engine) -> None:
    first = _process(engine)
    now = datetime.now(UTC)
    _exchange(first, now)
    assert _admitted(first, 5) == 5
    _exchange(first, now + timedelta(seconds=0.5))

    late = _process(engine)  # starts after the burst: its first exchange only learns
    assert _exchange(late, now + timedelta(seconds=1)) == {}
    assert _admitted(late, 1) == 1


def test_a_total_started_again_is_charged_in_full(engine: sa.Engine) -> None:
    """A process that forgot a key (its table is bounded) counts it from zero again,
    with a new start: the others charge the new total whole, not its difference."""
    first, second = _process(engine), _process(engine)
    now = datetime.now(UTC)
    _exchange(first, now)
    _exchange(second, now)
    assert _admitted(first, 4) == 4
    _exchange(first, now + timedelta(seconds=0.5))
    assert _exchange(second, now + timedelta(seconds=0.6)) == {KEY: 4}

    first.buckets.clear()  # forgotten, as the least recent of too many keys would be
    first._used.clear()
    assert _admitted(first, 2) == 2
    _exchange(first, now + timedelta(seconds=1))
    assert _exchange(second, now + timedelta(seconds=1.1)) == {KEY: 2}


def test_old_totals_are_forgotten(engine: sa.Engine) -> None:
    first = _process(engine)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    _exchange(first, long_ago)
    assert _admitted(first, 1) == 1
    _exchange(first, long_ago + timedelta(seconds=1))
    worker = first.sharing.worker  # type: ignore[attr-defined]
    count = sa.select(sa.func.count()).where(rate_usage.c.worker == worker)
    with engine.connect() as conn:
        assert conn.execute(count).scalar_one() == 1
    _exchange(first, datetime.now(UTC))  # an exchange now deletes rows idle for an hour
    with engine.connect() as conn:
        assert conn.execute(count).scalar_one() == 0


def test_two_serving_apps_share_the_limit_through_the_database(engine: sa.Engine) -> None:
    """The whole path: two apps as two processes, their sharing threads running."""
    options: dict[str, Any] = {
        "secret_key": "s" * 40,
        "rate_limit": 0.01,
        "rate_burst": 3,
        "processes": 2,
    }
    with (
        TestClient(create_app(engine, **options)) as first,
        TestClient(create_app(engine, **options)) as second,
    ):
        time.sleep(1)  # both have exchanged once (their start)
        answers = [first.get("/api/v1/patients").status_code for _ in range(3)]
        assert 429 not in answers  # 401: no token, but counted against the address
        written = sa.select(sa.func.max(rate_usage.c.used)).where(
            rate_usage.c.key == "address:testclient"
        )
        deadline = time.monotonic() + 20
        while True:  # the first has written its use ...
            with engine.connect() as conn:
                if conn.execute(written).scalar() == 3:
                    break
            assert time.monotonic() < deadline, "the use was never shared"
            time.sleep(0.1)
        time.sleep(1.5)  # ... and the second has read it
        admitted = 0
        while second.get("/api/v1/patients").status_code != 429:
            admitted += 1
            assert admitted <= 6
        # an address may make twice a caller's burst (6); 3 were spent on the first
        assert admitted == 3
    # The control: an app serving alone does not share (nor read the others' use).
    with TestClient(create_app(engine, **{**options, "processes": 1})) as alone:
        answers = [alone.get("/api/v1/patients").status_code for _ in range(7)]
        assert answers == [401] * 6 + [429]
