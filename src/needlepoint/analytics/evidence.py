"""Evidence context: the published pooled effect for each benefit (REFERENCE §5, kept in
`analytics/data/pooled_effects.yaml`, each citing a source of `domain/data/sources.yaml`
by id: one that does not resolve fails the load), or "no pooled
evidence", shown beside the clinic's own result. The clinic's figure is a responder rate
or a change within patients; the published ones are between-group effects from trials:
they are context, not a comparison of like with like, and the page says so."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict
from pydantic.dataclasses import dataclass

from needlepoint.domain.benefits import benefits
from needlepoint.domain.sources import check_cited, sources

NO_POOLED = "no pooled evidence"
CONTEXT_NOTE = (
    "Published effects are between-group differences from trials (negative favours dry "
    "needling); the clinic's figures are changes within its own patients. They sit side by "
    "side as context, not as a like-for-like comparison."
)


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class PooledEffect:
    outcome: str
    timepoint: str
    comparison: str
    measure: str
    estimate: float
    low: float
    high: float
    source: str
    source_id: str  # in domain/data/sources.yaml
    verified: bool  # from sources.yaml: seen first-hand


class BenefitEvidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    pooled: list[PooledEffect]
    none: str | None = None

    @property
    def summary(self) -> str:
        """One line for a tile: the first pooled effect, or why there is none."""
        if not self.pooled:
            return f"{NO_POOLED}: {self.none}" if self.none else NO_POOLED
        p = self.pooled[0]
        return (
            f"{p.outcome}, {p.timepoint}, {p.comparison}: {p.measure} {p.estimate:g} "
            f"({p.low:g} to {p.high:g}); {p.source}"
        )


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    benefits: dict[str, BenefitEvidence]


@cache
def pooled_effects() -> dict[str, BenefitEvidence]:
    """The pooled evidence per benefit id: exactly the benefits of `evidence.yaml` (and
    function / disability beside them), each with the evidence for that benefit only."""
    text = resources.files("needlepoint.analytics").joinpath("data", "pooled_effects.yaml")
    raw = yaml.safe_load(text.read_text("utf-8"))
    for benefit_id, entry in raw.get("benefits", {}).items():
        cited = [p.get("source_id", "") for p in entry.get("pooled", [])]
        check_cited(f"pooled_effects.yaml: {benefit_id}", cited)
        for p in entry.get("pooled", []):
            p["verified"] = sources()[p["source_id"]].verified is True
    parsed = _File.model_validate(raw)
    ids = {b.id for b in benefits()}
    missing, stray = ids - set(parsed.benefits), set(parsed.benefits) - ids
    if missing or stray:
        raise ValueError(
            f"pooled_effects.yaml: no entry for {sorted(missing)}; unknown {sorted(stray)}"
        )
    return parsed.benefits
