"""A patient's chart as one chronological timeline: episodes, sessions, measurements,
adverse events, consents, screenings, medication and amendments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import (
    amendments,
    measurements,
    needling_sites,
    questionnaire_responses,
    sessions,
)
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.consent import METHOD_WORDS, template_title
from needlepoint.domain.entities import (
    AdverseEvent,
    Measurement,
    MedicationUse,
    Screening,
    Session,
)
from needlepoint.domain.enums import SessionStatus
from needlepoint.domain.home_reports import DRUG_CLASS_LABELS
from needlepoint.domain.instruments import library
from needlepoint.queries.episodes import patient_episodes
from needlepoint.queries.reader import Reader
from needlepoint.queries.screening import DECISION_WORDS, patient_consents, patient_screenings


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str
    record_id: UUID
    title: str
    detail: str
    episode_id: UUID | None = None


# Built once, run with bound values (a chart is the most opened page).
_SITE_COUNTS = (
    sa.select(needling_sites.c.session_id, sa.func.count())
    .join(sessions, sessions.c.id == needling_sites.c.session_id)
    .where(
        sessions.c.patient_id == sa.bindparam("patient_id"),
        sessions.c.clinic_id == sa.bindparam("clinic_id"),
    )
    .group_by(needling_sites.c.session_id)
)
_AMENDMENTS = (
    sa.select(amendments)
    .join(sessions, sessions.c.id == amendments.c.session_id)
    .where(
        sessions.c.patient_id == sa.bindparam("patient_id"),
        amendments.c.clinic_id == sa.bindparam("clinic_id"),
    )
)

# A measurement the patient submitted through a questionnaire link names its response:
# read in the same query, so marking it patient-reported costs the chart nothing.
_MEASUREMENTS = (
    sa.select(measurements, questionnaire_responses.c.id.label("reported_by_patient"))
    .outerjoin(
        questionnaire_responses,
        sa.and_(
            questionnaire_responses.c.measurement_id == measurements.c.id,
            questionnaire_responses.c.clinic_id == measurements.c.clinic_id,
        ),
    )
    .where(
        measurements.c.patient_id == sa.bindparam("patient_id"),
        measurements.c.clinic_id == sa.bindparam("clinic_id"),
    )
)
PATIENT_REPORTED = "patient-reported"


def _day(d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=UTC)


def patient_timeline(reader: Reader, patient_id: UUID) -> list[TimelineEntry]:
    """Everything recorded for a patient, newest first."""
    reader.patient_record(patient_id)
    entries: list[TimelineEntry] = []

    for ep in patient_episodes(reader, patient_id):
        cond = conditions().get(ep.condition)
        label = cond.label if cond else ep.condition
        entries.append(
            TimelineEntry(
                _day(ep.opened_on),
                "episode_opened",
                ep.id,
                f"Episode opened: {label}",
                f"{ep.icd10_code} · {ep.body_region.replace('_', ' ')} · onset {ep.onset_date}",
                ep.id,
            )
        )
        if ep.closed_on is not None:
            entries.append(
                TimelineEntry(
                    _day(ep.closed_on),
                    "episode_closed",
                    ep.id,
                    f"Episode closed: {label}",
                    ep.discharge_reason or "",
                    ep.id,
                )
            )

    site_counts: dict[UUID, int] = {
        row[0]: row[1]
        for row in reader.conn.execute(
            _SITE_COUNTS, {"patient_id": patient_id, "clinic_id": reader.clinic_id}
        )
    }
    drafts: set[UUID] = set()
    for s in reader.select_by(Session, patient_id=patient_id):
        if s.status is SessionStatus.DRAFT:
            drafts.add(s.id)
        n = site_counts.get(s.id, 0)
        entries.append(
            TimelineEntry(
                s.started_at,
                "session",
                s.id,
                f"Session ({s.status.value})",
                f"{n} needling site{'s' if n != 1 else ''}",
                s.episode_id,
            )
        )

    instruments = library()
    rows = reader.conn.execute(
        _MEASUREMENTS, {"patient_id": patient_id, "clinic_id": reader.clinic_id}
    ).mappings()
    for row in rows:
        reported = row["reported_by_patient"] is not None
        m = Measurement(**{k: v for k, v in row.items() if k != "reported_by_patient"})
        known = instruments.get(m.instrument_id)
        name = known.name if known else m.instrument_id
        score = known.format(m.score) if known else str(m.score)
        where = ""
        if m.context and "joint" in m.context:
            joint = str(m.context["joint"]).replace("_", " ")
            where = f": {joint} {m.context.get('movement', '')} {m.context.get('side', '')}"
        # Only signed notes count towards outcomes (queries.outcomes): say so on the chart.
        pending = (
            " (in a draft note: not counted until it is signed)" if m.session_id in drafts else ""
        )
        entries.append(
            TimelineEntry(
                m.taken_at,
                "measurement",
                m.id,
                f"{name}{where}",
                f"score {score}{pending}" + (f" · {PATIENT_REPORTED}" if reported else ""),
                m.episode_id,
            )
        )

    for ae in reader.select_by(AdverseEvent, patient_id=patient_id):
        entries.append(
            TimelineEntry(
                ae.onset_at,
                "adverse_event",
                ae.id,
                f"Adverse event: {ae.kind.value.replace('_', ' ')} ({ae.severity.value})",
                ae.description,
            )
        )
    for c in patient_consents(reader, patient_id):
        state = "withdrawn" if c.withdrawn_at else "signed"
        entries.append(
            TimelineEntry(
                c.signed_at,
                "consent",
                c.id,
                f"Consent {state}",
                f"{template_title(c.template_id, c.template_version)} by {c.signer_name} "
                f"({METHOD_WORDS[c.method]})",
            )
        )
    for sc in patient_screenings(reader, patient_id):
        entries.append(
            TimelineEntry(
                sc.screened_at,
                "screening",
                sc.id,
                f"Screening: {DECISION_WORDS[sc.decision]}",
                _screening_detail(sc),
            )
        )
    for mu in reader.select_by(MedicationUse, patient_id=patient_id):
        dose = f" {mu.dose_mg:g} mg" if mu.dose_mg else ""
        entries.append(
            TimelineEntry(
                _day(mu.recorded_on),
                "medication",
                mu.id,
                f"Analgesic: {mu.drug}{dose}",
                f"{mu.days_per_week} day{'' if mu.days_per_week == 1 else 's'} per week "
                f"({DRUG_CLASS_LABELS[mu.drug_class]})"
                + (f" · {PATIENT_REPORTED}" if mu.response_id is not None else ""),
                mu.episode_id,
            )
        )
    amended = reader.conn.execute(
        _AMENDMENTS, {"patient_id": patient_id, "clinic_id": reader.clinic_id}
    )
    for a in amended:
        entries.append(
            TimelineEntry(a.created_at, "amendment", a.id, "Amendment to a signed note", a.reason)
        )

    entries.sort(key=lambda e: (e.at, e.kind), reverse=True)
    return entries


def _screening_detail(sc: Screening) -> str:
    """A screening's findings in a line, and what it cleared."""
    n = len(sc.reasons)
    found = "no findings" if n == 0 else f"{n} finding{'s' if n > 1 else ''}"
    cleared = len(sc.clearances or [])
    if cleared:
        found += f"; cleared {cleared} earlier finding{'s' if cleared > 1 else ''}"
    return found
