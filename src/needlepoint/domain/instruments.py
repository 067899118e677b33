"""Outcome instruments: definitions from `data/instruments.yaml` and pure scoring.

Answers are a mapping `item1 … itemN` → number (None or absent = not answered). Scores are
always recomputable from the stored answers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.errors import InvalidInput

Answer = int | float | None


class Threshold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: float | None
    percent: float | None = None
    note: str | None = None
    source: str
    verified: bool


class Code(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    verified: bool


class Instrument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    unit: str
    version: str
    items: int
    item_min: float
    item_max: float
    integer: bool
    higher_is: Literal["worse", "better"]
    scoring: Literal["single", "sum", "percent_of_answered", "dash"]
    missing: Literal["none_allowed", "lower_denominator", "at_most_one"]
    score_range: tuple[float, float]
    mcid: Threshold | None
    mdc: Threshold | None = None
    loinc: Code | None
    requires_context: list[str] = []

    @property
    def item_names(self) -> list[str]:
        """Item keys in the instrument's documented order."""
        return [f"item{i}" for i in range(1, self.items + 1)]

    def format(self, score: float | None) -> str:
        """A score as a clinician reads it: one decimal at most, with its unit."""
        if score is None:
            return "not scorable"
        return f"{round(score, 1):g}{self.unit}"


class _Library(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    instruments: list[Instrument]


@cache
def library() -> dict[str, Instrument]:
    """Every instrument by id."""
    lib = _Library.model_validate(load_data("instruments.yaml"))
    return {i.id: i for i in lib.instruments}


def get(instrument_id: str) -> Instrument:
    """The instrument with this id, or InvalidInput naming `instrument_id`."""
    try:
        return library()[instrument_id]
    except KeyError:
        known = ", ".join(sorted(library()))
        raise InvalidInput(
            f"unknown instrument '{instrument_id}' (known: {known})", field="instrument_id"
        ) from None


def validate_answers(instrument: Instrument, answers: Mapping[str, Answer]) -> dict[str, Answer]:
    """Check every answer's name, type and range; return them in item order.

    Raises InvalidInput naming the offending item (`answers.itemN`)."""
    names = instrument.item_names
    unknown = sorted(set(answers) - set(names))
    if unknown:
        raise InvalidInput(
            f"{instrument.id} has no item '{unknown[0]}' (items are item1..item{instrument.items})",
            field=f"answers.{unknown[0]}",
        )
    clean: dict[str, Answer] = {}
    for name in names:
        value = answers.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{name} must be a number", field=f"answers.{name}")
            if instrument.integer and float(value) != int(value):
                raise InvalidInput(f"{name} must be a whole number", field=f"answers.{name}")
            if not instrument.item_min <= value <= instrument.item_max:
                raise InvalidInput(
                    f"{name} must be between {instrument.item_min:g} and {instrument.item_max:g}",
                    field=f"answers.{name}",
                )
        clean[name] = value
    return clean


def score(instrument: Instrument, answers: Mapping[str, Answer]) -> float | None:
    """The instrument's score from validated answers, or None when the missing-item rule
    says the form cannot be scored."""
    values = [answers.get(n) for n in instrument.item_names]
    given = [float(v) for v in values if v is not None]
    missing = len(values) - len(given)
    if not given:
        return None
    if missing and instrument.missing == "none_allowed":
        return None
    if instrument.missing == "at_most_one" and missing > 1:
        return None
    if instrument.scoring in ("single", "sum"):
        return sum(given)
    if instrument.scoring == "percent_of_answered":
        return sum(given) / (instrument.item_max * len(given)) * 100
    # QuickDASH: (sum / n - 1) x 25 over the answered items
    return (sum(given) / len(given) - 1) * 25
