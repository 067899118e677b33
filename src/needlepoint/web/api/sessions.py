"""Session notes: record, read, edit a draft, sign, amend."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from needlepoint.actions import sessions as actions
from needlepoint.domain.commands import (
    AmendmentText,
    AmendSession,
    RecordSession,
    SessionNote,
    SignSession,
    UpdateSession,
)
from needlepoint.domain.entities import Amendment, Session
from needlepoint.domain.permissions import Permission
from needlepoint.queries import sessions as queries
from needlepoint.queries.sessions import SessionDetail
from needlepoint.web.context import ApiContext, IfMatch, requires, respond

router = APIRouter(tags=["sessions"])


@router.post(
    "/sessions",
    response_model=Session,
    status_code=201,
    openapi_extra=requires(Permission.RECORD_SESSION),
)
def record_session(ctx: ApiContext, cmd: RecordSession) -> Response:
    """Record a session note (draft) with its needling sites, co-interventions, adverse
    events and measurements, in one transaction."""
    session = actions.record_session(ctx.uow(), ctx.actor, cmd)
    return respond(
        session, status=201, version=session.version, location=f"/api/v1/sessions/{session.id}"
    )


@router.get(
    "/episodes/{episode_id}/sessions",
    response_model=list[Session],
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def episode_sessions(ctx: ApiContext, episode_id: UUID) -> Response:
    """An episode's sessions in order."""
    with ctx.reader() as r:
        return respond(queries.episode_sessions(r, episode_id))


@router.get(
    "/sessions/{session_id}",
    response_model=SessionDetail,
    openapi_extra=requires(Permission.READ_CLINICAL),
)
def get_session(ctx: ApiContext, session_id: UUID) -> Response:
    """A note with everything recorded in it and its amendments."""
    with ctx.reader() as r:
        detail = queries.session_detail(r, session_id)
    return respond(detail, version=detail.session.version)


@router.put(
    "/sessions/{session_id}",
    response_model=Session,
    openapi_extra=requires(Permission.RECORD_SESSION),
)
def update_session(
    ctx: ApiContext, session_id: UUID, note: SessionNote, version: IfMatch
) -> Response:
    """Replace a draft note's content (409 once signed; 412 when stale)."""
    cmd = UpdateSession(session_id=session_id, expected_version=version, **note.model_dump())
    session = actions.update_session(ctx.uow(), ctx.actor, cmd)
    return respond(session, version=session.version)


@router.post(
    "/sessions/{session_id}/sign",
    response_model=Session,
    openapi_extra=requires(Permission.SIGN_SESSION),
)
def sign_session(ctx: ApiContext, session_id: UUID, version: IfMatch) -> Response:
    """Sign and lock a draft note."""
    session = actions.sign_session(
        ctx.uow(), ctx.actor, SignSession(session_id=session_id, expected_version=version)
    )
    return respond(session, version=session.version)


@router.post(
    "/sessions/{session_id}/amendments",
    response_model=Amendment,
    status_code=201,
    openapi_extra=requires(Permission.AMEND_SESSION),
)
def amend_session(ctx: ApiContext, session_id: UUID, body: AmendmentText) -> Response:
    """Append an amendment to a signed note; the original stays readable as signed."""
    amendment = actions.amend_session(
        ctx.uow(), ctx.actor, AmendSession(session_id=session_id, **body.model_dump())
    )
    return respond(amendment, status=201)
