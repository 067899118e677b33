"""The clinic's local time (issue 15): wall-clock times a clinician types are stored in
UTC and shown again as typed, across daylight-saving changes; the zone abbreviation
tells repeated hours apart; an evening in Los Angeles is still that day there."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlepoint.adapters.server_zone import server_zone_name
from needlepoint.domain import clinic_time as ct
from needlepoint.domain.adverse_event_reports import report_deadline
from needlepoint.domain.commands import ClinicSettingsIn
from needlepoint.domain.entities import AdverseEvent, AdverseEventFollowUp
from needlepoint.domain.enums import AdverseEventKind, FollowUpKind, Severity
from needlepoint.web.ui.sign_refusals import sign_problems

ZONES = [
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",  # southern hemisphere: DST the other way round
    "Asia/Kolkata",  # +05:30, no DST
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "UTC",
]
LA = ZoneInfo("America/Los_Angeles")

walls = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2050, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2050, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    """The wall time is read on the clinic's clocks (not skipped by a DST change)."""
    return ct.to_local(ct.from_local(wall, tz), tz).replace(tzinfo=None) == wall


@settings(max_examples=300)
@given(wall=walls, name=st.sampled_from(ZONES))
def test_a_local_time_stored_in_utc_reads_back_as_typed(wall: datetime, name: str) -> None:
    tz = ZoneInfo(name)
    stored = ct.from_local(wall, tz)
    assert stored.tzinfo is UTC
    back = ct.to_local(stored, tz).replace(tzinfo=None)
    if _exists(wall, tz):
        assert back == wall
        assert ct.input_value(stored, tz) == wall.strftime("%Y-%m-%dT%H:%M")
    else:  # skipped by clocks going forward: read as the clock reading after the change
        assert timedelta(0) < back - wall <= timedelta(hours=1)


@settings(max_examples=300)
@given(moment=instants, name=st.sampled_from(ZONES))
def test_a_stored_instant_shown_and_typed_again_is_the_same_instant_or_its_repeated_hour(
    moment: datetime, name: str
) -> None:
    tz = ZoneInfo(name)
    typed = ct.input_value(moment, tz)
    parsed = ct.parse_input(typed, tz)
    assert parsed is not None
    if parsed != moment:
        # only in the hour repeated when clocks go back: read as its first occurrence,
        # the same wall time, told apart on screen by the abbreviation
        assert ct.to_local(parsed, tz).replace(tzinfo=None) == ct.to_local(moment, tz).replace(
            tzinfo=None
        )
        assert ct.abbreviation(parsed, tz) != ct.abbreviation(moment, tz) or name == "UTC"
        assert moment - parsed in (timedelta(minutes=30), timedelta(hours=1))


def test_an_evening_in_los_angeles_is_still_that_day_there() -> None:
    evening = datetime(2026, 11, 27, 5, 30, tzinfo=UTC)  # 21:30 PST on the 26th
    assert ct.local_date(evening, LA) == date(2026, 11, 26)
    assert evening.date() == date(2026, 11, 27)  # what UTC said before
    assert ct.when(evening, LA) == "2026-11-26 21:30 PST"


def test_the_repeated_hour_is_told_apart_by_its_abbreviation() -> None:
    first = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # 01:30 PDT
    second = first + timedelta(hours=1)  # 01:30 PST
    assert ct.clock(first, LA) == "01:30 PDT"
    assert ct.clock(second, LA) == "01:30 PST"
    assert ct.parse_input("2026-11-01T01:30", LA) == first


def test_a_skipped_time_reads_as_the_clock_after_the_change() -> None:
    parsed = ct.parse_input("2026-03-08T02:30", LA)  # clocks went 02:00 PST → 03:00 PDT
    assert parsed is not None
    assert ct.clock(parsed, LA) == "03:30 PDT"


