"""Signing and discarding a draft note (issue 15).

Signing takes one extra step, no more: "Sign note" saves the draft and shows a summary
to confirm (the patient, the time in the clinic's zone, the sites, the billing code the
signature will derive, the outcomes and events); "Sign and lock" signs it. A refused
sign brings the note back with the reason at the top (below the save status) and at the
site concerned, the field marked invalid.

A draft can be discarded (the `sessions.discard_session` action, audited); a signed
note never can."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from needlepoint.actions.sessions import discard_session, sign_session
from needlepoint.domain.billing import billing_data, derive_cpt
from needlepoint.domain.catalogue import conditions, muscles
from needlepoint.domain.commands import DiscardSession, SignSession
from needlepoint.domain.enums import SessionStatus
from needlepoint.domain.errors import DomainError
from needlepoint.domain.instruments import library
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.patients import get_patient
from needlepoint.queries.sessions import session_detail
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    field_errors,
    posted_form,
    refusal_page,
    render,
    see_other,
    signed_in,
    text,
    to_login,
)
from needlepoint.web.ui.notes import _note_page, _stored_note

router = APIRouter(include_in_schema=False)


def _summary(request: Request, ctx: RequestContext, session_id: UUID, template: str) -> Response:
    with ctx.reader() as r:
        d = session_detail(r, session_id)
        if d.session.status is SessionStatus.SIGNED:
            return see_other(f"/sessions/{session_id}")
        episode = episode_detail(r, d.session.episode_id).episode
        patient = get_patient(r, d.session.patient_id)
        clinic = r.clinic()
    cpt = derive_cpt(d.sites, sides_separately=clinic.bill_sides_separately)
    descriptor = next(
        (c.descriptor for c in billing_data().cpt.codes if cpt and c.code == cpt.code), ""
    )
    cond = conditions().get(episode.condition)
    return render(
        request,
        template,
        d=d,
        patient=patient,
        episode=episode,
        condition=cond,
        cpt=cpt,
        cpt_descriptor=descriptor,
        catalogue={m.id: m for m in muscles().muscles},
        instruments=library(),
    )


@router.get("/sessions/{session_id}/sign", response_model=None)
def confirm_sign(request: Request, session_id: UUID) -> Response:
    """What the signature will lock, to confirm."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        return _summary(request, ctx, session_id, "note_confirm.html")
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/sessions/{session_id}/sign", response_model=None)
async def post_sign(request: Request, session_id: UUID) -> Response:
    return await posted_form(request, _sign, session_id)


def _sign(
    request: Request, ctx: RequestContext, session_id: UUID, form: dict[str, Any]
) -> Response:
    try:
        version = int(text(form, "version") or 0)
        sign_session(
            ctx.uow(), ctx.actor, SignSession(session_id=session_id, expected_version=version)
        )
    except ValueError:
        return see_other(f"/sessions/{session_id}/sign")
    except DomainError as err:
        session, note = _stored_note(ctx, session_id)
        if session.status is SessionStatus.SIGNED:
            return see_other(f"/sessions/{session_id}")
        errors = field_errors(err)
        if "session_id" in errors:  # about the note as a whole
            errors.setdefault("", []).extend(errors.pop("session_id"))
        return _note_page(
            request, ctx, session.episode_id, session, note, errors, status=400, sign_refused=True
        )
    return see_other(f"/sessions/{session_id}")


@router.get("/sessions/{session_id}/discard", response_model=None)
def confirm_discard(request: Request, session_id: UUID) -> Response:
    """Ask before a draft is discarded."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        return _summary(request, ctx, session_id, "note_discard.html")
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/sessions/{session_id}/discard", response_model=None)
async def post_discard(request: Request, session_id: UUID) -> Response:
    return await posted_form(request, _discard, session_id)


def _discard(
    request: Request, ctx: RequestContext, session_id: UUID, form: dict[str, Any]
) -> Response:
    try:
        version = int(text(form, "version") or 0)
        discarded = discard_session(
            ctx.uow(), ctx.actor, DiscardSession(session_id=session_id, expected_version=version)
        )
    except ValueError:
        return see_other(f"/sessions/{session_id}/discard")
    except DomainError as err:
        return refusal_page(request, err)
    return see_other(f"/patients/{discarded.patient_id}")
