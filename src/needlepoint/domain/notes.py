"""Rules of a session note: what may be needled, and when a note is locked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from needlepoint.domain.catalogue import muscle_ids
from needlepoint.domain.commands import NeedlingSiteIn
from needlepoint.domain.entities import Episode, Session
from needlepoint.domain.enums import SessionStatus
from needlepoint.domain.errors import InvalidInput, RecordLocked
from needlepoint.domain.site_safety import check_named_sites


def check_sites(sites: Sequence[NeedlingSiteIn]) -> None:
    """Every needled muscle must be a named catalogue muscle (regulators require the
    muscle, not "paraspinals": REFERENCE §6); a place never needled (the umbilicus …) is
    refused with its source, and a paired muscle needs its side."""
    check_named_sites(sites)
    known = muscle_ids()
    for i, site in enumerate(sites):
        if site.muscle_id not in known:
            raise InvalidInput(
                f"'{site.muscle_id}' is not a muscle in the catalogue",
                field=f"sites.{i}.muscle_id",
            )


def check_session_time(episode: Episode, started_at: datetime) -> None:
    """A session belongs inside its episode."""
    if started_at.date() < episode.opened_on:
        raise InvalidInput(
            f"started_at {started_at.date()} is before the episode opened ({episode.opened_on})",
            field="started_at",
        )


def ensure_editable(session: Session) -> None:
    """Signed notes are never edited in place; an amendment is appended instead."""
    if session.status is SessionStatus.SIGNED:
        raise RecordLocked(
            f"session {session.id} is signed and cannot be changed; add an amendment",
            field="session_id",
        )


def ensure_signed(session: Session) -> None:
    """Only signed notes are amended (a draft is simply edited)."""
    if session.status is not SessionStatus.SIGNED:
        raise RecordLocked(
            f"session {session.id} is a draft: edit it instead of amending it",
            field="session_id",
        )
