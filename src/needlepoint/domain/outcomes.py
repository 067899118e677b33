"""Turning a submitted questionnaire or measurement into a stored, scored record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from needlepoint.domain import instruments
from needlepoint.domain.errors import InvalidInput


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
        clean = instruments.validate_answers(instrument, answers)
        for key in instrument.requires_context:
            if not context or key not in context:
                raise InvalidInput(f"{instrument.id} needs context.{key}", field=f"context.{key}")
    except InvalidInput as err:
        raise InvalidInput(err.detail, field=f"{field_prefix}{err.field}") from None
    return Scored(instrument.version, clean, instruments.score(instrument, clean))
