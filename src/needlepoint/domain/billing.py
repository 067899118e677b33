"""Billing codes: CPT for a signed needling note, ICD-10-CM suggestions for an episode.

CPT 20560 (1-2 muscles) and 20561 (3 or more) are derived from the distinct named muscles
needled, not from needles or trigger points (REFERENCE §4). Whether the left and right of
one muscle count as two is a clinic setting (`bill_sides_separately`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.entities import NeedlingSite
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.sources import check_cited


class CptCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    descriptor: str
    min_muscles: int
    max_muscles: int | None


class CptTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    effective_from: str
    sources: list[str]
    codes: list[CptCode]


class Icd10Code(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    title: str
    sources: list[str]


class Icd10Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    headers: dict[str, list[str]]
    """Category headers (not billable) near the codes offered, with the billable codes
    beneath each: M79.1 has been a header since FY2023."""
    headers_sources: list[str]
    myofascial: list[Icd10Code]
    by_condition: dict[str, list[Icd10Code]]


class BillingData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    cpt: CptTable
    icd10cm: Icd10Table

    @model_validator(mode="after")
    def _cited(self) -> BillingData:
        check_cited("billing.yaml:cpt", self.cpt.sources)
        codes = [
            *self.icd10cm.myofascial,
            *(c for cs in self.icd10cm.by_condition.values() for c in cs),
        ]
        for c in codes:
            check_cited(f"billing.yaml:{c.code}", c.sources)
            if c.code in self.icd10cm.headers:
                raise ValueError(f"billing.yaml offers the category header {c.code}")
        check_cited("billing.yaml:headers", self.icd10cm.headers_sources)
        return self


@cache
def billing_data() -> BillingData:
    """The code tables (`billing.yaml`)."""
    return BillingData.model_validate(load_data("billing.yaml"))


@dataclass(frozen=True, slots=True)
class DerivedCpt:
    code: str
    muscles: int


def billed_muscles(sites: Iterable[NeedlingSite], *, sides_separately: bool) -> int:
    """How many muscles count for CPT: distinct muscles, or distinct muscle-and-side pairs
    when the clinic bills the two sides of one muscle separately."""
    if sides_separately:
        return len({(s.muscle_id, s.side) for s in sites})
    return len({s.muscle_id for s in sites})


def derive_cpt(sites: Iterable[NeedlingSite], *, sides_separately: bool) -> DerivedCpt | None:
    """The CPT code for the needling in a note, or None when nothing was needled."""
    count = billed_muscles(sites, sides_separately=sides_separately)
    for code in billing_data().cpt.codes:
        if count >= code.min_muscles and (code.max_muscles is None or count <= code.max_muscles):
            return DerivedCpt(code.code, count)
    return None


def icd10_suggestions(condition_id: str) -> list[Icd10Code]:
    """Codes to suggest for an episode of this condition: the condition's own, then the
    myofascial pain (M79.1x) codes."""
    data = billing_data().icd10cm
    own = data.by_condition.get(condition_id, [])
    seen = {c.code for c in own}
    return [*own, *(c for c in data.myofascial if c.code not in seen)]


def check_billable(code: str, *, field: str = "icd10_code") -> None:
    """Refuse an ICD-10-CM category header (e.g. M79.1), naming the billable codes."""
    beneath = billing_data().icd10cm.headers.get(code.upper())
    if beneath is not None:
        raise InvalidInput(
            f"{code} is an ICD-10-CM category, not a billable code: choose one of "
            + ", ".join(beneath),
            field=field,
        )
