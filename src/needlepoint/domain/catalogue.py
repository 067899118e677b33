"""Clinical knowledge loaded from the versioned data files in `domain/data/`.

Each file is validated when first read; a malformed file stops start-up rather than
letting a rule silently go missing."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def load_data(name: str) -> Any:
    """Parse one YAML file of `domain/data/`."""
    text = resources.files("needlepoint.domain").joinpath("data", name).read_text("utf-8")
    return yaml.safe_load(text)


# --- conditions -------------------------------------------------------------------------


class Icd10(_Frozen):
    code: str
    title: str
    verified: bool | Literal["partial"]


class RomSpec(_Frozen):
    joint: str
    movement: str


class Condition(_Frozen):
    id: str
    label: str
    icd10: Icd10
    body_region: str
    function_instrument: str | None
    rom: RomSpec | None


class ConditionCatalogue(_Frozen):
    version: str
    source: str
    conditions: list[Condition]

    def get(self, condition_id: str) -> Condition | None:
        """The condition with this id, or None."""
        return next((c for c in self.conditions if c.id == condition_id), None)


@cache
def conditions() -> ConditionCatalogue:
    """The condition catalogue (`conditions.yaml`)."""
    return ConditionCatalogue.model_validate(load_data("conditions.yaml"))


# --- muscles ----------------------------------------------------------------------------


class Muscle(_Frozen):
    id: str
    name: str
    region: str
    thorax: bool
    synonyms: list[str]


class MuscleCatalogue(_Frozen):
    version: str
    muscles: list[Muscle]
    condition_muscles: dict[str, list[str]]

    def get(self, muscle_id: str) -> Muscle | None:
        """The muscle with this id, or None."""
        return _muscle_index().get(muscle_id)


@cache
def _muscle_index() -> dict[str, Muscle]:
    return {m.id: m for m in muscles().muscles}


@cache
def muscles() -> MuscleCatalogue:
    """The muscle catalogue (`muscles.yaml`), checked for dangling references."""
    catalogue = MuscleCatalogue.model_validate(load_data("muscles.yaml"))
    known = {m.id for m in catalogue.muscles}
    for condition, ids in catalogue.condition_muscles.items():
        unknown = set(ids) - known
        if unknown:
            raise ValueError(f"muscles.yaml: {condition} names unknown muscles {sorted(unknown)}")
    return catalogue


@cache
def muscle_ids() -> frozenset[str]:
    """Ids of every catalogued muscle (fast membership test for the write path)."""
    return frozenset(m.id for m in muscles().muscles)


# --- adverse-event benchmarks -----------------------------------------------------------


class AdverseEventStudy(_Frozen):
    id: str
    citation: str
    verified: bool
    denominator: str
    sample: int
    mild_percent: float
    mild_by_kind_percent: dict[str, float]
    significant_upper_percent: float
    significant_events: int | None = None


class AdverseEventBenchmarks(_Frozen):
    version: str
    severity_source: str
    studies: list[AdverseEventStudy]

    def study(self, study_id: str) -> AdverseEventStudy:
        """The study with this id (KeyError when absent)."""
        for s in self.studies:
            if s.id == study_id:
                return s
        raise KeyError(study_id)


@cache
def adverse_event_benchmarks() -> AdverseEventBenchmarks:
    """Published adverse-event rates (`adverse_events.yaml`)."""
    return AdverseEventBenchmarks.model_validate(load_data("adverse_events.yaml"))
