"""The clinic's local time: its IANA time zone, and the conversions between the wall-clock
time a clinician reads and types and the UTC instant that is stored.

Storage is always UTC; forms show and accept the clinic's local time. A wall-clock time
that occurs twice (the hour repeated when clocks go back) is read as its first
occurrence, and every time shown carries its zone abbreviation (PDT / PST) so the two
are told apart. A wall-clock time that does not exist (the hour skipped when clocks go
forward) is read as the instant the same number of minutes after the change, as the
clinic's own clocks would show it (02:30 on the day clocks go forward is 03:30)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from needlepoint.domain.errors import InvalidInput

DEFAULT_ZONE = "UTC"
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
"""The value of an HTML `datetime-local` input (minutes)."""


@cache
def zone_names() -> frozenset[str]:
    """Every IANA zone name this installation knows (the system's or the tzdata package's)."""
    return frozenset(available_timezones()) | {DEFAULT_ZONE}


def is_zone_name(name: str) -> bool:
    return name in zone_names()


def check_zone_name(name: str, field: str = "time_zone") -> str:
    """The IANA zone name, or InvalidInput naming `field`."""
    if not is_zone_name(name):
        raise InvalidInput(
            f"{name!r} is not a time zone name: use an IANA name such as America/Los_Angeles",
            field=field,
        )
    return name


@cache
def zone(name: str) -> ZoneInfo:
    """The zone called `name`; UTC for a name this installation does not know (a clinic
    whose stored zone vanished from the tz database still shows times, in UTC)."""
    try:
        return ZoneInfo(name) if is_zone_name(name) else ZoneInfo(DEFAULT_ZONE)
    except ZoneInfoNotFoundError:  # pragma: no cover - listed but unreadable
        return ZoneInfo(DEFAULT_ZONE)


def to_local(moment: datetime, tz: ZoneInfo) -> datetime:
    """A stored (aware) instant as the clinic's wall-clock time."""
    return moment.astimezone(tz)


def from_local(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall-clock time in the clinic as a UTC instant (see the module's rules for
    repeated and skipped hours)."""
    local = wall.replace(tzinfo=tz, fold=0)
    # Round trip through UTC: a skipped wall time comes back as the real clock reading.
    return local.astimezone(UTC)


def input_value(moment: datetime, tz: ZoneInfo) -> str:
    """A stored instant as a `datetime-local` input shows it, in the clinic's zone."""
    return to_local(moment, tz).strftime(INPUT_FORMAT)


def parse_input(value: str, tz: ZoneInfo) -> datetime | None:
    """A `datetime-local` value (or an ISO time) as a UTC instant; None when it does not
    parse. A value that names its own offset keeps it."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return from_local(parsed, tz)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The clinic's calendar date at an instant (an evening in Los Angeles is still today
    there, though already tomorrow in UTC)."""
    return to_local(moment, tz).date()


def abbreviation(moment: datetime, tz: ZoneInfo) -> str:
    """The zone's abbreviation at that instant (`PDT`, `PST`, `UTC`, or an offset such as
    `+0530` where the tz database has no letters)."""
    local = to_local(moment, tz)
    name = local.tzname() or ""
    if name and (name[0] in "+-"):
        return local.strftime("UTC%z")
    return name


def clock(moment: datetime, tz: ZoneInfo) -> str:
    """`21:30 PDT`."""
    return f"{to_local(moment, tz):%H:%M} {abbreviation(moment, tz)}"


def when(moment: datetime, tz: ZoneInfo) -> str:
    """`2026-11-27 21:30 PST`: date, clock and zone, as every signed time is shown."""
    return f"{to_local(moment, tz):%Y-%m-%d} {clock(moment, tz)}"
