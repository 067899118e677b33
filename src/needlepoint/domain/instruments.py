"""Outcome instruments: definitions from `data/instruments.yaml` and pure scoring.

Answers are a mapping `item1 … itemN` → number (None or absent = not answered). Scores are
always recomputable from the stored answers. Each instrument declares its items, ranges,
direction, scoring and missing-item rules, thresholds with their source, and its codes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.sources import check_cited

Answer = int | float | None

#: The code system of instruments without a verified LOINC code (REFERENCE §4).
LOCAL_CODE_SYSTEM = "urn:needlepoint:instrument"
LOINC_SYSTEM = "http://loinc.org"
NO_THRESHOLD = "no published threshold"


class Threshold(BaseModel):
    """An MCID, an MDC or the responder threshold: an absolute change (`value`, in score
    units) and/or a percent change of the baseline. `combine` says whether reaching either
    counts (how Ostelo 2008 and Farrar 2001 publish theirs: "2 points or 30 %") or both are
    needed (the responder rule of NPRS, VAS and ODI: the absolute amount is never waived at
    a low baseline). `basis` (responder thresholds only) names what governs: the MCID, or
    the MDC where the MCID lies inside measurement error. `source_ids` cite sources.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    value: float | None
    percent: float | None = None
    combine: Literal["either", "both"] = "either"
    basis: Literal["mcid", "mdc"] | None = None
    note: str | None = None
    source_ids: list[str] = []
    # Context values this threshold is published for (e.g. cervical ROM only).
    applies_to: dict[str, list[str]] | None = None
    source: str
    verified: bool

    def applies(self, context: Mapping[str, Any] | None) -> bool:
        """Whether the threshold was published for a measurement taken in `context`."""
        if not self.applies_to:
            return True
        ctx = context or {}
        return all(str(ctx.get(k)) in allowed for k, allowed in self.applies_to.items())


def check_governing(
    owner: str, mcid: Threshold | None, mdc: Threshold | None, responder: Threshold | None
) -> None:
    """The responder threshold follows the rule: an instrument with a published MCID or MDC
    has one; it names its basis; where the MCID lies inside the MDC the MDC governs; and it
    is never below the absolute MCID."""
    published = [t for t in (mcid, mdc) if t is not None and t.value is not None]
    if not published:
        if responder is not None:
            raise ValueError(f"{owner}: a responder threshold without a published MCID or MDC")
        return
    if responder is None or responder.basis is None:
        raise ValueError(f"{owner}: needs a responder threshold naming its basis (mcid or mdc)")
    if mcid is None or mcid.value is None:
        if responder.basis != "mdc":
            raise ValueError(f"{owner}: without an MCID the MDC governs")
        return
    inside = mdc is not None and mdc.value is not None and mcid.value < mdc.value
    if inside and responder.basis != "mdc":
        raise ValueError(f"{owner}: the MCID lies inside the MDC, so the MDC governs")
    if responder.value is None or responder.value < mcid.value:
        raise ValueError(f"{owner}: the responder threshold is below the absolute MCID")


