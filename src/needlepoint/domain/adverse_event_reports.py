"""When an adverse event must be reported to the licensing board: only where the clinic's
jurisdiction has a deadline in the data (`data/jurisdictions.yaml`: Florida's 15 days,
from REFERENCE §2/§6, not verified first-hand). No deadline is invented for the others.

The data does not say from which moment the days run; the deadline shown counts them
from the event's onset (the earliest reading), in the clinic's calendar, and says so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from needlepoint.domain.clinic_time import local_date
from needlepoint.domain.credentials import jurisdiction
from needlepoint.domain.entities import AdverseEvent, AdverseEventFollowUp
from needlepoint.domain.enums import FollowUpKind
from needlepoint.domain.sources import Source, sources


@dataclass(frozen=True, slots=True)
class ReportDeadline:
    jurisdiction_name: str
    days: int
    due_on: date  # the last day, counted from the onset's date in the clinic
    sources: tuple[Source, ...]
    reported_at: datetime | None  # the first "reported" follow-up, when there is one

    @property
    def verified(self) -> bool:
        return bool(self.sources) and all(s.verified is True for s in self.sources)

    def overdue(self, today: date) -> bool:
        return self.reported_at is None and today > self.due_on


def report_deadline(
    event: AdverseEvent,
    follow_ups: Sequence[AdverseEventFollowUp],
    jurisdiction_id: str,
    tz: ZoneInfo,
) -> ReportDeadline | None:
    """The reporting deadline of a reportable event under the clinic's jurisdiction; None
    when the event is not marked reportable or the jurisdiction has no deadline recorded."""
    rules = jurisdiction(jurisdiction_id)
    if not event.reportable or rules.adverse_event_report_days is None:
        return None
    reported = sorted(f.occurred_at for f in follow_ups if f.kind is FollowUpKind.REPORTED)
    days = rules.adverse_event_report_days
    return ReportDeadline(
        jurisdiction_name=rules.name,
        days=days,
        due_on=local_date(event.onset_at, tz) + timedelta(days=days),
        sources=tuple(sources()[s] for s in rules.sources),
        reported_at=reported[0] if reported else None,
    )
