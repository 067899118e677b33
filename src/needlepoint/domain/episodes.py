"""Rules of an episode of care: which condition, and when it may change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from needlepoint.domain.billing import check_billable
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.entities import Episode
from needlepoint.domain.enums import EpisodeStatus
from needlepoint.domain.errors import InvalidInput, RecordLocked


@dataclass(frozen=True, slots=True)
class Diagnosis:
    condition: str
    icd10_code: str
    body_region: str


def diagnose(condition: str, icd10_code: str | None, body_region: str | None) -> Diagnosis:
    """The episode's condition from the catalogue; the code and region default to the
    catalogue's and may be made more specific (e.g. a side) by the clinician."""
    known = conditions().get(condition)
    if known is None:
        ids = ", ".join(c.id for c in conditions().conditions)
        raise InvalidInput(f"unknown condition '{condition}' (known: {ids})", field="condition")
    if icd10_code:
        check_billable(icd10_code)
    return Diagnosis(
        condition=known.id,
        icd10_code=icd10_code or known.icd10.code,
        body_region=body_region or known.body_region,
    )


def ensure_open(episode: Episode, *, field: str = "episode_id") -> None:
    """Refuse new clinical work on a closed episode."""
    if episode.status is not EpisodeStatus.OPEN:
        raise RecordLocked(f"episode {episode.id} is closed", field=field)


def check_closing_date(episode: Episode, closed_on: date) -> None:
    """An episode cannot end before it began."""
    if closed_on < episode.opened_on:
        raise InvalidInput(
            f"closed_on {closed_on} is before the episode opened ({episode.opened_on})",
            field="closed_on",
        )
