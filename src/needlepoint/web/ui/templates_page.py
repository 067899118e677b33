"""The clinician's snippets and favourites page: SOAP text snippets (their own, and the
clinic's for the owner) to insert into a note, and favourite muscles and needle sizes (the
first needle size is what a new site starts from)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from needlepoint.actions.templates import add_clinic_snippet, add_my_snippet, set_favourites
from needlepoint.domain.catalogue import muscles
from needlepoint.domain.commands import AddNoteSnippet, SetFavourites
from needlepoint.domain.enums import Role, SoapSection
from needlepoint.domain.errors import DomainError
from needlepoint.queries.templates import favourites, snippets
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    Errors,
    field_errors,
    many,
    posted_form,
    render,
    see_other,
    signed_in,
    text,
    to_login,
)

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, ctx: RequestContext, form: dict[str, Any], errors: Errors, status: int = 200
) -> Response:
    with ctx.reader() as r:
        found = snippets(r)
        favs = favourites(r)
    return render(
        request,
        "snippets.html",
        status,
        snippets=found,
        favourites=favs,
        sections=[s.value for s in SoapSection],
        catalogue=sorted(muscles().muscles, key=lambda m: m.name),
        is_owner=ctx.role is Role.OWNER,
        form=form,
        errors=errors,
    )


@router.get("/snippets", response_model=None)
def snippets_page(request: Request) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    return _page(request, ctx, {}, {})


@router.post("/snippets", response_model=None)
async def add_snippet(request: Request) -> Response:
    return await posted_form(request, _add)


def _add(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
    try:
        cmd = AddNoteSnippet.model_validate(
            {
                "section": text(form, "section"),
                "title": text(form, "title"),
                "text": text(form, "text"),
            }
        )
        if text(form, "scope") == "clinic":
            add_clinic_snippet(ctx.uow(), ctx.actor, cmd)
        else:
            add_my_snippet(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, form, field_errors(err), status=400)
    return see_other("/snippets")


@router.post("/snippets/favourites", response_model=None)
async def save_favourites(request: Request) -> Response:
    return await posted_form(request, _favourites)


def _favourites(request: Request, ctx: RequestContext, form: dict[str, Any]) -> Response:
    needles = [
        n.strip().replace(" ", "").replace("×", "x") for n in text(form, "needles").split(",")
    ]
    try:
        cmd = SetFavourites.model_validate(
            {"muscles": many(form, "muscles"), "needles": [n for n in needles if n]}
        )
        set_favourites(ctx.uow(), ctx.actor, cmd)
    except (DomainError, ValidationError) as err:
        return _page(request, ctx, form, field_errors(err), status=400)
    return see_other("/snippets")
