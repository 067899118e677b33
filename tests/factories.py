"""Valid commands for tests, with overridable fields."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from needlepoint.domain.commands import (
    MeasurementIn,
    NeedlingSiteIn,
    OpenEpisode,
    RecordConsent,
    RecordScreening,
    RecordSession,
    RegisterPatient,
)
from needlepoint.domain.screening import questionnaire

_counter = iter(range(1, 10_000_000))


def patient_cmd(**overrides: Any) -> RegisterPatient:
    data: dict[str, Any] = {
        "mrn": f"T-{next(_counter):07d}",
        "given_name": "Ada",
        "family_name": "Testperson",
        "birth_date": date(1980, 5, 17),
        "sex": "female",
    }
    return RegisterPatient(**{**data, **overrides})


def episode_cmd(patient_id: UUID, **overrides: Any) -> OpenEpisode:
    data: dict[str, Any] = {
        "patient_id": patient_id,
        "condition": "neck_pain",
        "onset_date": date(2026, 1, 2),
        "opened_on": date(2026, 2, 1),
        "goals": "Turn head to drive without pain",
        "plan": [{"modality": "exercise", "description": "Deep neck flexor training"}],
    }
    return OpenEpisode(**{**data, **overrides})


def site(muscle_id: str = "upper_trapezius", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "muscle_id": muscle_id,
        "side": "left",
        "trigger_point": "active",
        "technique": "pistoning",
        "needle_gauge_mm": 0.25,
        "needle_length_mm": 30,
        "depth_mm": 15,
        "insertions": 4,
        "local_twitch_responses": 2,
        "tolerance": "good",
    }
    return {**data, **overrides}


STARTED = datetime(2026, 2, 3, 9, 30, tzinfo=UTC)


def session_body(episode_id: UUID, **overrides: Any) -> dict[str, Any]:
    """A complete session note: four sites, a co-intervention, NPRS and ROM."""
    data: dict[str, Any] = {
        "episode_id": str(episode_id),
        "started_at": STARTED.isoformat(),
        "subjective": "Neck pain 6/10, worse at the desk.",
        "objective": "Active trigger points in the left upper trapezius and levator scapulae.",
        "assessment": "Myofascial neck pain.",
        "plan": "Needle weekly; exercise daily.",
        "sites": [
            site("upper_trapezius"),
            site("levator_scapulae"),
            site("splenius_capitis", side="right"),
            site("cervical_multifidus", depth_mm=20),
        ],
        "co_interventions": [{"modality": "exercise", "description": "Chin tucks", "minutes": 10}],
        "measurements": [
            {"instrument_id": "nprs", "answers": {"item1": 6}},
            {
                "instrument_id": "rom",
                "answers": {"item1": 62},
                "context": {"joint": "cervical_spine", "movement": "rotation", "side": "left"},
            },
        ],
    }
    return {**data, **overrides}


SCREENED = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


def screening_body(**yes: bool) -> dict[str, Any]:
    """A completed questionnaire: every answer no, except those given."""
    answers = {q.id: False for q in questionnaire().questions}
    answers.update(yes)
    return {"answers": answers}


def screening_cmd(patient_id: UUID, **overrides: Any) -> RecordScreening:
    data: dict[str, Any] = {
        "patient_id": patient_id,
        **screening_body(),
        "screened_at": SCREENED,
    }
    return RecordScreening(**{**data, **overrides})


def consent_body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "template_id": "dry_needling",
        "template_version": "1.0",
        "signer_name": "Ada Testperson",
        "method": "typed_name",
        "signed_at": SCREENED.isoformat(),
        "copy_given": True,
    }
    return {**data, **overrides}


def consent_cmd(patient_id: UUID, **overrides: Any) -> RecordConsent:
    return RecordConsent(patient_id=patient_id, **consent_body(**overrides))


def session_cmd(episode_id: UUID, **overrides: Any) -> RecordSession:
    return RecordSession.model_validate(session_body(episode_id, **overrides))


__all__ = [
    "MeasurementIn",
    "NeedlingSiteIn",
    "consent_cmd",
    "episode_cmd",
    "patient_cmd",
    "screening_cmd",
    "session_cmd",
]
