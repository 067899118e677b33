"""Patient-reported questionnaires from home: which questionnaires a patient answers, at
which time points of an episode of care, and when each is due. Pure and typed.

The defaults (`data/questionnaire_schedule.yaml`) are the product's, as issue 16 asks for
them: each condition's function questionnaire (`conditions.yaml`) and NPRS at every time
point, GROC at discharge and after; follow-ups 6 weeks and 3 months (13 weeks) after
discharge. A clinic changes them per condition (`QuestionnairePlan`).

Time points (`TimePoint`):

* intake — the day the episode opens;
* during care — before each visit (the visit's day), or every N days after intake while
  the episode is open;
* discharge — the day the episode closes;
* follow-up — the given numbers of days after discharge.

Links: a patient's link is a random token; only its SHA-256 is stored
(`hash_link_token`), so a copy of the database opens nothing."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import conditions, load_data
from needlepoint.domain.enums import TimePoint
from needlepoint.domain.errors import DomainError, InvalidInput
from needlepoint.domain.instruments import Instrument, library
from needlepoint.domain.outcomes import RESERVED_CONTEXT

TIME_POINT_ORDER = {tp: i for i, tp in enumerate(TimePoint)}
TIME_POINT_WORDS = {
    TimePoint.INTAKE: "at the start of care",
    TimePoint.DURING_CARE: "during care",
    TimePoint.DISCHARGE: "at discharge",
    TimePoint.FOLLOW_UP: "after discharge",
}
MAX_FOLLOW_UP_DAYS = 730
"""The latest follow-up a plan may ask for (two years after discharge)."""


HomeForm = Literal["activities", "return_to_activity", "analgesic_log"]
"""The form of a questionnaire whose context the patient gives (`domain.home_reports`)."""


class _Defaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    source: str
    follow_up_days: list[int]
    every_n_days: int | None
    link_valid_days: int
    reminder_after_days: list[int]
    every_condition: dict[str, list[TimePoint]]
    self_report: list[str]
    asked_with_context: dict[str, HomeForm] = {}

    @model_validator(mode="after")
    def _answerable(self) -> _Defaults:
        lib = library()
        for iid in self.self_report:
            inst = lib.get(iid)
            if inst is None:
                raise ValueError(f"questionnaire_schedule.yaml: unknown instrument {iid}")
            if iid in self.asked_with_context:
                continue
            if inst.recorded_as != "measurement" or inst.requires_context:
                raise ValueError(f"questionnaire_schedule.yaml: {iid} is not self-reported")
        stray = set(self.asked_with_context) - set(self.self_report)
        if stray:
            raise ValueError(f"questionnaire_schedule.yaml: not self-reported: {sorted(stray)}")
        return self


@cache
def defaults() -> _Defaults:
    """The default schedule; every questionnaire it names is one a patient can answer."""
    found = _Defaults.model_validate(load_data("questionnaire_schedule.yaml"))
    unknown = set(found.every_condition) - set(found.self_report)
    if unknown:
        raise ValueError(f"questionnaire_schedule.yaml: not self-reported: {sorted(unknown)}")
    return found


def self_report_instruments() -> list[Instrument]:
    """The questionnaires a patient can answer alone, in the data file's order."""
    lib = library()
    return [lib[i] for i in defaults().self_report]


def is_self_report(instrument_id: str) -> bool:
    """Whether a patient can answer this questionnaire alone on the patient's pages."""
    return instrument_id in defaults().self_report


def home_form(instrument_id: str) -> HomeForm | None:
    """The form of its own a questionnaire is answered on (its context given by the
    patient: PSFS's activities, return to work or sport, the analgesic log), or None for
    a questionnaire of items only."""
    return defaults().asked_with_context.get(instrument_id)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Which questionnaires are asked at which time points, how often during care
    (`every_n_days`; None = before each visit) and the follow-ups (days after
    discharge)."""

    instruments: Mapping[str, frozenset[TimePoint]]
    every_n_days: int | None
    follow_up_days: tuple[int, ...]

    def asked_at(self, time_point: TimePoint) -> list[str]:
        """The questionnaires asked at `time_point`, in a stable order."""
        return sorted(i for i, points in self.instruments.items() if time_point in points)


def default_schedule(condition: str) -> Schedule:
    """The product's default for a condition: its function questionnaire at every time
    point (where the condition has a self-reported one), plus every condition's own."""
    d = defaults()
    chosen: dict[str, frozenset[TimePoint]] = {
        iid: frozenset(points) for iid, points in d.every_condition.items()
    }
    found = conditions().get(condition)
    function = found.function_instrument if found is not None else None
    if function is not None and is_self_report(function):
        chosen[function] = frozenset(TimePoint)
    return Schedule(chosen, d.every_n_days, tuple(d.follow_up_days))