def test_a_time_with_its_own_offset_keeps_it_and_junk_does_not_parse() -> None:
    assert ct.parse_input("2026-01-01T10:00+02:00", LA) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert ct.parse_input("yesterday", LA) is None


def test_zone_names_are_checked_and_the_error_names_the_field() -> None:
    assert ClinicSettingsIn(time_zone="America/Los_Angeles").time_zone == "America/Los_Angeles"
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "america/los_angeles"):
        with pytest.raises(ValueError, match="time_zone"):
            ClinicSettingsIn(time_zone=bad)
    assert ct.zone("No/Such_Zone") == ZoneInfo("UTC")


def test_the_server_zone_comes_from_tz_then_etc_then_utc(tmp_path: Path) -> None:
    assert server_zone_name({"TZ": "America/Chicago"}, tmp_path) == "America/Chicago"
    (tmp_path / "timezone").write_text("Europe/Paris\n")
    assert server_zone_name({}, tmp_path) == "Europe/Paris"
    assert server_zone_name({"TZ": "Not/AZone"}, tmp_path) == "Europe/Paris"
    (tmp_path / "timezone").unlink()
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Asia/Tokyo")
    assert server_zone_name({}, tmp_path) == "Asia/Tokyo"
    (tmp_path / "localtime").unlink()
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    assert server_zone_name({}, tmp_path) == "UTC"
    assert server_zone_name({}, tmp_path / "missing") == "UTC"


def _event(reportable: bool = True) -> AdverseEvent:
    return AdverseEvent(
        id=uuid4(),
        clinic_id=uuid4(),
        patient_id=uuid4(),
        kind=AdverseEventKind.PNEUMOTHORAX,
        severity=Severity.SERIOUS,
        onset_at=datetime(2026, 2, 4, 5, 30, tzinfo=UTC),  # 21:30 PST on the 3rd
        description="Short of breath",
        recorded_by=uuid4(),
        created_at=datetime(2026, 2, 5, tzinfo=UTC),
        reportable=reportable,
    )


def test_florida_has_a_fifteen_day_deadline_from_the_local_onset_date() -> None:
    found = report_deadline(_event(), [], "us-fl", LA)
    assert found is not None
    assert found.days == 15
    assert found.due_on == date(2026, 2, 18)
    assert not found.verified  # the source is only partly verified
    assert found.overdue(date(2026, 2, 19))
    assert not found.overdue(date(2026, 2, 18))


def test_a_report_follow_up_meets_the_deadline_and_others_invent_none() -> None:
    e = _event()
    reported = AdverseEventFollowUp(
        id=uuid4(),
        clinic_id=e.clinic_id,
        adverse_event_id=e.id,
        patient_id=e.patient_id,
        kind=FollowUpKind.REPORTED,
        text="Reported",
        occurred_at=datetime(2026, 2, 6, tzinfo=UTC),
        recorded_by=uuid4(),
        created_at=datetime(2026, 2, 6, tzinfo=UTC),
    )
    found = report_deadline(e, [reported], "us-fl", LA)
    assert found is not None
    assert found.reported_at == reported.occurred_at
    assert not found.overdue(date(2027, 1, 1))
    for other in ("us-va", "us-co", "none"):
        assert report_deadline(e, [], other, LA) is None
    assert report_deadline(_event(reportable=False), [], "us-fl", LA) is None


def test_a_refused_sign_names_the_site_and_its_field() -> None:
    sites = [{"muscle_id": "upper_trapezius", "side": "left"}, {"muscle_id": "levator_scapulae"}]
    problems = sign_problems(
        {"sites.1.depth_mm": ["must be positive"], "": ["not signed"], "started_at": ["future"]},
        sites,
    )
    by_field = {p.field_name: p for p in problems}
    assert by_field["sites-1-depth_mm"].href == "#site-1"
    assert by_field["sites-1-depth_mm"].where == "Site 2, Levator scapulae"
    assert by_field["started_at"].href == "#f-started_at"
    assert by_field[None].message == "not signed"
