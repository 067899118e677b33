"""Session notes with everything recorded in them, and their amendments."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from needlepoint.adapters.db.tables import (
    adverse_events,
    amendments,
    co_interventions,
    measurements,
    needling_sites,
    sessions,
)
from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    CoIntervention,
    Episode,
    Measurement,
    NeedlingSite,
    Session,
)
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class SessionDetail:
    session: Session
    sites: list[NeedlingSite]
    co_interventions: list[CoIntervention]
    adverse_events: list[AdverseEvent]
    measurements: list[Measurement]
    amendments: list[Amendment]


def episode_sessions(reader: Reader, episode_id: UUID) -> list[Session]:
    """An episode's sessions in the order they happened."""
    reader.require(Permission.READ_CLINICAL)
    reader.one(Episode, episode_id, field="episode_id")
    return reader.select(
        Session, sessions.c.episode_id == episode_id, order_by=sessions.c.started_at
    )


def session_detail(reader: Reader, session_id: UUID) -> SessionDetail:
    """A session note as signed, with its amendments appended (oldest first)."""
    reader.require(Permission.READ_CLINICAL)
    session = reader.one(Session, session_id, field="session_id")
    return SessionDetail(
        session=session,
        sites=reader.select(
            NeedlingSite,
            needling_sites.c.session_id == session_id,
            order_by=needling_sites.c.position,
        ),
        co_interventions=reader.select(
            CoIntervention,
            co_interventions.c.session_id == session_id,
            order_by=co_interventions.c.position,
        ),
        adverse_events=reader.select(
            AdverseEvent,
            adverse_events.c.session_id == session_id,
            order_by=adverse_events.c.onset_at,
        ),
        measurements=reader.select(
            Measurement,
            measurements.c.session_id == session_id,
            order_by=(measurements.c.taken_at, measurements.c.instrument_id),
        ),
        amendments=reader.select(
            Amendment, amendments.c.session_id == session_id, order_by=amendments.c.created_at
        ),
    )
