"""Session notes with everything recorded in them, and their amendments."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    CoIntervention,
    Episode,
    ImportedRecord,
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
    imported: ImportedRecord | None = None
    """Set when the note came from another system (docs/import.md): its source, its id
    there, who imported it and when. Its signer and signing time are the original ones."""


def episode_sessions(reader: Reader, episode_id: UUID) -> list[Session]:
    """An episode's sessions in the order they happened."""
    reader.require(Permission.READ_CLINICAL)
    reader.one(Episode, episode_id, field="episode_id")
    return reader.select_by(Session, episode_id=episode_id, order_by=("started_at",))


def session_detail(reader: Reader, session_id: UUID) -> SessionDetail:
    """A session note as signed, with its amendments appended (oldest first)."""
    reader.require(Permission.READ_CLINICAL)
    session = reader.one(Session, session_id, field="session_id")
    return SessionDetail(
        session=session,
        sites=reader.select_by(NeedlingSite, session_id=session_id, order_by=("position",)),
        co_interventions=reader.select_by(
            CoIntervention, session_id=session_id, order_by=("position",)
        ),
        adverse_events=reader.select_by(
            AdverseEvent, session_id=session_id, order_by=("onset_at",)
        ),
        measurements=reader.select_by(
            Measurement, session_id=session_id, order_by=("taken_at", "instrument_id")
        ),
        amendments=reader.select_by(Amendment, session_id=session_id, order_by=("created_at",)),
        imported=next(
            (
                r
                for r in reader.select_by(ImportedRecord, record_id=session_id)
                if r.kind == "session"
            ),
            None,
        ),
    )
