"""Site-level safety: which needling sites of a note are refused, overridden or flagged.

Rules are data (`data/site_rules.yaml`) with sources; muscles carry their cautions in
`data/muscles.yaml`. A refusal names exactly the sites it concerns: the other sites of the
note are not affected. Overridable refusals pass when the site carries a structured
override code and a written reason of real length; absolute ones never do.

Every message is written for the clinician: the finding in clinical words and what to do,
never an internal id (`upper_limb:left`, `anticoagulants`) or a screening question's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import Muscle, load_data, muscles
from needlepoint.domain.commands import NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.enums import OverrideCode, Side
from needlepoint.domain.errors import InvalidInput, SafetyRefusal
from needlepoint.domain.sources import Finding, check_cited

Action = Literal["refuse", "refuse_override", "warn"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Frozen):
    action: Action
    text: str
    sources: list[str]
    advice: str | None = None
    """What lifts a refusal that a written override cannot (e.g. a documented clearance)."""


class AreaRule(Rule):
    finding: str
    """The condition in clinical words ("Lymphoedema"), written before the area."""


class AreaLabel(_Frozen):
    label: str
    where: Literal["limb", "area"]


class NeverNeedle(_Frozen):
    name: str
    terms: list[str]
    text: str
    sources: list[str]


class Caution(_Frozen):
    text: str
    sources: list[str]


class DepthCaveat(_Frozen):
    max_depth_mm: float
    action: Action = "refuse_override"
    text: str
    sources: list[str]


class BilateralExempt(_Frozen):
    muscles: list[str]
    approaches: list[str]
    sources: list[str]


class OverrideReasons(_Frozen):
    min_characters: int
    min_words: int
    sources: list[str]
    codes: dict[OverrideCode, str]


class ScreeningFinding(_Frozen):
    finding: str
    advice: str


class SiteRules(_Frozen):
    version: str
    area_labels: dict[str, AreaLabel]
    area_exclusions: dict[str, AreaRule]
    never_needle: dict[str, NeverNeedle]
    session_rules: dict[str, Rule]
    estim_device_regions: list[str]
    bilateral_exempt: BilateralExempt
    override_reasons: OverrideReasons
    cautions: dict[str, Caution]
    depth_caveats: dict[str, DepthCaveat]
    screening_findings: dict[str, ScreeningFinding]

    @model_validator(mode="after")
    def _cited(self) -> SiteRules:
        groups: list[dict[str, Any]] = [
            self.area_exclusions,
            self.never_needle,
            self.session_rules,
            self.cautions,
            self.depth_caveats,
        ]
        for group in groups:
            for rule_id, rule in group.items():
                check_cited(f"site_rules.yaml:{rule_id}", rule.sources)
        check_cited("site_rules.yaml:bilateral_exempt", self.bilateral_exempt.sources)
        check_cited("site_rules.yaml:override_reasons", self.override_reasons.sources)
        if set(self.override_reasons.codes) != set(OverrideCode):
            raise ValueError("site_rules.yaml: override_reasons must word every OverrideCode")
        return self


@cache
def site_rules() -> SiteRules:
    """The site-level rules, checked against the muscle catalogue's caution ids."""
    rules = SiteRules.model_validate(load_data("site_rules.yaml"))
    catalogue = muscles()
    for muscle in catalogue.muscles:
        unknown = set(muscle.cautions) - set(rules.cautions)
        if unknown:
            raise ValueError(f"muscles.yaml: {muscle.id} names unknown cautions {sorted(unknown)}")
    for muscle_id in [*rules.depth_caveats, *rules.bilateral_exempt.muscles]:
        if catalogue.get(muscle_id) is None:
            raise ValueError(f"site_rules.yaml names unknown muscle {muscle_id}")
    return rules


# --- wording ----------------------------------------------------------------------------


def area_label(area: str) -> str:
    """A screening area as written on screen ("left arm" for `upper_limb:left`)."""
    known = site_rules().area_labels.get(area)
    return known.label if known else area.replace("_", " ").replace(":", ", ")


def _where(area: str) -> str:
    known = site_rules().area_labels.get(area)
    return known.where if known else "area"


