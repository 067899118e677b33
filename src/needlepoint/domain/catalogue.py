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


Region = Literal[
    "head",
    "neck",
    "upper_back",
    "chest",
    "abdomen",
    "shoulder",
    "upper_arm",
    "forearm",
    "hand",
    "lumbar",
    "hip",
    "thigh",
    "knee",
    "calf",
    "leg",
    "foot",
]
Limb = Literal["head", "neck", "trunk", "upper_limb", "lower_limb"]
ChartKey = Literal[
    "trapezius",
    "upper-back",
    "lower-back",
    "chest",
    "biceps",
    "triceps",
    "forearm",
    "back-deltoids",
    "front-deltoids",
    "abs",
    "obliques",
    "adductor",
    "hamstring",
    "quadriceps",
    "abductors",
    "calves",
    "gluteal",
    "head",
    "neck",
    "knees",
    "left-soleus",
    "right-soleus",
]
"""Body-chart regions: the muscle keys of the MIT-licensed react-body-highlighter data."""


class Muscle(_Frozen):
    id: str
    name: str
    region: Region
    limb: Limb
    """Where a site-level exclusion such as "lymphoedema of the left upper limb" applies."""
    laterality: Literal["paired", "midline"] = "paired"
    """Paired muscles are needled on a side; a midline muscle is a single structure."""
    thorax: bool
    """Over the thorax or lung apex: the pneumothorax guidance applies (REFERENCE §1)."""
    cautions: list[str]
    """Neurovascular and other cautions, ids of `site_rules.yaml` (each with sources)."""
    chart: list[ChartKey]
    views: list[Literal["front", "back"]]
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


def search_muscles(
    query: str = "", *, region: str | None = None, chart: str | None = None, limit: int = 50
) -> list[Muscle]:
    """Muscles whose name, id or a synonym matches `query` (case-insensitive), best matches
    first: name starts with the query, then a word of the name or a synonym does, then the
    query appears anywhere. Optionally only one region or one body-chart key."""
    needle = " ".join(query.lower().replace("_", " ").split())
    ranked: list[tuple[int, str, Muscle]] = []
    for muscle in muscles().muscles:
        if region is not None and muscle.region != region:
            continue
        if chart is not None and chart not in muscle.chart:
            continue
        rank = _match_rank(needle, muscle)
        if rank is not None:
            ranked.append((rank, muscle.name.lower(), muscle))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [m for _, _, m in ranked[:limit]]


def _match_rank(needle: str, muscle: Muscle) -> int | None:
    if not needle:
        return 3
    name = muscle.name.lower()
    texts = [name, muscle.id.replace("_", " "), *(s.lower() for s in muscle.synonyms)]
    if name.startswith(needle):
        return 0
    words = [w.strip("()") for t in texts for w in t.split()]
    if any(t.startswith(needle) for t in texts) or any(w.startswith(needle) for w in words):
        return 1
    if any(needle in t for t in texts):
        return 2
    return None


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
