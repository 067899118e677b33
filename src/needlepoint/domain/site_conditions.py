"""What the patient's screened conditions mean at each needling site: pregnancy, recent
surgery, joint replacements and implants (`data/site_conditions.yaml`, with sources).

`site_safety.review_sites` calls `review` for the sites of a note; the findings join the
other site-level rules there (refused sites name `sites.N.…`, overrides need a written
reason, warnings are stored with the note). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import Muscle, Region, load_data, muscles
from needlepoint.domain.commands import NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.enums import Side
from needlepoint.domain.screening import area_words
from needlepoint.domain.sources import Finding, check_cited

Action = Literal["refuse", "refuse_override", "warn"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Near(_Frozen):
    """The muscles a rule reaches: those of `regions`, and those listed."""

    regions: list[Region] = []
    muscles: list[str] = []

    def reaches(self, muscle: Muscle) -> bool:
        return muscle.region in self.regions or muscle.id in self.muscles


class ConditionRule(Near):
    action: Action
    text: str
    sources: list[str]


class JointRule(ConditionRule):
    joints: dict[str, Near]


class SiteConditions(_Frozen):
    version: str
    pregnancy: dict[Literal["abdomen", "lumbopelvic", "estim"], ConditionRule]
    recent_surgery: ConditionRule
    prosthetic_joint: JointRule
    breast_implants: ConditionRule
    other_implant: ConditionRule

    @model_validator(mode="after")
    def _checked(self) -> SiteConditions:
        rules: dict[str, ConditionRule] = {
            **{f"pregnancy_{k}": v for k, v in self.pregnancy.items()},
            "recent_surgery": self.recent_surgery,
            "prosthetic_joint": self.prosthetic_joint,
            "breast_implants": self.breast_implants,
            "other_implant": self.other_implant,
        }
        known = {m.id for m in muscles().muscles}
        nears: list[Near] = [*rules.values(), *self.prosthetic_joint.joints.values()]
        for rule_id, rule in rules.items():
            check_cited(f"site_conditions.yaml:{rule_id}", rule.sources)
        for near in nears:
            unknown = set(near.muscles) - known
            if unknown:
                raise ValueError(f"site_conditions.yaml names unknown muscles {sorted(unknown)}")
        return self

    def rule_ids(self) -> dict[str, ConditionRule]:
        """Every rule by the id its findings carry."""
        return {
            "pregnancy_abdomen": self.pregnancy["abdomen"],
            "pregnancy_lumbopelvic": self.pregnancy["lumbopelvic"],
            "pregnancy_estim": self.pregnancy["estim"],
            "recent_surgery_site": self.recent_surgery,
            "prosthetic_joint_near": self.prosthetic_joint,
            "breast_implant_near": self.breast_implants,
            "implant_near": self.other_implant,
        }


@cache
def site_conditions() -> SiteConditions:
    """The condition rules, checked against the muscle catalogue."""
    return SiteConditions.model_validate(load_data("site_conditions.yaml"))


def _sides(side: Side) -> tuple[str, ...]:
    return ("left", "right") if side is Side.MIDLINE else (side.value,)


def _areas(muscle: Muscle, side: Side) -> set[str]:
    if muscle.limb in ("head", "neck"):
        return {muscle.limb}
    return {f"{muscle.limb}:{s}" for s in _sides(side)}


def review(sites: Sequence[NeedlingSiteIn], screen: ScreeningAnswers | None) -> list[Finding]:
    """The findings the patient's screened conditions give each site of a note."""
    if screen is None:
        return []
    rules = site_conditions()
    catalogue = muscles()
    pregnant = bool(screen.answers.get("pregnancy"))
    out: list[Finding] = []

    def add(
        rule_id: str,
        rule: ConditionRule,
        i: int,
        muscle: Muscle,
        site: NeedlingSiteIn,
        where: str = "pregnancy",
    ) -> None:
        message = f"{muscle.name} ({site.side.value}), {where}: {rule.text}"
        out.append(Finding(rule_id, rule.action, message, tuple(rule.sources), site=i))

    for i, site in enumerate(sites):
        muscle = catalogue.get(site.muscle_id)
        if muscle is None:
            continue
        areas = _areas(muscle, site.side)
        if pregnant:
            for part in ("abdomen", "lumbopelvic"):
                rule = rules.pregnancy[part]
                if rule.reaches(muscle):
                    add(f"pregnancy_{part}", rule, i, muscle, site)
            if site.electrical_stimulation:
                add("pregnancy_estim", rules.pregnancy["estim"], i, muscle, site)
        if screen.answers.get("recent_surgery"):
            hit = sorted(areas & set(screen.surgery_areas))
            if hit:
                where = "recent surgery in " + " and ".join(area_words(a) for a in hit)
                add("recent_surgery_site", rules.recent_surgery, i, muscle, site, where)
        if screen.answers.get("prosthetic_joint"):
            for joint_site in screen.prosthetic_joints:
                joint, side = joint_site.split(":")
                near = rules.prosthetic_joint.joints.get(joint)
                if near and near.reaches(muscle) and side in _sides(site.side):
                    where = f"near the {side} {joint} replacement"
                    add("prosthetic_joint_near", rules.prosthetic_joint, i, muscle, site, where)
        if screen.answers.get("breast_implants") and rules.breast_implants.reaches(muscle):
            hit_sides = [s for s in screen.breast_implant_sides if s in _sides(site.side)]
            if hit_sides:
                where = "over the " + " and ".join(hit_sides) + " breast implant"
                add("breast_implant_near", rules.breast_implants, i, muscle, site, where)
        if screen.answers.get("other_implant"):
            hit = sorted(areas & set(screen.implant_areas))
            if hit:
                where = "implant in " + " and ".join(area_words(a) for a in hit)
                add("implant_near", rules.other_implant, i, muscle, site, where)
    return out
