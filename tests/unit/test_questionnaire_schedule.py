"""The schedule of patient-reported questionnaires (`domain.questionnaires`): properties
that hold for every episode, and the defaults issue 16 asks for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.enums import TimePoint
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.instruments import library
from needlepoint.domain.questionnaires import (
    Schedule,
    check_schedule,
    default_schedule,
    due_dates,
    gives_up,
    hash_link_token,
    home_form,
    new_link_token,
    reminder_due,
    retry_delay,
    self_report_instruments,
    time_point_now,
)

DAY0 = date(2026, 1, 5)
ALL = frozenset(TimePoint)


@st.composite
def episodes(draw: st.DrawFn) -> tuple[Schedule, date, list[date], date | None, date]:
    every = draw(st.none() | st.integers(1, 30))
    follow = tuple(sorted(draw(st.sets(st.integers(1, 400), max_size=3))))
    chosen = draw(
        st.dictionaries(
            st.sampled_from(["ndi", "nprs", "groc", "odi"]),
            st.frozensets(st.sampled_from(list(TimePoint)), min_size=1),
            min_size=1,
        )
    )
    opened = DAY0 + timedelta(days=draw(st.integers(0, 300)))
    length = draw(st.none() | st.integers(0, 200))
    closed = None if length is None else opened + timedelta(days=length)
    visits = [opened + timedelta(days=d) for d in draw(st.lists(st.integers(-20, 220)))]
    until = opened + timedelta(days=draw(st.integers(0, 250)))
    return Schedule(chosen, every, follow), opened, visits, closed, until


@given(episodes())
def test_due_dates_are_ordered_and_nothing_is_due_before_intake(ep: tuple) -> None:  # type: ignore[type-arg]
    schedule, opened, visits, closed, until = ep
    due = due_dates(schedule, opened_on=opened, visits=visits, closed_on=closed, until=until)
    days = [d.due_on for d in due]
    assert days == sorted(days)
    assert all(d >= opened for d in days)
    assert len(set(due)) == len(due)  # never the same questionnaire twice on a day and point


@given(episodes())
def test_each_time_point_falls_where_it_belongs(ep: tuple) -> None:  # type: ignore[type-arg]
    schedule, opened, visits, closed, until = ep
    due = due_dates(schedule, opened_on=opened, visits=visits, closed_on=closed, until=until)
    for d in due:
        assert d.instrument_id in schedule.asked_at(d.time_point)
        if d.time_point is TimePoint.INTAKE:
            assert d.due_on == opened
        elif d.time_point is TimePoint.DURING_CARE:
            assert d.due_on > opened
            assert d.due_on < closed if closed is not None else d.due_on <= until
            if schedule.every_n_days is None:
                assert d.due_on in visits
            else:
                assert (d.due_on - opened).days % schedule.every_n_days == 0
        elif d.time_point is TimePoint.DISCHARGE:
            assert d.due_on == closed
        else:
            assert closed is not None
            assert (d.due_on - closed).days in schedule.follow_up_days


@given(episodes())
def test_follow_ups_are_relative_to_discharge_and_only_after_it(ep: tuple) -> None:  # type: ignore[type-arg]
    schedule, opened, visits, closed, until = ep
    due = due_dates(schedule, opened_on=opened, visits=visits, closed_on=closed, until=until)
    follow = {(d.due_on, d.instrument_id) for d in due if d.time_point is TimePoint.FOLLOW_UP}
    if closed is None:
        assert not follow
        assert not any(d.time_point is TimePoint.DISCHARGE for d in due)
    else:
        expected = {
            (closed + timedelta(days=n), iid)
            for n in schedule.follow_up_days
            for iid in schedule.asked_at(TimePoint.FOLLOW_UP)
        }
        assert follow == expected


def test_the_default_for_neck_pain_asks_ndi_and_nprs_throughout_and_groc_after_care() -> None:
    s = default_schedule("neck_pain")
    assert s.instruments["ndi"] == ALL
    assert s.instruments["nprs"] == ALL
    assert s.instruments["groc"] == {TimePoint.DISCHARGE, TimePoint.FOLLOW_UP}
    assert s.follow_up_days == (42, 91)  # 6 weeks and 3 months (13 weeks)
    assert "odi" in default_schedule("low_back_pain").instruments
    assert "quickdash" in default_schedule("shoulder_pain").instruments
    assert "lefs" in default_schedule("knee_pain").instruments


def test_a_discharged_neck_pain_episode_is_followed_up_at_six_weeks_and_three_months() -> None:
    due = due_dates(default_schedule("neck_pain"), opened_on=DAY0, closed_on=date(2026, 2, 2))
    follow = sorted({d.due_on for d in due if d.time_point is TimePoint.FOLLOW_UP})
    assert follow == [date(2026, 3, 16), date(2026, 5, 4)]


def test_self_reported_questionnaires_need_no_clinician_context() -> None:
    ids = {i.id for i in self_report_instruments()}
    assert {"ndi", "odi", "nprs", "groc"} <= ids
    assert not ids & {"rom", "ppt", "trigger_points"}
    # Those with context the patient gives on a form of its own (domain.home_reports).
    with_context = {"psfs", "psfs_2", "return_to_activity", "analgesic_use"}
    assert with_context <= ids
    for iid in ids:
        assert (home_form(iid) is not None) == (iid in with_context)
        if iid not in with_context:
            assert not library()[iid].requires_context
            assert library()[iid].recorded_as == "measurement"


def test_the_default_plan_asks_analgesic_use_and_return_to_activity_after_care() -> None:
    s = default_schedule("low_back_pain")
    after = {TimePoint.DISCHARGE, TimePoint.FOLLOW_UP}
    assert s.instruments["analgesic_use"] == after
    assert s.instruments["return_to_activity"] == after


def test_a_schedule_from_input_names_the_bad_field() -> None:
    with pytest.raises(InvalidInput) as e:
        check_schedule({"rom": ["intake"]}, None, [42])
    assert e.value.field == "instruments.rom"
    with pytest.raises(InvalidInput) as e:
        check_schedule({"ndi": ["someday"]}, None, [42])
    assert e.value.field == "instruments.ndi"
    with pytest.raises(InvalidInput) as e:
        check_schedule({"ndi": ["intake"]}, 0, [42])
    assert e.value.field == "every_n_days"
    with pytest.raises(InvalidInput) as e:
        check_schedule({"ndi": ["intake"]}, None, [0])
    assert e.value.field == "follow_up_days"
    ok = check_schedule({"ndi": ["intake", "follow_up"]}, 7, [91, 42, 42])
    assert ok.follow_up_days == (42, 91)


def test_the_time_point_of_a_questionnaire_sent_today() -> None:
    assert time_point_now(DAY0, None, DAY0) is TimePoint.INTAKE
    assert time_point_now(DAY0, None, DAY0 + timedelta(days=3)) is TimePoint.DURING_CARE
    assert time_point_now(DAY0, DAY0 + timedelta(days=9), DAY0 + timedelta(days=9)) is (
        TimePoint.DISCHARGE
    )
    assert time_point_now(DAY0, DAY0 + timedelta(days=9), DAY0 + timedelta(days=50)) is (
        TimePoint.FOLLOW_UP
    )


def test_a_link_token_is_random_and_only_its_hash_is_kept() -> None:
    a, b = new_link_token(), new_link_token()
    assert a != b
    assert len(a) >= 43
    assert hash_link_token(a) != a
    assert len(hash_link_token(a)) == 64
    assert hash_link_token(a) == hash_link_token(a)


@given(st.integers(0, 20), st.integers(0, 20))
def test_retry_back_off_grows_and_is_capped(a: int, b: int) -> None:
    if a <= b:
        assert retry_delay(a) <= retry_delay(b)
    assert retry_delay(a) <= timedelta(hours=6)
    assert gives_up(a) == (a >= 8)


def test_reminders_follow_their_schedule_and_stop() -> None:
    sent = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert not reminder_due(sent, 0, sent + timedelta(days=2), [3, 7])
    assert reminder_due(sent, 0, sent + timedelta(days=3), [3, 7])
    assert reminder_due(sent, 1, sent + timedelta(days=7), [3, 7])
    assert not reminder_due(sent, 2, sent + timedelta(days=70), [3, 7])


@given(episodes(), st.integers(0, 400), st.integers(0, 5))
def test_what_is_sent_now_is_due_recently_and_never_twice(
    ep: tuple,  # type: ignore[type-arg]
    offset: int,
    window: int,
) -> None:
    from needlepoint.domain.questionnaires import due_now

    schedule, opened, visits, closed, _until = ep
    today = opened + timedelta(days=offset)
    now = due_now(
        schedule,
        opened_on=opened,
        visits=visits,
        closed_on=closed,
        today=today,
        already=set(),
        window_days=window,
    )
    assert all(today - timedelta(days=window) <= d.due_on <= today for d in now)
    sent = {(d.instrument_id, d.time_point, d.due_on) for d in now}
    again = due_now(
        schedule,
        opened_on=opened,
        visits=visits,
        closed_on=closed,
        today=today,
        already=sent,
        window_days=window,
    )
    assert again == []
