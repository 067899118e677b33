"""Site-level safety: which needling sites of a note are refused, overridden or flagged.

Rules are data (`data/site_rules.yaml`) with sources; muscles carry their cautions in
`data/muscles.yaml`. A refusal names exactly the sites it concerns: the other sites of the
note are not affected. Overridable refusals pass when the site carries a written
`override_reason`; absolute ones never do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain import site_conditions
from needlepoint.domain.catalogue import Muscle, load_data, muscles
from needlepoint.domain.commands import NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.enums import Side
from needlepoint.domain.errors import SafetyRefusal
from needlepoint.domain.sources import Finding, check_cited

Action = Literal["refuse", "refuse_override", "warn"]


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    action: Action
    text: str
    sources: list[str]


class Caution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str
    sources: list[str]


class DepthCaveat(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_depth_mm: float
    text: str
    sources: list[str]


class SiteRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    area_exclusions: dict[str, Rule]
    session_rules: dict[str, Rule]
    cautions: dict[str, Caution]
    depth_caveats: dict[str, DepthCaveat]

    @model_validator(mode="after")
    def _cited(self) -> SiteRules:
        groups: list[dict[str, Any]] = [
            self.area_exclusions,
            self.session_rules,
            self.cautions,
            self.depth_caveats,
        ]
        for group in groups:
            for rule_id, rule in group.items():
                check_cited(f"site_rules.yaml:{rule_id}", rule.sources)
        return self


@cache
def site_rules() -> SiteRules:
    """The site-level rules, checked against the muscle catalogue's caution ids."""
    rules = SiteRules.model_validate(load_data("site_rules.yaml"))
    for muscle in muscles().muscles:
        unknown = set(muscle.cautions) - set(rules.cautions)
        if unknown:
            raise ValueError(f"muscles.yaml: {muscle.id} names unknown cautions {sorted(unknown)}")
    return rules


def site_areas(muscle: Muscle, side: Side) -> frozenset[str]:
    """The body areas a site lies in: its muscle's limb on the site's side (a midline site
    lies on both sides; head and neck are one area each)."""
    if muscle.limb in ("head", "neck"):
        return frozenset({muscle.limb})
    sides = ("left", "right") if side is Side.MIDLINE else (side.value,)
    return frozenset(f"{muscle.limb}:{s}" for s in sides)


def excluded_areas(screen: ScreeningAnswers | None) -> dict[str, list[str]]:
    """Area → the exclusion reasons a screening names for it."""
    out: dict[str, list[str]] = {}
    if screen is None:
        return out
    for area in screen.lymphoedema_areas:
        out.setdefault(area, []).append("lymphoedema")
    for exclusion in screen.local_exclusions:
        out.setdefault(exclusion.area, []).append(exclusion.reason)
    return out


def review_sites(sites: Sequence[NeedlingSiteIn], screen: ScreeningAnswers | None) -> list[Finding]:
    """Every refusal and warning for the sites of one note, each naming its site."""
    rules = site_rules()
    catalogue = muscles()
    exclusions = excluded_areas(screen)
    implanted = bool(screen and screen.answers.get("implanted_electrical_device"))
    findings: list[Finding] = []
    thorax_sides: list[tuple[int, str]] = []
    for i, site in enumerate(sites):
        muscle = catalogue.get(site.muscle_id)
        if muscle is None:  # unknown muscles are refused earlier, by name
            continue
        for area in sorted(site_areas(muscle, site.side)):
            for reason in exclusions.get(area, []):
                rule = rules.area_exclusions[reason]
                findings.append(
                    Finding(
                        reason,
                        rule.action,
                        f"{muscle.name} ({site.side}) lies in {area}: {rule.text}",
                        tuple(rule.sources),
                        site=i,
                    )
                )
        if muscle.thorax:
            rule = rules.session_rules["thorax_pneumothorax"]
            findings.append(
                Finding("thorax_pneumothorax", rule.action, rule.text, tuple(rule.sources), site=i)
            )
            if site.side is not Side.MIDLINE:
                thorax_sides.append((i, site.side.value))
        for caution_id in muscle.cautions:
            caution = rules.cautions[caution_id]
            findings.append(
                Finding(caution_id, "warn", caution.text, tuple(caution.sources), site=i)
            )
        caveat = rules.depth_caveats.get(muscle.id)
        if caveat is not None and site.depth_mm > caveat.max_depth_mm:
            findings.append(
                Finding(
                    f"depth_{muscle.id}",
                    "warn",
                    f"{site.depth_mm:g} mm is deeper than {caveat.max_depth_mm:g} mm: "
                    f"{caveat.text}",
                    tuple(caveat.sources),
                    site=i,
                )
            )
        if site.electrical_stimulation and implanted:
            rule = rules.session_rules["estim_implanted_device"]
            findings.append(
                Finding(
                    "estim_implanted_device", rule.action, rule.text, tuple(rule.sources), site=i
                )
            )
    findings += _bilateral_thorax(thorax_sides)
    # -- truth-screening hook: pregnancy, surgery, joint replacements and implants --------
    findings += site_conditions.review(sites, screen)
    return findings


def _bilateral_thorax(thorax_sides: list[tuple[int, str]]) -> list[Finding]:
    """Both sides of the thorax in one note: the sites on the side needled second are
    refused unless overridden (the first side proceeds)."""
    if len({side for _, side in thorax_sides}) < 2:
        return []
    first_side = thorax_sides[0][1]
    rule = site_rules().session_rules["bilateral_thorax"]
    return [
        Finding(
            "bilateral_thorax",
            rule.action,
            f"{rule.text} The {first_side} side of the thorax is already needled in this note.",
            tuple(rule.sources),
            site=i,
        )
        for i, side in thorax_sides
        if side != first_side
    ]


@dataclass(frozen=True, slots=True)
class SiteDecision:
    refused: tuple[Finding, ...]
    overridden: tuple[Finding, ...]
    warnings: tuple[Finding, ...]


def decide(sites: Sequence[NeedlingSiteIn], findings: Sequence[Finding]) -> SiteDecision:
    """Split findings into refusals that stand, refusals overridden by a written reason,
    and warnings."""
    refused, overridden, warnings = [], [], []
    for f in findings:
        assert f.site is not None
        if f.action == "refuse" or (
            f.action == "refuse_override" and not sites[f.site].override_reason
        ):
            refused.append(f)
        elif f.action == "refuse_override":
            overridden.append(f)
        else:
            warnings.append(f)
    return SiteDecision(tuple(refused), tuple(overridden), tuple(warnings))


def enforce(
    sites: Sequence[NeedlingSiteIn], screen: ScreeningAnswers | None
) -> list[dict[str, Any]]:
    """Refuse the note when any site is refused (naming each such site and its rule);
    otherwise return the flags to store with it: warnings and overrides."""
    decision = decide(sites, review_sites(sites, screen))
    if decision.refused:
        raise SafetyRefusal(
            f"{len(decision.refused)} needling site(s) refused by safety rules; "
            "the other sites are not affected",
            errors=[
                f.as_error(
                    f"sites.{f.site}.override_reason", "A written override_reason is required."
                )
                if f.action == "refuse_override"
                else f.as_error(f"sites.{f.site}.muscle_id", "This cannot be overridden.")
                for f in decision.refused
            ],
        )
    flags = [{"rule": f.rule, "action": f.action, "site": f.site} for f in decision.warnings]
    flags += [{"rule": f.rule, "action": "overridden", "site": f.site} for f in decision.overridden]
    return flags