def check_schedule(
    instruments: Mapping[str, Iterable[str]],
    every_n_days: int | None,
    follow_up_days: Sequence[int],
) -> Schedule:
    """A clinic's schedule from form or API input; InvalidInput naming the field."""
    chosen: dict[str, frozenset[TimePoint]] = {}
    for iid, points in instruments.items():
        if not is_self_report(iid):
            raise InvalidInput(
                f"'{iid}' is not a questionnaire a patient answers alone",
                field=f"instruments.{iid}",
            )
        try:
            parsed = frozenset(TimePoint(p) for p in points)
        except ValueError:
            raise InvalidInput(
                f"time points are {', '.join(TimePoint)}", field=f"instruments.{iid}"
            ) from None
        if parsed:
            chosen[iid] = parsed
    if not chosen:
        raise InvalidInput("choose at least one questionnaire", field="instruments")
    if every_n_days is not None and not 1 <= every_n_days <= 365:
        raise InvalidInput("every_n_days must be 1 to 365 days", field="every_n_days")
    days = sorted(set(follow_up_days))
    if any(not 1 <= d <= MAX_FOLLOW_UP_DAYS for d in days):
        raise InvalidInput(
            f"follow-ups are 1 to {MAX_FOLLOW_UP_DAYS} days after discharge",
            field="follow_up_days",
        )
    return Schedule(chosen, every_n_days, tuple(days))


@dataclass(frozen=True, slots=True, order=True)
class Due:
    """One questionnaire due on one day at one time point."""

    due_on: date
    order: int
    instrument_id: str
    time_point: TimePoint


def _due(on: date, time_point: TimePoint, schedule: Schedule) -> list[Due]:
    return [
        Due(on, TIME_POINT_ORDER[time_point], iid, time_point)
        for iid in schedule.asked_at(time_point)
    ]


def due_dates(
    schedule: Schedule,
    *,
    opened_on: date,
    visits: Iterable[date] = (),
    closed_on: date | None = None,
    until: date | None = None,
) -> list[Due]:
    """Every questionnaire due in an episode, in date order: at intake; during care on
    each visit day after intake (or every N days after intake) before discharge, and for
    an open episode not after `until`; at discharge; and the follow-ups after discharge.
    Nothing is due before intake."""
    if closed_on is not None and closed_on < opened_on:
        raise InvalidInput("discharge is before intake", field="closed_on")
    out = _due(opened_on, TimePoint.INTAKE, schedule)
    end = closed_on if closed_on is not None else until
    care_days: set[date] = set()
    if schedule.every_n_days is not None:
        if end is not None:
            step = timedelta(days=schedule.every_n_days)
            day = opened_on + step
            while day < end or (closed_on is None and day == end):
                care_days.add(day)
                day += step
    else:
        care_days = {
            v
            for v in visits
            if v > opened_on
            and (closed_on is None or v < closed_on)
            and (closed_on is not None or until is None or v <= until)
        }
    for day in sorted(care_days):
        out += _due(day, TimePoint.DURING_CARE, schedule)
    if closed_on is not None:
        out += _due(closed_on, TimePoint.DISCHARGE, schedule)
        for days in schedule.follow_up_days:
            out += _due(closed_on + timedelta(days=days), TimePoint.FOLLOW_UP, schedule)
    return sorted(out)


def time_point_now(opened_on: date, closed_on: date | None, today: date) -> TimePoint:
    """The time point a questionnaire sent today belongs to: intake on the episode's
    first day, during care while it is open, discharge on its last day, a follow-up
    after."""
    if closed_on is not None:
        return TimePoint.DISCHARGE if today <= closed_on else TimePoint.FOLLOW_UP
    return TimePoint.INTAKE if today <= opened_on else TimePoint.DURING_CARE


# -- answers after care ------------------------------------------------------------------

AFTER_DISCHARGE_DAYS = "after_discharge_days"
"""The measurement-context key that marks a patient's answer given after care: the days
from the episode's discharge to the answer (in the clinic's dates)."""
FOLLOW_UP_DAY = "follow_up_day"
"""The context key naming the follow-up the answer was asked for (days after discharge
it was due, e.g. 42)."""

FOLLOW_UP_WINDOWS: tuple[tuple[str, int, int, int], ...] = (
    ("6 weeks", 42, 21, 66),
    ("3 months", 91, 67, 120),
)
"""The after-care analysis's follow-ups (issue 16's defaults: 6 weeks and 3 months, 13
weeks, after discharge): label, the nominal day, and the days after discharge a
follow-up's due day must fall in to count as that follow-up (product choices, not
clinical thresholds: a plan's other follow-ups are kept but not in these two columns)."""


assert (AFTER_DISCHARGE_DAYS, FOLLOW_UP_DAY) == RESERVED_CONTEXT  # one list of the keys


def discharge_grace_days() -> int:
    """How many days after the discharge day a discharge questionnaire still counts as
    the discharge value: as long as its first link opens (`link_valid_days`, a product
    default, not a clinical threshold). Answered later (a reminder, or the link of a
    follow-up that opens it first), it is an after-care value, never the discharge
    outcome."""
    return defaults().link_valid_days


