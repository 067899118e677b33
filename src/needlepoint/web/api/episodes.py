"""Episodes of care: open, read, close; a patient's episodes."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from needlepoint.actions import episodes as actions
from needlepoint.domain.commands import CloseEpisode, Discharge, OpenEpisode
from needlepoint.domain.entities import Episode
from needlepoint.domain.permissions import Permission
from needlepoint.queries import episodes as queries
from needlepoint.queries.episodes import EpisodeDetail
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["episodes"])


@router.post(
    "/episodes",
    response_model=Episode,
    status_code=201,
    openapi_extra=requires(Permission.OPEN_EPISODE),
)
def open_episode(ctx: ApiContext, cmd: OpenEpisode) -> Response:
    """Open an episode of care for a patient, with its plan."""
    episode = actions.open_episode(ctx.uow(), ctx.actor, cmd)
    return respond(
        episode, status=201, version=episode.version, location=f"/api/v1/episodes/{episode.id}"
    )


@router.get(
    "/patients/{patient_id}/episodes",
    response_model=list[Episode],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def patient_episodes(ctx: ApiContext, patient_id: UUID) -> Response:
    """A patient's episodes, newest first."""
    with ctx.reader() as r:
        found = queries.patient_episodes(r, patient_id)
        return respond(found)


@router.get(
    "/episodes/{episode_id}",
    response_model=EpisodeDetail,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def get_episode(ctx: ApiContext, episode_id: UUID) -> Response:
    """One episode with its plan."""
    with ctx.reader() as r:
        detail = queries.episode_detail(r, episode_id)
    return respond(detail, version=detail.episode.version)


@router.post(
    "/episodes/{episode_id}/close",
    response_model=Episode,
    openapi_extra=requires(Permission.CLOSE_EPISODE),
)
def close_episode(
    ctx: ApiContext, episode_id: UUID, discharge: Discharge, version: IfMatch
) -> Response:
    """Discharge. Requires If-Match; a stale version gets 412."""
    cmd = CloseEpisode(episode_id=episode_id, expected_version=version, **discharge.model_dump())
    episode = actions.close_episode(ctx.uow(), ctx.actor, cmd)
    return respond(episode, version=episode.version)
