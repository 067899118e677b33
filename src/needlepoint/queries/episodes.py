"""Episodes of care and their plans."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from needlepoint.domain.entities import Episode, PlanItem
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class EpisodeDetail:
    episode: Episode
    plan: list[PlanItem]


def patient_episodes(reader: Reader, patient_id: UUID) -> list[Episode]:
    """A patient's episodes, newest first."""
    reader.patient_record(patient_id)
    found: list[Episode] = reader.once(
        ("episodes", patient_id),
        lambda: reader.select_by(Episode, patient_id=patient_id, order_by=("-opened_on",)),
    )
    return list(found)


def episode_detail(reader: Reader, episode_id: UUID) -> EpisodeDetail:
    """One episode with its plan items."""
    reader.require(Permission.READ_CLINICAL)
    episode = reader.one(Episode, episode_id, field="episode_id")
    plan = reader.select_by(PlanItem, episode_id=episode_id, order_by=("created_at",))
    return EpisodeDetail(episode, plan)
