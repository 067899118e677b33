"""Templates and favourites on the read side: the SOAP snippets a clinician may insert
(the clinic's and their own) and their favourite muscles and needle sizes."""

from __future__ import annotations

from dataclasses import dataclass

from needlepoint.domain.entities import Favourite, NoteSnippet
from needlepoint.domain.enums import FavouriteKind
from needlepoint.queries.reader import Reader


def snippets(reader: Reader) -> list[NoteSnippet]:
    """The clinic's snippets and the reader's own, by section and title."""
    mine = [s for s in reader.select_by(NoteSnippet) if s.owner_id in (None, reader.user_id)]
    return sorted(mine, key=lambda s: (s.section.value, s.title.lower(), s.created_at))


@dataclass(frozen=True, slots=True)
class Favourites:
    muscles: list[str]
    """Catalogue ids, in the clinician's order."""
    needles: list[tuple[str, str]]
    """(gauge, length) in mm, as typed into a site, in the clinician's order."""


def favourites(reader: Reader) -> Favourites:
    """The reader's favourite muscles and needle sizes."""
    rows = reader.select_by(Favourite, user_id=reader.user_id, order_by=("position",))
    needles = []
    for f in rows:
        if f.kind is FavouriteKind.NEEDLE:
            gauge, _, length = f.value.partition("x")
            needles.append((gauge, length))
    return Favourites([f.value for f in rows if f.kind is FavouriteKind.MUSCLE], needles)
