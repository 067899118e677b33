"""The sources clinical rules cite (`data/sources.yaml`), and findings that carry them.

A finding is what a rule says about a patient, a site or a clinician: its rule id, what it
means, what to do, and the sources behind it with their verification status, so that a
clinician can always see *why* the software says what it says."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from needlepoint.domain.catalogue import load_data

Verified = bool | Literal["partial"]


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    citation: str
    verified: Verified
    reference: str


class _Sources(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    sources: dict[str, Source]


@cache
def sources() -> dict[str, Source]:
    """Every citable source by id."""
    return _Sources.model_validate(load_data("sources.yaml")).sources


def check_cited(owner: str, ids: Iterable[str]) -> None:
    """Fail loudly at load time when a data file cites a source that does not exist."""
    unknown = sorted(set(ids) - set(sources()))
    if unknown:
        raise ValueError(f"{owner} cites unknown sources {unknown}")


def caveat(ids: Iterable[str]) -> str | None:
    """The caveat to show beside a rule none of whose sources was seen first-hand."""
    cited = [sources()[i] for i in ids]
    if cited and all(s.verified is not True for s in cited):
        return "Unverified source: check before relying on this rule."
    return None


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict, with its sources.

    `action` is how strongly it applies: `refuse` (never overridable), `refuse_override`
    (refused unless a written reason is given), `warn`, or for screenings the question's
    category (`absolute`, `site`, `precaution`)."""

    rule: str
    action: str
    message: str
    source_ids: tuple[str, ...]
    site: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The finding as stored and returned: rule, action, message and full citations."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "action": self.action,
            "message": self.message,
            "sources": [
                {"id": i, "citation": sources()[i].citation, "verified": sources()[i].verified}
                for i in self.source_ids
            ],
        }
        note = caveat(self.source_ids)
        if note:
            out["caveat"] = note
        if self.site is not None:
            out["site"] = self.site
        return out

    def as_error(self, field: str, advice: str = "") -> dict[str, Any]:
        """The finding as one entry of a refusal's `errors`: the field it names, and a
        message that ends with what to do and the sources behind it."""
        message = f"{self.message} ({self.citation()})" + (f" {advice}" if advice else "")
        return {**self.as_dict(), "field": field, "message": message}

    def citation(self) -> str:
        """The sources in one line, for an error message, each not verified against its
        text marked so (as the pages mark them)."""
        cited = (sources()[i] for i in self.source_ids)
        text = "; ".join(
            s.citation + ("" if s.verified is True else " (unverified)") for s in cited
        )
        return text or "clinic policy"