def is_after_care(time_point: TimePoint, closed_on: date | None, answered_on: date) -> bool:
    """Whether a patient's answer is an after-care value of its episode: the episode was
    discharged and the answer is for a follow-up; or for the discharge, but given more
    than `discharge_grace_days()` after the discharge day; or for an earlier time point,
    but given after the discharge day."""
    if closed_on is None:
        return False
    if time_point is TimePoint.FOLLOW_UP:
        return True
    if time_point is TimePoint.DISCHARGE:
        return (answered_on - closed_on).days > discharge_grace_days()
    return answered_on > closed_on


def logged_after_care(closed_on: date | None, recorded_on: date) -> bool:
    """Whether an analgesic-log entry is an after-care value of its episode. The log keeps
    no time point: a closed episode takes entries only from the patient's questionnaires,
    and one recorded within `discharge_grace_days()` of the discharge day is the
    discharge answer (as a discharge questionnaire is); later ones are after care."""
    return closed_on is not None and (recorded_on - closed_on).days > discharge_grace_days()


def after_care_context(closed_on: date, due_on: date, answered_on: date) -> dict[str, int]:
    """The context stored with an after-care answer: days after discharge it was given
    and the follow-up day it was due (both in the clinic's dates)."""
    return {
        AFTER_DISCHARGE_DAYS: (answered_on - closed_on).days,
        FOLLOW_UP_DAY: max(0, (due_on - closed_on).days),
    }


def after_care_days(context: Mapping[str, object] | None) -> int | None:
    """Days after discharge of an after-care answer (from its context); None for a value
    taken during care."""
    if not context:
        return None
    days = context.get(AFTER_DISCHARGE_DAYS)
    return days if isinstance(days, int) and not isinstance(days, bool) else None


def follow_up_window(day: int | None) -> str | None:
    """The follow-up (of `FOLLOW_UP_WINDOWS`) a day after discharge belongs to, if any."""
    if day is None:
        return None
    for label, _nominal, low, high in FOLLOW_UP_WINDOWS:
        if low <= day <= high:
            return label
    return None


# -- links ---------------------------------------------------------------------------------


class LinkClosed(DomainError):
    """A questionnaire link that does not open: `reason` is unknown, expired, used,
    superseded or revoked (the patient's page says which, in plain words)."""

    def __init__(self, reason: str, *, link: object = None) -> None:
        super().__init__(f"the link does not open ({reason})", field="token")
        self.reason = reason
        self.link = link


TOKEN_BYTES = 32


def new_link_token() -> str:
    """A new link token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_link_token(token: str) -> str:
    """What is stored of a link token: its SHA-256 (hex). A token has 256 random bits,
    so a fast hash is enough (no dictionary to guess from)."""
    return hashlib.sha256(token.encode()).hexdigest()


def link_expiry(issued_at: datetime, valid_days: int | None = None) -> datetime:
    """When a link issued at `issued_at` stops opening."""
    return issued_at + timedelta(days=valid_days or defaults().link_valid_days)


def reminder_due(
    last_message_at: datetime, reminders_sent: int, now: datetime, after_days: Sequence[int]
) -> bool:
    """Whether the next reminder is due: fewer reminders than the schedule has, and its
    number of days passed since the last message."""
    if reminders_sent >= len(after_days):
        return False
    return now >= last_message_at + timedelta(days=after_days[reminders_sent])


# -- outbox retries ------------------------------------------------------------------------

MAX_ATTEMPTS = 8
BASE_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 6 * 3600


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before the next attempt after `attempts` failed ones:
    exponential back-off (1, 2, 4 … minutes), capped at 6 hours."""
    seconds = min(BASE_DELAY_SECONDS * 2 ** max(attempts - 1, 0), MAX_DELAY_SECONDS)
    return timedelta(seconds=seconds)


def gives_up(attempts: int) -> bool:
    """Whether a message that failed `attempts` times is given up (state failed)."""
    return attempts >= MAX_ATTEMPTS


# -- sending by the schedule -----------------------------------------------------------------

SEND_WINDOW_DAYS = 3
"""How late the worker still sends a questionnaire by the schedule: one due up to this many
days ago (a server that was down catches up); older ones are left to the clinician."""


def due_now(
    schedule: Schedule,
    *,
    opened_on: date,
    visits: Iterable[date],
    closed_on: date | None,
    today: date,
    already: set[tuple[str, TimePoint, date]],
    window_days: int = SEND_WINDOW_DAYS,
) -> list[Due]:
    """The questionnaires of the schedule due now (on a day from `window_days` ago to
    today) that were not already asked (`already`: instrument, time point, due day)."""
    earliest = today - timedelta(days=window_days)
    return [
        d
        for d in due_dates(
            schedule, opened_on=opened_on, visits=visits, closed_on=closed_on, until=today
        )
        if earliest <= d.due_on <= today
        and (d.instrument_id, d.time_point, d.due_on) not in already
    ]