class Code(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    verified: bool


class Coding(BaseModel):
    """One code for the instrument's score: LOINC where verified enough, else local."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    system: str
    code: str
    verified: bool


class Instrument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    unit: str
    version: str
    items: int
    item_labels: list[str]
    item_min: float
    item_max: float
    integer: bool
    higher_is: Literal["worse", "better"]
    scoring: Literal["single", "sum", "mean", "percent_of_answered", "dash"]
    missing: Literal["none_allowed", "lower_denominator", "at_most_one", "any_answered"]
    missing_source: str | None = None
    min_answered: int = 1
    score_range: tuple[float, float]
    change: Literal["from_baseline", "rating", "event"] = "from_baseline"
    mcid: Threshold | None
    mdc: Threshold | None = None
    # The change a patient must reach to count as a responder: the MCID, or the MDC where
    # the MCID lies inside it (a change within measurement error is not a finding).
    responder: Threshold | None = None
    threshold_note: str | None = None
    loinc: Code | None
    requires_context: list[str] = []
    context_values: dict[str, list[str]] = {}
    context_dates: list[str] = []
    context_note: str | None = None
    series_by: list[str] = []
    recorded_as: Literal["measurement", "medication_use", "needling_sites"] = "measurement"
    batch: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        if len(self.item_labels) != self.items:
            raise ValueError(f"{self.id}: {self.items} items but {len(self.item_labels)} labels")
        check_governing(self.id, self.mcid, self.mdc, self.responder)
        return self

    @property
    def no_threshold_text(self) -> str:
        """What to say where no threshold applies: the data file's note, else the words
        REFERENCE asks for."""
        return self.threshold_note or NO_THRESHOLD

    @property
    def item_names(self) -> list[str]:
        """Item keys in the instrument's documented order."""
        return [f"item{i}" for i in range(1, self.items + 1)]

    @property
    def coding(self) -> Coding:
        """The LOINC code where REFERENCE §4 lists one, else the local code."""
        if self.loinc is not None:
            return Coding(system=LOINC_SYSTEM, code=self.loinc.code, verified=self.loinc.verified)
        return Coding(system=LOCAL_CODE_SYSTEM, code=self.id, verified=True)

    def format(self, score: float | None) -> str:
        """A score as a clinician reads it: one decimal at most, with its unit spaced
        ("40 %", "12 mm"); a fraction or an angle stays attached ("4/10", "59°")."""
        if score is None:
            return "not scorable"
        unit = self.unit.strip()
        spaced = unit if not unit or unit.startswith(("/", "°")) else f" {unit}"
        return f"{round(score, 1):g}{spaced}"


class _Library(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    instruments: list[Instrument]


@cache
def library() -> dict[str, Instrument]:
    """Every instrument by id; every source a threshold cites exists in sources.yaml."""
    lib = _Library.model_validate(load_data("instruments.yaml"))
    for inst in lib.instruments:
        for name in ("mcid", "mdc", "responder"):
            threshold = getattr(inst, name)
            if threshold is not None:
                check_cited(f"instruments.yaml:{inst.id}.{name}", threshold.source_ids)
    return {i.id: i for i in lib.instruments}


@cache
def library_version() -> str:
    """The version of the instrument data file."""
    return str(load_data("instruments.yaml")["version"])


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
            if value != value:  # NaN: not an answer, and it would poison every sum
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


def validate_context(instrument: Instrument, context: Mapping[str, Any] | None) -> None:
    """Check the context keys the instrument needs or constrains (ROM's joint, PPT's site,
    return-to-work's date); raise InvalidInput naming `context.KEY`."""
    ctx = context or {}
    for key in instrument.requires_context:
        if ctx.get(key) in (None, ""):
            raise InvalidInput(f"{instrument.id} needs context.{key}", field=f"context.{key}")
    for key, allowed in instrument.context_values.items():
        if key in ctx and str(ctx[key]) not in allowed:
            raise InvalidInput(
                f"{instrument.id} context.{key} must be one of {', '.join(allowed)}",
                field=f"context.{key}",
            )
    for key in instrument.context_dates:
        if key in ctx:
            try:
                date.fromisoformat(str(ctx[key]))
            except ValueError:
                raise InvalidInput(
                    f"{instrument.id} context.{key} must be a date (YYYY-MM-DD)",
                    field=f"context.{key}",
                ) from None


def missing_rule_allows(instrument: Instrument, answered: int) -> bool:
    """Whether a form with `answered` of the instrument's items answered can be scored."""
    missing = instrument.items - answered
    if answered < max(1, instrument.min_answered):
        return False
    if instrument.missing == "none_allowed":
        return missing == 0
    if instrument.missing == "at_most_one":
        return missing <= 1
    return True  # lower_denominator, any_answered


def score(instrument: Instrument, answers: Mapping[str, Answer]) -> float | None:
    """The instrument's score from validated answers, or None when the missing-item rule
    says the form cannot be scored."""
    values = [answers.get(n) for n in instrument.item_names]
    given = [float(v) for v in values if v is not None]
    if not missing_rule_allows(instrument, len(given)):
        return None
    if instrument.scoring in ("single", "sum"):
        return sum(given)
    if instrument.scoring == "mean":
        return sum(given) / len(given)
    if instrument.scoring == "percent_of_answered":
        return sum(given) / (instrument.item_max * len(given)) * 100
    # DASH family: (sum / n - 1) x 25 over the answered items
    return (sum(given) / len(given) - 1) * 25


class InstrumentInfo(Instrument):
    """An instrument as the API publishes it: its definition plus item keys and its code."""

    item_keys: list[str]
    code: Coding


def describe(instrument: Instrument) -> InstrumentInfo:
    """The published description of an instrument."""
    return InstrumentInfo(
        **instrument.model_dump(), item_keys=instrument.item_names, code=instrument.coding
    )
