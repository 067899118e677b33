"""Sign-in delays (`domain.throttle`): a few failures are free, then each further one
doubles the wait up to a cap; nobody waits for failures on a key they did not make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from needlepoint.adapters.passwords import password_problem
from needlepoint.domain import throttle
from needlepoint.domain.throttle import Policy, delay_after, retry_seconds, wait

POLICIES = st.sampled_from([throttle.ACCOUNT_AT_ADDRESS, throttle.ADDRESS, throttle.SECOND_FACTOR])
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@given(POLICIES, st.integers(min_value=0, max_value=10_000))
def test_more_failures_never_shorten_the_delay_and_it_never_passes_the_cap(
    policy: Policy, failures: int
) -> None:
    assert delay_after(failures, policy) <= delay_after(failures + 1, policy)
    assert timedelta(0) <= delay_after(failures, policy) <= policy.max_delay


@given(POLICIES, st.integers(min_value=0, max_value=50))
def test_the_free_failures_cost_nothing_and_the_next_ones_double(
    policy: Policy, failures: int
) -> None:
    if failures < policy.free:
        assert delay_after(failures, policy) == timedelta(0)
    else:
        doubled = policy.first_delay * 2 ** min(failures - policy.free, 32)
        assert delay_after(failures, policy) == min(doubled, policy.max_delay)


@given(
    POLICIES,
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=48 * 3600),
)
def test_the_wait_counts_down_from_the_last_failure_and_is_never_negative(
    policy: Policy, failures: int, seconds_since: int
) -> None:
    last = NOW - timedelta(seconds=seconds_since)
    remaining = wait(failures, last, NOW, policy)
    assert remaining >= timedelta(0)
    assert remaining == max(timedelta(0), delay_after(failures, policy) - (NOW - last))
    assert wait(failures, None, NOW, policy) == timedelta(0)  # no failure: no wait
    if remaining:
        assert retry_seconds(remaining) >= remaining.total_seconds()


def test_the_second_factor_locks_after_ten_failures_with_a_few_free() -> None:
    assert throttle.SECOND_FACTOR.free < throttle.MFA_LOCK_AFTER == 10
    assert throttle.ACCOUNT_AT_ADDRESS.free == 5
    assert throttle.ADDRESS.free == 20


@given(st.emails())
def test_a_password_equal_to_the_email_is_refused_whatever_its_case_or_spaces(
    email: str,
) -> None:
    for typed in (email, email.upper(), f"  {email} ", email.split("@")[0]):
        if len(typed) >= 8:
            assert password_problem(typed, email) == "a password may not be your email address"


def test_spaces_count_in_a_password() -> None:
    assert password_problem("  plum  orchard  ") is None
    assert password_problem("q z x  v") is None  # 8 characters, spaces included
    assert password_problem("  qzxv  ") is None
    assert password_problem("qzxv") is not None  # the same without its spaces: too short
