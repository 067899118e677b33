"""Practitioner credentials: whether a clinician meets the clinic's rules for dry needling.

Rule sets per jurisdiction are data (`data/jurisdictions.yaml`, values from REFERENCE §6,
unverified); a clinic may add its own stricter minimums. The clinic decides whether a
practitioner who falls short is warned or blocked. Students are supervised: their notes
need a licensed co-signature instead."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.entities import Clinic, TrainingRecord, User
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.sources import Finding, check_cited


class Jurisdiction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    no_rule_recorded: bool
    """Our reference records no rule for this jurisdiction: nothing is checked, and the
    screens say "no rule recorded" (not that the jurisdiction has none)."""
    min_training_hours: float | None
    min_licence_years: float | None
    consent_copy_required: bool
    adverse_event_report_days: int | None
    sources: list[str]


class _Jurisdictions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    jurisdictions: list[Jurisdiction]

    @model_validator(mode="after")
    def _cited(self) -> _Jurisdictions:
        for j in self.jurisdictions:
            check_cited(f"jurisdictions.yaml:{j.id}", j.sources)
            rules = (
                j.min_training_hours,
                j.min_licence_years,
                j.adverse_event_report_days,
                j.consent_copy_required or None,
            )
            if j.no_rule_recorded and (j.sources or any(v is not None for v in rules)):
                raise ValueError(f"jurisdictions.yaml:{j.id}: no rule recorded, yet rules given")
            if not j.no_rule_recorded and not j.sources:
                raise ValueError(f"jurisdictions.yaml:{j.id}: a rule set without its source")
        return self


@cache
def jurisdictions() -> dict[str, Jurisdiction]:
    """Every rule set by id."""
    data = _Jurisdictions.model_validate(load_data("jurisdictions.yaml"))
    return {j.id: j for j in data.jurisdictions}


def jurisdiction(jurisdiction_id: str) -> Jurisdiction:
    """The rule set with this id, or InvalidInput naming `jurisdiction`."""
    found = jurisdictions().get(jurisdiction_id)
    if found is None:
        known = ", ".join(sorted(jurisdictions()))
        raise InvalidInput(
            f"unknown jurisdiction '{jurisdiction_id}' (known: {known})", field="jurisdiction"
        )
    return found


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """A practitioner's record against the clinic's rules on one day."""

    hours_in_person: float
    hours_online: float
    exam_passed: bool
    regions: tuple[str, ...]
    years_licensed: float | None
    required_hours: float | None
    required_years: float | None
    problems: tuple[Finding, ...]
    supervised: bool

    @property
    def meets_rules(self) -> bool:
        return not self.problems


def _stricter(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


def check_credentials(
    user: User, training: Iterable[TrainingRecord], clinic: Clinic, on: date
) -> CredentialCheck:
    """The practitioner's training and licence against the clinic's jurisdiction and its
    own minimums. Total hours count in-person and online training (both are shown)."""
    rules = jurisdiction(clinic.jurisdiction)
    records = list(training)
    in_person = sum(r.hours_in_person for r in records)
    online = sum(r.hours_online for r in records)
    years = (on - user.licence_date).days / 365.25 if user.licence_date else None
    need_hours = _stricter(rules.min_training_hours, clinic.min_training_hours)
    need_years = _stricter(rules.min_licence_years, clinic.min_licence_years)
    sources = tuple(rules.sources)
    supervised = user.role is Role.STUDENT
    problems: list[Finding] = []
    if not supervised:
        if not records:
            problems.append(
                Finding(
                    "no_training",
                    "credential",
                    "No dry needling training is on record.",
                    ("regulators_2020s",),
                )
            )
        if need_hours is not None and in_person + online < need_hours:
            problems.append(
                Finding(
                    "training_hours",
                    "credential",
                    f"{in_person + online:g} h of dry needling training on record; "
                    f"{need_hours:g} h required "
                    f"({_who(rules.min_training_hours, need_hours, rules.name)}).",
                    sources if rules.min_training_hours == need_hours else (),
                )
            )
        if need_years is not None and (years is None or years < need_years):
            held = "no licence date on record" if years is None else f"licensed {years:.1f} years"
            problems.append(
                Finding(
                    "licence_years",
                    "credential",
                    f"{held}; {need_years:g} years required "
                    f"({_who(rules.min_licence_years, need_years, rules.name)}).",
                    sources if rules.min_licence_years == need_years else (),
                )
            )
    return CredentialCheck(
        hours_in_person=in_person,
        hours_online=online,
        exam_passed=any(r.exam_passed for r in records),
        regions=tuple(sorted({region for r in records for region in r.regions})),
        years_licensed=years,
        required_hours=need_hours,
        required_years=need_years,
        problems=tuple(problems),
        supervised=supervised,
    )


def _who(jurisdiction_value: float | None, required: float, name: str) -> str:
    return name if jurisdiction_value == required else "clinic policy"


def untrained_regions(check: CredentialCheck, regions: Sequence[str]) -> list[str]:
    """Regions needled that none of the practitioner's courses lists (empty when the
    courses name no regions at all: nothing to compare against)."""
    if not check.regions:
        return []
    return sorted({r for r in regions if r not in check.regions})
