"""answers given after discharge before this version: filed under their episode

Until this version a patient's answer sent after the episode's discharge was stored with
no episode, so the outcome analytics never saw it (issue 16). Answers are now filed
under the episode they were asked for, an answer after care marked so in its context
(`domain.questionnaires.is_after_care`, `after_care_context`). This migration does the
same for the answers already stored: each measurement a questionnaire assignment names
that has no episode gets the assignment's episode, and, where it was given after care,
the after-care context (days after discharge, in the clinic's dates). The clinics'
analytics versions move, so their analytics are computed again. Nothing else changes.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

from needlepoint.adapters.db.types import JSONType, UTCDateTime
from needlepoint.domain.clinic_time import local_date, zone
from needlepoint.domain.enums import TimePoint
from needlepoint.domain.questionnaires import after_care_context, is_after_care

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_measurements = sa.table(
    "measurements",
    sa.column("id", sa.Uuid()),
    sa.column("episode_id", sa.Uuid()),
    sa.column("taken_at", UTCDateTime(timezone=True)),
    sa.column("context", JSONType),
)
_assignments = sa.table(
    "questionnaire_assignments",
    sa.column("clinic_id", sa.Uuid()),
    sa.column("episode_id", sa.Uuid()),
    sa.column("time_point", sa.String()),
    sa.column("due_on", sa.Date()),
    sa.column("measurement_id", sa.Uuid()),
)
_episodes = sa.table("episodes", sa.column("id", sa.Uuid()), sa.column("closed_on", sa.Date()))
_clinics = sa.table("clinics", sa.column("id", sa.Uuid()), sa.column("time_zone", sa.String()))
_versions = sa.table(
    "analytics_versions", sa.column("clinic_id", sa.Uuid()), sa.column("version", sa.BigInteger())
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _measurements.c.id,
            _measurements.c.taken_at,
            _measurements.c.context,
            _assignments.c.clinic_id,
            _assignments.c.episode_id,
            _assignments.c.time_point,
            _assignments.c.due_on,
            _episodes.c.closed_on,
            _clinics.c.time_zone,
        )
        .join(_assignments, _assignments.c.measurement_id == _measurements.c.id)
        .join(_episodes, _episodes.c.id == _assignments.c.episode_id)
        .join(_clinics, _clinics.c.id == _assignments.c.clinic_id)
        .where(_measurements.c.episode_id.is_(None))
    ).all()
    clinics = set()
    for r in rows:
        context: dict[str, Any] = dict(r.context) if isinstance(r.context, Mapping) else {}
        if r.closed_on is not None:
            answered_on = local_date(r.taken_at, zone(r.time_zone or "UTC"))
            if is_after_care(TimePoint(r.time_point), r.closed_on, answered_on):
                context.update(after_care_context(r.closed_on, r.due_on, answered_on))
        conn.execute(
            sa.update(_measurements)
            .where(_measurements.c.id == r.id)
            .values(episode_id=r.episode_id, context=context or None)
        )
        clinics.add(r.clinic_id)
    for clinic in clinics:
        conn.execute(
            sa.update(_versions)
            .where(_versions.c.clinic_id == clinic)
            .values(version=_versions.c.version + 1)
        )


def downgrade() -> None:
    """Nothing to undo: the answers keep their episode (the older code reads it too)."""