def area_statement(reason: str, area: str) -> str:
    """One named area of a screening in clinical words: "Lymphoedema of the left arm: never
    needle this limb." """
    rule = site_rules().area_exclusions[reason]
    return f"{rule.finding} of the {area_label(area)}: {rule.text.format(where=_where(area))}"


def screening_statement(rule: str, screen: ScreeningAnswers | None, fallback: str) -> str:
    """What a screening finding means, in clinical words, with what to do about it; names
    the affected limb or area for the site questions. `fallback` is used only for a
    question this file does not word yet (a test requires every question to be worded)."""
    worded = site_rules().screening_findings.get(rule)
    if screen is not None and rule == "lymphoedema" and screen.lymphoedema_areas:
        return " ".join(area_statement("lymphoedema", a) for a in screen.lymphoedema_areas)
    if screen is not None and rule == "local_tissue_problem" and screen.local_exclusions:
        return " ".join(area_statement(e.reason, e.area) for e in screen.local_exclusions)
    if worded is None:
        return fallback
    note = screen.notes.get(rule, "").strip() if screen is not None else ""
    text = f"{worded.finding}: {worded.advice}"
    if "{areas}" in text:  # surgery, joint replacement and implant questions name areas
        text = text.replace("{areas}", _named_areas(rule, screen))
    return f"{text} Noted: {note}" if note else text


def _named_areas(rule: str, screen: ScreeningAnswers | None) -> str:
    """The areas, joints or sides a yes to a screening question names, in clinical words
    ("the left knee and the right hip"); "the affected area" when none are known."""
    from needlepoint.domain import screening  # screening imports this module

    questions = {q.id: q for q in screening.questionnaire().questions}
    if screen is None or rule not in questions:
        return "the affected area"
    words = [w for _, w in screening.named_areas(questions[rule], screen)]
    return screening.join_words(words) or "the affected area"


def _side_words(side: Side) -> str:
    return "midline" if side is Side.MIDLINE else f"{side.value} side"


# --- names a note may not use ---------------------------------------------------------


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())


def never_needle_place(name: str) -> str | None:
    """The never-needle rule a site's name refers to (the umbilicus, the nipple …), if any."""
    words = f" {_normalised(name)} "
    for rule_id, place in site_rules().never_needle.items():
        if any(f" {_normalised(t)} " in words for t in place.terms):
            return rule_id
    return None


def check_named_sites(sites: Sequence[NeedlingSiteIn]) -> None:
    """Refuse sites that name a place never needled (absolute, with its sources), and a
    paired muscle recorded as midline (422 naming `sites.N.side`)."""
    catalogue = muscles()
    rules = site_rules()
    refused: list[Finding] = []
    for i, site in enumerate(sites):
        if catalogue.get(site.muscle_id) is not None:
            continue
        place_id = never_needle_place(site.muscle_id)
        if place_id is not None:
            place = rules.never_needle[place_id]
            refused.append(
                Finding(place_id, "refuse", f"{place.name}: {place.text}", tuple(place.sources), i)
            )
    if refused:
        raise SafetyRefusal(
            " ".join(f.message for f in refused),
            errors=[
                f.as_error(f"sites.{f.site}.muscle_id", "This cannot be overridden.")
                for f in refused
            ],
        )
    for i, site in enumerate(sites):
        muscle = catalogue.get(site.muscle_id)
        if muscle is not None and site.side is Side.MIDLINE and muscle.laterality == "paired":
            raise InvalidInput(
                f"{muscle.name} is a paired muscle: record the left or the right side "
                "(midline is only for a single midline structure)",
                field=f"sites.{i}.side",
            )


# --- overrides --------------------------------------------------------------------------


def override_problem(site: NeedlingSiteIn) -> tuple[str, str] | None:
    """Why a site's override does not count (the field to name and what to write), or
    None when it carries a reason code and a written reason of real length."""
    policy = site_rules().override_reasons
    codes = "; ".join(policy.codes.values())
    need = (
        f"an override needs a reason code ({codes}) and a written reason of at least "
        f"{policy.min_characters} characters and {policy.min_words} words saying what was "
        "seen and what was done differently"
    )
    reason = " ".join((site.override_reason or "").split())
    words = re.findall(r"[^\W\d_]{2,}", reason)
    if not reason or len(reason) < policy.min_characters or len(set(words)) < policy.min_words:
        return "override_reason", f"Write why: {need}."
    if site.override_code is None:
        return "override_code", f"Choose a reason code: {need}."
    return None


