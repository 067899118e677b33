"""The words beside each questionnaire answer (`data/answer_wording.yaml`): a form shows
radio buttons with the answer's wording, never bare numbers. Pure; the stored and scored
value is always the number."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.instruments import Instrument, library


class Wording(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str
    verified: bool
    scale: dict[int, str]
    items: dict[str, dict[int, str]] = {}


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    instruments: dict[str, Wording]


@cache
def wordings() -> dict[str, Wording]:
    """Every instrument's answer wording; each names an instrument of the library and only
    values inside its item range."""
    data = _File.model_validate(load_data("answer_wording.yaml"))
    lib = library()
    for iid, w in data.instruments.items():
        inst = lib.get(iid)
        if inst is None:
            raise ValueError(f"answer_wording.yaml: unknown instrument {iid}")
        for scale in (w.scale, *w.items.values()):
            outside = [v for v in scale if not inst.item_min <= v <= inst.item_max]
            if outside:
                raise ValueError(f"answer_wording.yaml:{iid}: values {outside} outside the items")
        unknown = set(w.items) - set(inst.item_names)
        if unknown:
            raise ValueError(f"answer_wording.yaml:{iid}: unknown items {sorted(unknown)}")
    return dict(data.instruments)


def choices(instrument: Instrument, item: str) -> list[tuple[int, str]] | None:
    """The answers of one item as (value, words) from the lowest to the highest value, or
    None where the item is a number to type (a wide or continuous range)."""
    low, high = int(instrument.item_min), int(instrument.item_max)
    if instrument.item_min != low or instrument.item_max != high or high - low > 15:
        return None
    w = wordings().get(instrument.id)
    if w is None and not instrument.integer:
        return None
    scale = (w.items.get(item) or w.scale) if w else {}
    return [(v, scale.get(v, "")) for v in range(low, high + 1)]
