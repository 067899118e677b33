"""A time refused as in the future is named by its field, in words that quote no clock
time: the rule does not know the clinic's time zone, and a UTC time would contradict
the local time the clinician typed (issue 15: local time on every screen)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.notes import FUTURE_TOLERANCE, check_not_future

NOW = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)


@given(
    ahead=st.timedeltas(
        min_value=FUTURE_TOLERANCE + timedelta(seconds=1), max_value=timedelta(days=400)
    )
)
def test_a_future_time_is_refused_without_quoting_a_clock_time(ahead: timedelta) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_not_future(NOW + ahead, NOW, "started_at")
    assert refused.value.field == "started_at"
    message = str(refused.value)
    assert "in the future" in message
    assert "UTC" not in message
    assert not re.search(r"\d{1,2}:\d{2}", message)


@given(ahead=st.timedeltas(min_value=timedelta(days=-400), max_value=FUTURE_TOLERANCE))
def test_a_time_up_to_the_tolerance_ahead_is_accepted(ahead: timedelta) -> None:
    check_not_future(NOW + ahead, NOW, "started_at")
