"""Questionnaires in the session note: every instrument the product scores can be entered
in the note (the condition's own one when due, any other on demand), each item with its
answer wording. The form's fields are `x-<instrument>-itemN` for the items and
`x-<instrument>-ctx-<key>` for the context an instrument needs (PPT's site, the activity
and date of return to work or sport, the PSFS activities)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from needlepoint.domain.answer_wording import choices
from needlepoint.domain.instruments import Instrument, library

__all__ = ["choices", "entered", "measurement", "on_demand", "read_extra"]

_FIELD = re.compile(r"^x-([a-z0-9_]+)-(item\d+|ctx-[a-z0-9_]+)$")
NOTE_OWN = {"nprs", "rom"}
"""Entered in the note's own quick fields."""


def on_demand(function_instrument: str | None) -> list[Instrument]:
    """The instruments a note can add on demand: every measurement the product scores,
    except the note's own NPRS and ROM and the condition's questionnaire (shown as due)."""
    return [
        i
        for i in library().values()
        if i.recorded_as == "measurement" and i.id not in NOTE_OWN and i.id != function_instrument
    ]


def read_extra(form: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The on-demand questionnaires the clinician answered (at least one item)."""
    out: dict[str, dict[str, str]] = {}
    for key, value in form.items():
        m = _FIELD.match(key)
        if m is None or m.group(1) not in library():
            continue
        v = (value[-1] if isinstance(value, list) else str(value)).strip()
        if v:
            out.setdefault(m.group(1), {})[m.group(2)] = v
    return {iid: e for iid, e in out.items() if any(k.startswith("item") for k in e)}


def measurement(instrument_id: str, entered: Mapping[str, str]) -> dict[str, Any]:
    """The `MeasurementIn` fields of one answered questionnaire."""
    answers = {k: v.replace(",", ".") for k, v in entered.items() if k.startswith("item")}
    context = {k[4:]: v for k, v in entered.items() if k.startswith("ctx-")}
    data: dict[str, Any] = {"instrument_id": instrument_id, "answers": answers}
    if context:
        data["context"] = context
    return data


def entered(
    answers: Mapping[str, float | None], context: Mapping[str, Any] | None
) -> dict[str, str]:
    """A stored measurement as the form's fields."""
    out = {k: f"{v:g}" for k, v in answers.items() if v is not None}
    out.update({f"ctx-{k}": str(v) for k, v in (context or {}).items()})
    return out
