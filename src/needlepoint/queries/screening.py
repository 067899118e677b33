"""A patient's screenings and consents, newest first, and whether needling may proceed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from needlepoint.adapters.db.tables import users
from needlepoint.domain.clinic_time import local_date, zone
from needlepoint.domain.commands import ScreeningAnswers
from needlepoint.domain.consent import current_consent
from needlepoint.domain.entities import Consent, Screening, User
from needlepoint.domain.enums import ScreeningDecision
from needlepoint.domain.screening import current_screening, expires_on, latest_screening
from needlepoint.domain.site_safety import screening_statement
from needlepoint.queries.reader import Reader


def patient_screenings(reader: Reader, patient_id: UUID) -> list[Screening]:
    """Every screening of the patient, newest first."""
    reader.patient_record(patient_id)
    found: list[Screening] = reader.once(
        ("screenings", patient_id),
        lambda: reader.select_by(
            Screening, patient_id=patient_id, order_by=("-screened_at", "-created_at")
        ),
    )
    return list(found)


def patient_consents(reader: Reader, patient_id: UUID) -> list[Consent]:
    """Every consent the patient signed, newest first (withdrawn ones included)."""
    reader.patient_record(patient_id)
    found: list[Consent] = reader.once(
        ("consents", patient_id),
        lambda: reader.select_by(
            Consent, patient_id=patient_id, order_by=("-signed_at", "-created_at")
        ),
    )
    return list(found)


@dataclass(frozen=True, slots=True)
class NeedlingStatus:
    """Whether the patient may be needled now, and what the clinician must keep in mind."""

    may_needle: bool
    screening: Screening | None
    screening_expires_on: date | None
    consent: Consent | None
    blockers: list[str]
    precautions: list[dict[str, object]]
    contraindications: list[dict[str, object]]


def needling_status(reader: Reader, patient_id: UUID, at: datetime) -> NeedlingStatus:
    """The screening and consent in force at `at` and what stops needling, if anything."""
    clinic = reader.clinic()
    screenings = patient_screenings(reader, patient_id)
    screening = current_screening(screenings, at, clinic.screening_valid_days)
    consent = current_consent(patient_consents(reader, patient_id), at)
    blockers = []
    lapsed = None if screening is not None else latest_screening(screenings, at)
    if lapsed is not None and lapsed.decision is ScreeningDecision.CONTRAINDICATED:
        # An expired screening no longer applies, but the contraindication it found is
        # not forgotten: it is named until a new screening says otherwise.
        on = local_date(lapsed.screened_at, zone(clinic.time_zone)).isoformat()
        blockers.append(
            f"no current screening; the last one, on {on}, found dry needling "
            f"contraindicated ({_in_one_line(_worded(lapsed))}): screen again before needling"
        )
    elif screening is None:
        blockers.append("no current screening")
    elif screening.decision is ScreeningDecision.CONTRAINDICATED:
        blockers.append("contraindicated")
    if consent is None:
        blockers.append("no consent in force")
    return NeedlingStatus(
        may_needle=not blockers,
        screening=screening,
        screening_expires_on=expires_on(screening, clinic.screening_valid_days)
        if screening
        else None,
        consent=consent,
        blockers=blockers,
        precautions=[r for r in _worded(screening) if r["action"] != "absolute"],
        contraindications=[r for r in _worded(screening) if r["action"] == "absolute"],
    )


def _worded(screening: Screening | None) -> list[dict[str, object]]:
    """The screening's reasons, each message restated in clinical words from its rule and
    answers (naming the limb or area), whatever wording was stored when it was made."""
    if screening is None:
        return []
    screen = ScreeningAnswers.model_validate(
        {k: v for k, v in screening.answers.items() if k in ScreeningAnswers.model_fields}
    )
    return [
        {**r, "message": screening_statement(r["rule"], screen, r["message"])}
        for r in screening.reasons
    ]


def _in_one_line(reasons: list[dict[str, object]]) -> str:
    """Worded reasons (`_worded`) as one clause: their messages joined by semicolons."""
    return "; ".join(str(r["message"]).rstrip(".") for r in reasons)


DECISION_WORDS = {
    ScreeningDecision.CONTRAINDICATED: "contraindicated: dry needling must not be done",
    ScreeningDecision.PRECAUTIONS: "precautions found: needle with caution",
    ScreeningDecision.CLEAR: "no contraindication or precaution found",
}
"""A screening's decision in clinical words (never the stored value)."""


def needling_headline(status: NeedlingStatus) -> str:
    """Whether dry needling may be done, in words: "must not be done (contraindicated:
    <reason>)", "may proceed" (with precautions, when any), or "not yet: <what is
    missing>"."""
    if status.screening and status.screening.decision is ScreeningDecision.CONTRAINDICATED:
        reasons = _in_one_line(status.contraindications)
        return f"must not be done (contraindicated{': ' + reasons if reasons else ''})"
    if status.may_needle:
        return "may proceed, with precautions" if status.precautions else "may proceed"
    return "not yet: " + "; ".join(status.blockers)


CLEARANCE_WORDS = {
    "resolved": "the condition resolved",
    "recorded_in_error": "recorded in error",
    "new_medical_information": "new medical information",
    "patient_reconsidered": "the patient reconsidered",
}
"""A clearance's structured reason in clinical words."""


@dataclass(frozen=True, slots=True)
class ScreeningHistoryEntry:
    """One screening as the chart lists it: when, by whom, the decision, the findings,
    and the earlier findings it cleared with what changed and why."""

    screened_at: datetime
    screened_by: str
    decision: ScreeningDecision
    findings: list[str]
    cleared: list[str]
    """The earlier findings this screening cleared, named in a few words."""
    what_changed: str | None
    why: str | None


def screening_history(reader: Reader, patient_id: UUID) -> list[ScreeningHistoryEntry]:
    """The patient's screenings, newest first, in clinical words."""
    found = patient_screenings(reader, patient_id)
    ids = {s.screened_by for s in found}
    names = {u.id: u.full_name for u in (reader.select(User, users.c.id.in_(ids)) if ids else [])}
    entries = []
    for s in found:
        cleared = s.clearances or []
        reason = str(cleared[0]["reason"]) if cleared else None
        entries.append(
            ScreeningHistoryEntry(
                screened_at=s.screened_at,
                screened_by=names.get(s.screened_by, "a former user"),
                decision=s.decision,
                findings=[r["message"] for r in s.reasons],
                cleared=[str(c["message"]) for c in cleared],
                what_changed=CLEARANCE_WORDS.get(reason, reason) if reason else None,
                why=str(cleared[0]["explanation"]) if cleared else None,
            )
        )
    return entries
