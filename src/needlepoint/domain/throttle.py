"""Slowing down password and second-factor guessing without locking the victim out.

Failed sign-ins are counted per key: an account at one network address, one address
for all accounts, and one account's second factor. A few failures are free; after that
each further attempt on the key must wait a delay that doubles with every failure, up to
a cap. Nobody is ever locked out of a key they have not failed on: a guesser at one
address slows only themselves (and whoever shares that address), never the account's
owner signing in from elsewhere.

The second factor is different: whoever reaches it already holds the password, so its
failures are counted on the account (whatever the address), never reset by a correct
password, and after `MFA_LOCK_AFTER` failures the second factor is locked until the
user signs in fully or an owner unlocks it. Pure functions; the counts come from the
sign-in log (`adapters.db.logins`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Policy:
    """`free` failures cost nothing; the next waits `first_delay`, each further one twice
    the previous, at most `max_delay`; failures older than `window` are forgotten."""

    free: int
    first_delay: timedelta
    max_delay: timedelta
    window: timedelta


ACCOUNT_AT_ADDRESS = Policy(
    free=5,
    first_delay=timedelta(seconds=30),
    max_delay=timedelta(minutes=15),
    window=timedelta(hours=24),
)
ADDRESS = Policy(
    free=20,
    first_delay=timedelta(seconds=30),
    max_delay=timedelta(minutes=15),
    window=timedelta(hours=1),
)
SECOND_FACTOR = Policy(
    free=3,
    first_delay=timedelta(seconds=30),
    max_delay=timedelta(minutes=15),
    window=timedelta(days=3650),  # counted until a full sign-in or an owner's unlock
)
MFA_LOCK_AFTER = 10  # failed codes before the second factor locks (owner unlocks)


def delay_after(failures: int, policy: Policy) -> timedelta:
    """How long the next attempt must wait after the last of `failures` failures."""
    if failures < policy.free:
        return timedelta(0)
    doublings = min(failures - policy.free, 32)  # the cap is reached long before
    return min(policy.first_delay * (1 << doublings), policy.max_delay)


def wait(failures: int, last_failure: datetime | None, now: datetime, policy: Policy) -> timedelta:
    """How much longer the next attempt must wait (zero: it may go ahead now)."""
    if last_failure is None or failures <= 0:
        return timedelta(0)
    remaining = last_failure + delay_after(failures, policy) - now
    return max(remaining, timedelta(0))


def retry_seconds(remaining: timedelta) -> int:
    """`remaining` in whole seconds for a `Retry-After` header (at least 1)."""
    return max(1, int(-(-remaining.total_seconds() // 1)))