# --- the review of one note -------------------------------------------------------------


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


def _precautions(screen: ScreeningAnswers | None) -> list[tuple[str, str, tuple[str, ...]]]:
    """The screening's precautions as (rule, statement, sources), shown at every site."""
    if screen is None:
        return []
    from needlepoint.domain.screening import questionnaire  # screening words its reasons here

    out = []
    for question in questionnaire().questions:
        if question.category == "precaution" and screen.answers.get(question.id):
            statement = screening_statement(question.id, screen, question.text)
            out.append((question.id, statement, tuple(question.sources)))
    return out


def review_sites(sites: Sequence[NeedlingSiteIn], screen: ScreeningAnswers | None) -> list[Finding]:
    """Every refusal, warning and precaution for the sites of one note, each naming its
    site."""
    rules = site_rules()
    catalogue = muscles()
    exclusions = excluded_areas(screen)
    implanted = bool(screen and screen.answers.get("implanted_electrical_device"))
    precautions = _precautions(screen)
    exempt = rules.bilateral_exempt
    findings: list[Finding] = []
    thorax_sides: list[tuple[int, str]] = []
    all_lung_safe = True
    for i, site in enumerate(sites):
        muscle = catalogue.get(site.muscle_id)
        if muscle is None:  # unknown muscles are refused earlier, by name
            continue
        where = f"{muscle.name} ({_side_words(site.side)})"
        for area in sorted(site_areas(muscle, site.side)):
            for reason in exclusions.get(area, []):
                area_rule = rules.area_exclusions[reason]
                findings.append(
                    Finding(
                        reason,
                        area_rule.action,
                        f"{area_statement(reason, area)} {where} lies in it.",
                        tuple(area_rule.sources),
                        site=i,
                    )
                )
        if muscle.thorax:
            rule = rules.session_rules["thorax_pneumothorax"]
            findings.append(
                Finding(
                    "thorax_pneumothorax",
                    rule.action,
                    f"{where}: {rule.text}",
                    tuple(rule.sources),
                    site=i,
                )
            )
            lung_safe = muscle.id in exempt.muscles and (
                site.approach is not None and site.approach.value in exempt.approaches
            )
            if site.side is not Side.MIDLINE:
                thorax_sides.append((i, site.side.value))
            all_lung_safe = all_lung_safe and lung_safe
        for caution_id in muscle.cautions:
            caution = rules.cautions[caution_id]
            findings.append(
                Finding(
                    caution_id, "warn", f"{muscle.name}: {caution.text}", tuple(caution.sources), i
                )
            )
        caveat = rules.depth_caveats.get(muscle.id)
        if caveat is not None and site.depth_mm > caveat.max_depth_mm:
            findings.append(
                Finding(
                    f"depth_{muscle.id}",
                    caveat.action,
                    f"{where} needled to {site.depth_mm:g} mm, deeper than the "
                    f"{caveat.max_depth_mm:g} mm the source gives as safe over the pleura: "
                    f"{caveat.text} Needle shallower, or record why.",
                    tuple(caveat.sources),
                    site=i,
                )
            )
        if site.electrical_stimulation and implanted:
            findings.append(_estim_device(i, muscle, where, screen))
        for rule_id, statement, sources in precautions:
            findings.append(Finding(rule_id, "precaution", statement, sources, site=i))
    if not all_lung_safe:  # routine only when every thorax site is held in a pincer grip
        findings += _bilateral_thorax(thorax_sides, sites)
    # -- pregnancy, surgery, joint replacements and implants (`site_conditions.yaml`): the
    # same actions, so an overridable refusal there needs the same structured override.
    # Imported here: site_conditions words areas through screening, which imports us.
    from needlepoint.domain import site_conditions

    findings += site_conditions.review(sites, screen)
    return findings


