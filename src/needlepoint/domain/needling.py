"""May these sites be needled, now, for this patient, by this practitioner?

Composes the checks a needling note must pass before it is recorded (REFERENCE §1, §6):
a current screening that is not contraindicated, a consent in force, a practitioner who
meets the clinic's credential rules (warned or blocked per clinic setting), and the
site-level rules. Pure: the action loads the records and calls `check_needling`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from needlepoint.domain.catalogue import muscles
from needlepoint.domain.commands import NeedlingSiteIn, ScreeningAnswers
from needlepoint.domain.consent import consent_problem
from needlepoint.domain.credentials import check_credentials, jurisdiction, untrained_regions
from needlepoint.domain.entities import Clinic, Consent, Screening, TrainingRecord, User
from needlepoint.domain.enums import CredentialPolicy, ScreeningDecision
from needlepoint.domain.errors import SafetyRefusal
from needlepoint.domain.screening import current_screening, questionnaire
from needlepoint.domain.site_safety import enforce, screening_statement
from needlepoint.domain.sources import Finding


def check_needling(
    *,
    sites: Sequence[NeedlingSiteIn],
    started_at: datetime,
    clinic: Clinic,
    clinician: User,
    training: Sequence[TrainingRecord],
    screenings: Sequence[Screening],
    consents: Sequence[Consent],
) -> list[dict[str, Any]]:
    """The safety flags to store with the note; raises SafetyRefusal (every error naming
    its rule and sources) when the note may not be recorded as it is."""
    if not sites:
        return []
    refusals: list[tuple[str, Finding]] = []
    flags: list[dict[str, Any]] = []
    screening = current_screening(screenings, started_at, clinic.screening_valid_days)
    if screening is None:
        refusals.append(("sites", _no_screening(screenings, started_at, clinic)))
    elif screening.decision is ScreeningDecision.CONTRAINDICATED:
        screen = ScreeningAnswers.model_validate(screening.answers)
        for reason in screening.reasons:
            if reason["action"] == "absolute":
                statement = screening_statement(reason["rule"], screen, reason["message"])
                refusals.append(
                    (
                        "sites",
                        Finding(
                            reason["rule"],
                            "refuse",
                            f"Contraindicated: {statement} An absolute contraindication "
                            "cannot be overridden.",
                            tuple(s["id"] for s in reason["sources"]),
                        ),
                    )
                )
    problem = consent_problem(consents, started_at, jurisdiction(clinic.jurisdiction))
    if problem is not None:
        refusals.append(("sites", problem))
    check = check_credentials(clinician, training, clinic, started_at.date())
    for finding in check.problems:
        if clinic.credential_policy is CredentialPolicy.BLOCK:
            refusals.append(("clinician_id", finding))
        else:
            flags.append({"rule": finding.rule, "action": "warn", "site": None})
    catalogue = muscles()
    regions = [m.region for s in sites if (m := catalogue.get(s.muscle_id)) is not None]
    for region in untrained_regions(check, regions):
        flags.append({"rule": "untrained_region", "action": "warn", "site": None, "region": region})
    if refusals:
        raise SafetyRefusal(
            "dry needling cannot be recorded for this note: "
            + "; ".join(f.message for _, f in refusals),
            errors=[f.as_error(field) for field, f in refusals],
        )
    assert screening is not None
    answers = ScreeningAnswers.model_validate(screening.answers)
    return flags + enforce(sites, answers)


def _no_screening(screenings: Sequence[Screening], at: datetime, clinic: Clinic) -> Finding:
    if any(s.screened_at.date() <= at.date() for s in screenings):
        message = (
            f"The patient's latest screening is more than {clinic.screening_valid_days} days "
            "old; screen the patient again before needling."
        )
        rule = "screening_expired"
    else:
        message = "The patient has not been screened for dry needling; screen before needling."
        rule = "screening_missing"
    return Finding(rule, "refuse", message, tuple(questionnaire().questions[0].sources))
