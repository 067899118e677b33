"""Rules of a session note: what may be needled, and when a note is locked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from needlepoint.domain.catalogue import muscle_ids
from needlepoint.domain.commands import NeedlingSiteIn
from needlepoint.domain.entities import Episode, Session
from needlepoint.domain.enums import EpisodeStatus, SessionStatus
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


#: How far in the future a note's or a measurement's time may lie and still be accepted.
#: Clocks differ: a tablet a minute or two ahead of the server, a time typed to the next
#: whole minute, a note started just before the hour. Five minutes covers those; anything
#: later is a note of something that has not happened yet, and is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)


def check_not_future(moment: datetime, now: datetime, field: str) -> None:
    """A clinical record describes what has happened: refuse a time more than
    `FUTURE_TOLERANCE` after `now`, naming the field."""
    if moment > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            # No clock time in the words: the form shows the time as the clinic reads
            # it, and this rule does not know the clinic's zone (UTC would mislead).
            "This time is in the future; a note records what has already happened (up to "
            f"{FUTURE_TOLERANCE.seconds // 60} minutes ahead allowed for clock differences)",
            field=field,
        )


def check_signable(session: Session, children: int) -> None:
    """An empty note cannot be signed: it needs a needled site, some note text, a
    co-intervention, an adverse event or an outcome (`children` counts the records attached
    to it)."""
    text = (session.subjective, session.objective, session.assessment, session.plan)
    if children == 0 and not any(t.strip() for t in text):
        raise InvalidInput(
            "an empty note cannot be signed: it has no needling sites, no note text and no "
            "outcome; record what was done or found first",
            field="session_id",
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


def ensure_draft_episode_open(episode: Episode, *, field: str = "session_id") -> None:
    """A draft of a closed (discharged) episode is frozen: it can no longer be edited,
    signed or added to. Write a new note in an open episode, or reopen care with a new
    episode."""
    if episode.status is not EpisodeStatus.OPEN:
        raise RecordLocked(
            f"this note's episode of care was closed on {episode.closed_on}: its draft can no "
            "longer be edited, signed or added to",
            field=field,
        )


def ensure_signed(session: Session) -> None:
    """Only signed notes are amended (a draft is simply edited)."""
    if session.status is not SessionStatus.SIGNED:
        raise RecordLocked(
            f"session {session.id} is a draft: edit it instead of amending it",
            field="session_id",
        )
