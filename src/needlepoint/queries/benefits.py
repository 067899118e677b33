"""Each patient's benefit summary per episode, read from the episode's records: only what
counts (signed notes and their records, measurements and log entries recorded on their
own; never an unsigned draft: see `queries.outcomes`)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import (
    co_interventions,
    measurements,
    medication_uses,
    needling_sites,
    sessions,
)
from needlepoint.domain.benefits import EpisodeBenefits, EpisodeRecords, summarise_episode
from needlepoint.domain.entities import (
    CoIntervention,
    Episode,
    Measurement,
    MedicationUse,
    NeedlingSite,
    PlanItem,
    Session,
)
from needlepoint.domain.permissions import Permission
from needlepoint.queries.outcomes import SIGNED_ONLY, counted_sessions, counts_toward_outcomes
from needlepoint.queries.reader import Reader


def episode_records(reader: Reader, episode_id: UUID) -> EpisodeRecords:
    """Everything one episode's benefit summary reads: its signed sessions and their
    sites and co-interventions; its measurements that count (none from an unsigned draft).
    Measurements and analgesic-log entries recorded for the patient without an episode
    count when they fall within the episode's dates (from opening to closing, or to now
    while it is open)."""
    reader.require(Permission.READ_CLINICAL)
    episode = reader.one(Episode, episode_id, field="episode_id")
    closed = episode.closed_on is not None
    stmt = _records_statements(closed)
    values: dict[str, Any] = {
        "episode_id": episode_id,
        "patient_id": episode.patient_id,
        "start": datetime.combine(episode.opened_on, time(), tzinfo=UTC),
        "opened_on": episode.opened_on,
    }
    if episode.closed_on is not None:
        values["end"] = datetime.combine(episode.closed_on + timedelta(days=1), time(), tzinfo=UTC)
        values["closed_on"] = episode.closed_on
    return EpisodeRecords(
        episode=episode,
        sessions=reader.select_statement(Session, stmt["sessions"], values),
        measurements=reader.select_statement(Measurement, stmt["measurements"], values),
        medication=reader.select_statement(MedicationUse, stmt["medication"], values),
        sites=reader.select_statement(NeedlingSite, stmt["sites"], values),
        co_interventions=reader.select_statement(CoIntervention, stmt["co_interventions"], values),
        plan=reader.select_by(PlanItem, episode_id=episode_id),
    )


@cache
def _records_statements(closed: bool) -> dict[str, sa.Select[Any]]:
    """The statements of `episode_records`, built once (for open and for closed episodes)
    with bound values: clinic_id, episode_id, patient_id, start, opened_on (and end,
    closed_on when the episode is closed)."""

    def clinic_of(table: sa.Table) -> sa.ColumnElement[bool]:
        return table.c.clinic_id == sa.bindparam("clinic_id")

    episode: sa.BindParameter[Any] = sa.bindparam("episode_id")
    patient: sa.BindParameter[Any] = sa.bindparam("patient_id")
    in_window = [measurements.c.taken_at >= sa.bindparam("start")]
    med_window = [medication_uses.c.recorded_on >= sa.bindparam("opened_on")]
    if closed:
        in_window.append(measurements.c.taken_at < sa.bindparam("end"))
        med_window.append(medication_uses.c.recorded_on <= sa.bindparam("closed_on"))
    signed_ids = counted_sessions(sessions.c.episode_id == episode, clinic_of(sessions))
    return {
        "sessions": sa.select(sessions)
        .where(clinic_of(sessions), sessions.c.episode_id == episode, SIGNED_ONLY)
        .order_by(sessions.c.started_at),
        "measurements": sa.select(measurements)
        .where(
            clinic_of(measurements),
            measurements.c.patient_id == patient,
            counts_toward_outcomes(
                measurements.c.session_id, clinic_of(sessions), sessions.c.patient_id == patient
            ),
            sa.or_(
                measurements.c.episode_id == episode,
                sa.and_(measurements.c.episode_id.is_(None), *in_window),
            ),
        )
        .order_by(measurements.c.taken_at, measurements.c.id),
        "medication": sa.select(medication_uses)
        .where(
            clinic_of(medication_uses),
            medication_uses.c.patient_id == patient,
            sa.or_(
                medication_uses.c.episode_id == episode,
                sa.and_(medication_uses.c.episode_id.is_(None), *med_window),
            ),
        )
        .order_by(medication_uses.c.recorded_on, medication_uses.c.created_at),
        "sites": sa.select(needling_sites).where(
            clinic_of(needling_sites), needling_sites.c.session_id.in_(signed_ids)
        ),
        "co_interventions": sa.select(co_interventions).where(
            clinic_of(co_interventions), co_interventions.c.session_id.in_(signed_ids)
        ),
    }


def episode_benefits(reader: Reader, episode_id: UUID) -> EpisodeBenefits:
    """The eight benefits for one episode: measures, responder status, time to first
    meaningful improvement and the evidence note; "not measured" where nothing informs one."""
    return summarise_episode(episode_records(reader, episode_id))
