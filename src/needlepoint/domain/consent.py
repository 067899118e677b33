"""Informed consent: versioned templates (`data/consent.yaml`) and whether a patient's
consent allows needling at a given moment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from pydantic import BaseModel, ConfigDict, model_validator

from needlepoint.domain.catalogue import load_data
from needlepoint.domain.commands import ConsentIn
from needlepoint.domain.credentials import Jurisdiction
from needlepoint.domain.entities import Consent, Patient
from needlepoint.domain.enums import ConsentMethod
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.screening import age_on, questionnaire
from needlepoint.domain.sources import Finding, check_cited

CONSENT_SOURCES = ("regulators_2020s",)
"""Regulators expect a signed, versioned consent per patient (REFERENCE §6)."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    heading: str
    text: str


class ConsentTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    version: str
    title: str
    current: bool
    sources: list[str]
    sections: list[Section]

    @property
    def text(self) -> str:
        """The whole form as plain text, as the patient reads and signs it."""
        parts = [self.title, ""]
        for section in self.sections:
            parts += [section.heading, section.text, ""]
        return "\n".join(parts).strip()


class _Templates(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    templates: list[ConsentTemplate]

    @model_validator(mode="after")
    def _consistent(self) -> _Templates:
        keys = [(t.id, t.version) for t in self.templates]
        if len(keys) != len(set(keys)):
            raise ValueError("consent.yaml: a template version appears twice")
        for t in self.templates:
            check_cited(f"consent.yaml:{t.id}", t.sources)
        for template_id in {t.id for t in self.templates}:
            if sum(t.current for t in self.templates if t.id == template_id) != 1:
                raise ValueError(f"consent.yaml: {template_id} needs exactly one current version")
        return self


METHOD_WORDS: dict[ConsentMethod, str] = {
    ConsentMethod.SIGNATURE: "signature on screen",
    ConsentMethod.TYPED_NAME: "typed name",
    ConsentMethod.WITNESS: "witnessed",
}
"""How a consent was signed, in words (every `ConsentMethod` has its words)."""


def template_title(template_id: str, version: str) -> str:
    """A consent form as its template names it ("Informed consent to dry needling,
    version 1.0"), never its id."""
    found = next((t for t in templates() if t.id == template_id and t.version == version), None)
    title = found.title if found else template_id.replace("_", " ").capitalize()
    return f"{title}, version {version}"


@cache
def templates() -> list[ConsentTemplate]:
    """Every consent template version, old ones included (signed forms refer to them)."""
    return _Templates.model_validate(load_data("consent.yaml")).templates


def get_template(template_id: str, version: str) -> ConsentTemplate:
    """The template version a consent refers to, or InvalidInput naming the field."""
    for t in templates():
        if t.id == template_id and t.version == version:
            return t
    if not any(t.id == template_id for t in templates()):
        raise InvalidInput(f"no consent template '{template_id}'", field="template_id")
    raise InvalidInput(
        f"consent template '{template_id}' has no version '{version}'", field="template_version"
    )


def current_consent(consents: Sequence[Consent], at: datetime) -> Consent | None:
    """The consent in force at `at`: the latest signed on or before that day and not
    withdrawn by then."""
    day = at.date()
    signed = [c for c in consents if c.signed_at.date() <= day]
    if not signed:
        return None
    latest = max(signed, key=lambda c: (c.signed_at, c.created_at))
    if latest.withdrawn_at is not None and latest.withdrawn_at <= at:
        return None
    return latest


def consent_problem(
    consents: Sequence[Consent], at: datetime, jurisdiction: Jurisdiction
) -> Finding | None:
    """Why the patient's consent does not allow needling at `at`, or None when it does."""
    consent = current_consent(consents, at)
    if consent is None:
        withdrawn = any(c.withdrawn_at is not None and c.withdrawn_at <= at for c in consents)
        if withdrawn:
            return Finding(
                "consent_withdrawn",
                "refuse",
                "The patient withdrew consent to dry needling; record a new consent first.",
                CONSENT_SOURCES,
            )
        return Finding(
            "consent_missing",
            "refuse",
            "No signed consent to dry needling is on record for this patient at this date.",
            CONSENT_SOURCES,
        )
    if jurisdiction.consent_copy_required and not consent.copy_given:
        return Finding(
            "consent_copy_required",
            "refuse",
            f"{jurisdiction.name} requires that the patient is given a copy of the consent.",
            tuple(jurisdiction.sources),
        )
    return None


GUARDIANS = ("parent", "legal_guardian")


def check_signer(patient: Patient, consent: ConsentIn) -> None:
    """A minor's consent is signed by a parent or legal guardian, named, with the
    relationship stated (InvalidInput naming `signer_relationship` otherwise). The age is
    the patient's on the day of signing, from the date of birth (McEvoy 2012: inability
    to consent by age; sources `mcevoy_2012`, `age_of_majority`)."""
    adult = questionnaire().adult_age_years
    age = age_on(patient.birth_date, consent.signed_at.date())
    if age >= adult or consent.signer_relationship in GUARDIANS:
        return
    raise InvalidInput(
        f"the patient is a minor ({age} years old on the day of signing; adults are "
        f"{adult} or older): a parent or legal guardian must sign. Give the signer's name "
        "and signer_relationship 'parent' or 'legal_guardian'.",
        field="signer_relationship",
    )
