"""Turning a submitted questionnaire or measurement into a stored, scored record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from needlepoint.domain import instruments
from needlepoint.domain.errors import InvalidInput

RESERVED_CONTEXT = ("after_discharge_days", "follow_up_day")
"""Context keys no clinician's or importer's measurement may carry: they mark a patient's
answer given after care (`domain.questionnaires.AFTER_DISCHARGE_DAYS`, `FOLLOW_UP_DAY`)."""


@dataclass(frozen=True, slots=True)
class Scored:
    instrument_version: str
    answers: dict[str, instruments.Answer]
    score: float | None


def score_submission(
    instrument_id: str,
    answers: Mapping[str, instruments.Answer],
    context: Mapping[str, Any] | None,
    *,
    field_prefix: str = "",
) -> Scored:
    """Validate answers (errors name the item) and compute the score from them."""
    try:
        instrument = instruments.get(instrument_id)
        if instrument.recorded_as != "measurement":
            where = {
                "medication_use": "the analgesic log (POST /api/v1/medications)",
                "needling_sites": "each needling site's trigger_point in the session note",
            }[instrument.recorded_as]
            raise InvalidInput(
                f"{instrument.id} is recorded in {where}, not as a measurement",
                field="instrument_id",
            )
        clean = instruments.validate_answers(instrument, answers)
        instruments.validate_context(instrument, context)
        for key in RESERVED_CONTEXT:
            if context and key in context:
                # Only a patient's follow-up answer is marked after care (its action sets
                # it): a typed value must not hide itself from the outcome up to discharge.
                raise InvalidInput(
                    f"context.{key} is set only by a patient's answer after discharge",
                    field=f"context.{key}",
                )
    except InvalidInput as err:
        raise InvalidInput(err.detail, field=f"{field_prefix}{err.field}") from None
    return Scored(instrument.version, clean, instruments.score(instrument, clean))


def rescore(instrument_id: str, answers: Mapping[str, instruments.Answer]) -> float | None:
    """Recompute a stored measurement's score from its stored answers."""
    instrument = instruments.get(instrument_id)
    return instruments.score(instrument, instruments.validate_answers(instrument, answers))
