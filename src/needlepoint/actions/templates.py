"""Templates and favourites: SOAP text snippets for the clinic (written by the owner) and
for each clinician, and each clinician's favourite muscles and needle sizes. None of them
is clinical data about a patient; each write is audited like any other."""

from __future__ import annotations

from needlepoint.actions.context import Actor, audit, authorize
from needlepoint.actions.registry import action
from needlepoint.domain.catalogue import muscles
from needlepoint.domain.commands import AddNoteSnippet, SetFavourites
from needlepoint.domain.entities import Favourite, NoteSnippet
from needlepoint.domain.enums import AuditAction, FavouriteKind
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.permissions import Permission
from needlepoint.ports import UnitOfWork


def _snippet(uow: UnitOfWork, actor: Actor, cmd: AddNoteSnippet, *, own: bool) -> NoteSnippet:
    return NoteSnippet(
        id=uow.new_id(),
        clinic_id=actor.clinic_id,
        owner_id=actor.user_id if own else None,
        section=cmd.section,
        title=cmd.title,
        text=cmd.text,
        created_by=actor.user_id,
        created_at=uow.now(),
    )


@action(Permission.MANAGE_CLINIC, AuditAction.NOTE_SNIPPET_ADDED)
def add_clinic_snippet(uow: UnitOfWork, actor: Actor, cmd: AddNoteSnippet) -> NoteSnippet:
    """A snippet every clinician of the clinic may insert (the owner writes them)."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_CLINIC)
        snippet = _snippet(uow, actor, cmd, own=False)
        uow.add(snippet)
        audit(uow, actor, actor.clinic_id, AuditAction.NOTE_SNIPPET_ADDED, snippet, after=[snippet])
        uow.commit()
    return snippet


@action(Permission.RECORD_SESSION, AuditAction.NOTE_SNIPPET_ADDED)
def add_my_snippet(uow: UnitOfWork, actor: Actor, cmd: AddNoteSnippet) -> NoteSnippet:
    """A snippet of the clinician's own, offered only in their notes."""
    with uow:
        authorize(uow, actor, Permission.RECORD_SESSION)
        snippet = _snippet(uow, actor, cmd, own=True)
        uow.add(snippet)
        audit(uow, actor, actor.clinic_id, AuditAction.NOTE_SNIPPET_ADDED, snippet, after=[snippet])
        uow.commit()
    return snippet


@action(Permission.RECORD_SESSION, AuditAction.FAVOURITES_SET)
def set_favourites(uow: UnitOfWork, actor: Actor, cmd: SetFavourites) -> list[Favourite]:
    """Replace the clinician's favourite muscles and needle sizes (each muscle must be in
    the catalogue, named once)."""
    catalogue = muscles()
    for i, m in enumerate(cmd.muscles):
        if catalogue.get(m) is None:
            raise InvalidInput(f"no muscle '{m}' in the catalogue", field=f"muscles.{i}")
    if len(set(cmd.muscles)) != len(cmd.muscles) or len(set(cmd.needles)) != len(cmd.needles):
        raise InvalidInput("each favourite is named once", field="muscles")
    with uow:
        authorize(uow, actor, Permission.RECORD_SESSION)
        before = uow.list_by(Favourite, actor.clinic_id, user_id=actor.user_id)
        for old in before:
            uow.delete(old)
        now = uow.now()
        after = [
            Favourite(uow.new_id(), actor.clinic_id, actor.user_id, kind, value, position, now)
            for kind, values in (
                (FavouriteKind.MUSCLE, cmd.muscles),
                (FavouriteKind.NEEDLE, cmd.needles),
            )
            for position, value in enumerate(values)
        ]
        if not before and not after:
            raise InvalidInput("name a favourite muscle or needle size", field="muscles")
        for f in after:
            uow.add(f)
        subject = after[0] if after else before[0]  # the list, by its first entry
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.FAVOURITES_SET,
            subject,
            before=list(before),
            after=list(after),
        )
        uow.commit()
    return after
