"""Each patient's benefit summary per episode, read from the episode's records: only what
counts (signed notes and their records, measurements and log entries recorded on their
own; never an unsigned draft: see `queries.outcomes`)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
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
    start = datetime.combine(episode.opened_on, time(), tzinfo=UTC)
    in_window = [measurements.c.taken_at >= start]
    med_window = [medication_uses.c.recorded_on >= episode.opened_on]
    if episode.closed_on is not None:
        end = datetime.combine(episode.closed_on + timedelta(days=1), time(), tzinfo=UTC)
        in_window.append(measurements.c.taken_at < end)
        med_window.append(medication_uses.c.recorded_on <= episode.closed_on)
    clinic = sessions.c.clinic_id == reader.clinic_id
    session_ids = counted_sessions(sessions.c.episode_id == episode_id, clinic)
    return EpisodeRecords(
        episode=episode,
        sessions=reader.select(
            Session,
            sessions.c.episode_id == episode_id,
            SIGNED_ONLY,
            order_by=sessions.c.started_at,
        ),
        measurements=reader.select(
            Measurement,
            measurements.c.patient_id == episode.patient_id,
            counts_toward_outcomes(
                measurements.c.session_id, clinic, sessions.c.patient_id == episode.patient_id
            ),
            sa.or_(
                measurements.c.episode_id == episode_id,
                sa.and_(measurements.c.episode_id.is_(None), *in_window),
            ),
            order_by=(measurements.c.taken_at, measurements.c.id),
        ),
        medication=reader.select(
            MedicationUse,
            medication_uses.c.patient_id == episode.patient_id,
            sa.or_(
                medication_uses.c.episode_id == episode_id,
                sa.and_(medication_uses.c.episode_id.is_(None), *med_window),
            ),
            order_by=(medication_uses.c.recorded_on, medication_uses.c.created_at),
        ),
        sites=reader.select(NeedlingSite, needling_sites.c.session_id.in_(session_ids)),
        co_interventions=reader.select(
            CoIntervention, co_interventions.c.session_id.in_(session_ids)
        ),
        plan=reader.select_by(PlanItem, episode_id=episode_id),
    )


def episode_benefits(reader: Reader, episode_id: UUID) -> EpisodeBenefits:
    """The eight benefits for one episode: measures, responder status, time to first
    meaningful improvement and the evidence note; "not measured" where nothing informs one."""
    return summarise_episode(episode_records(reader, episode_id))