def _estim_device(i: int, muscle: Muscle, where: str, screen: ScreeningAnswers | None) -> Finding:
    """Electrical stimulation with an implanted device: refused near the chest and arms
    unless the screening documents a clearance; a precaution elsewhere."""
    rules = site_rules()
    near = muscle.thorax or muscle.region in rules.estim_device_regions
    clearance = screen.device_clearance if screen is not None else None
    if not near:
        rule_id = "estim_implanted_device_elsewhere"
    elif clearance is None:
        rule_id = "estim_implanted_device"
    else:
        rule_id = "estim_device_cleared"
    rule = rules.session_rules[rule_id]
    message = f"{where}: {rule.text}"
    if rule_id == "estim_device_cleared" and clearance is not None:
        message += (
            f" Cleared by {clearance.cleared_by} on {clearance.cleared_on.isoformat()} "
            f"({clearance.document})."
        )
    return Finding(rule_id, rule.action, message, tuple(rule.sources), site=i)


def _bilateral_thorax(
    thorax_sides: list[tuple[int, str]], sites: Sequence[NeedlingSiteIn]
) -> list[Finding]:
    """Both sides of the thorax in one note: the sites on the side needled second are
    refused unless overridden (the first side proceeds). The caller skips this when every
    thorax site of the note is held in a pincer grip where the rules allow it
    (`bilateral_exempt`): routine bilateral upper trapezius needling."""
    if len({side for _, side in thorax_sides}) < 2:
        return []
    first_side = thorax_sides[0][1]
    rule = site_rules().session_rules["bilateral_thorax"]
    catalogue = muscles()
    out = []
    for i, side in thorax_sides:
        if side == first_side:
            continue
        muscle = catalogue.get(sites[i].muscle_id)
        name = muscle.name if muscle else "This site"
        out.append(
            Finding(
                "bilateral_thorax",
                rule.action,
                f"{name} ({side} side): {rule.text} The {first_side} side of the thorax is "
                "already needled in this note.",
                tuple(rule.sources),
                site=i,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SiteDecision:
    refused: tuple[Finding, ...]
    overridden: tuple[Finding, ...]
    warnings: tuple[Finding, ...]


def decide(sites: Sequence[NeedlingSiteIn], findings: Sequence[Finding]) -> SiteDecision:
    """Split findings into refusals that stand, refusals overridden by a structured and
    written reason, and warnings (precautions included)."""
    refused, overridden, warnings = [], [], []
    for f in findings:
        assert f.site is not None
        if f.action == "refuse" or (
            f.action == "refuse_override" and override_problem(sites[f.site]) is not None
        ):
            refused.append(f)
        elif f.action == "refuse_override":
            overridden.append(f)
        else:
            warnings.append(f)
    return SiteDecision(tuple(refused), tuple(overridden), tuple(warnings))


def _refusal_error(f: Finding, sites: Sequence[NeedlingSiteIn]) -> dict[str, Any]:
    assert f.site is not None
    if f.action != "refuse_override":
        rule = site_rules().session_rules.get(f.rule)
        advice = rule.advice if rule is not None and rule.advice else None
        return f.as_error(f"sites.{f.site}.muscle_id", advice or "This cannot be overridden.")
    problem = override_problem(sites[f.site])
    assert problem is not None
    field, advice = problem
    return f.as_error(f"sites.{f.site}.{field}", advice)


def flag(f: Finding, action: str | None = None) -> dict[str, Any]:
    """A finding as stored with the note: its rule, action, site and the clinical words."""
    return {"rule": f.rule, "action": action or f.action, "site": f.site, "message": f.message}


def enforce(
    sites: Sequence[NeedlingSiteIn], screen: ScreeningAnswers | None
) -> list[dict[str, Any]]:
    """Refuse the note when any site is refused (naming each such site and its rule);
    otherwise return the flags to store with it: warnings, precautions and overrides."""
    decision = decide(sites, review_sites(sites, screen))
    if decision.refused:
        raise SafetyRefusal(
            f"{len(decision.refused)} needling site(s) refused; the other sites are not "
            "affected. " + " ".join(f.message for f in decision.refused),
            errors=[_refusal_error(f, sites) for f in decision.refused],
        )
    flags = [flag(f) for f in decision.warnings]
    for f in decision.overridden:
        assert f.site is not None
        site = sites[f.site]
        flags.append(
            {
                **flag(f, "overridden"),
                "override_code": site.override_code.value if site.override_code else None,
            }
        )
    return flags
