"""Questionnaires from home on the read side: the clinic's outbox (each message's
state), an episode's questionnaires and their links, and which of a patient's
measurements the patient reported themselves (through a link)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import TABLE_OF, outbox_messages, questionnaire_responses
from needlepoint.domain.entities import (
    Measurement,
    OutboxMessage,
    QuestionnaireAssignment,
    QuestionnaireLink,
    QuestionnairePlan,
)
from needlepoint.domain.enums import TimePoint
from needlepoint.domain.permissions import Permission
from needlepoint.domain.questionnaires import Schedule, default_schedule
from needlepoint.queries.reader import Reader

OUTBOX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Outbox:
    """The clinic's newest messages (at most `OUTBOX_PAGE_SIZE`), newest first, and
    how many there are in each state."""

    messages: list[OutboxMessage]
    counts: dict[str, int]


def outbox(reader: Reader) -> Outbox:
    """The clinic's outbox: to whom, what kind, its state, attempts and last error. Staff
    who read demographics see it (recipients are e-mail addresses; bodies carry no
    health information)."""
    reader.require(Permission.READ_DEMOGRAPHICS)
    o = outbox_messages
    stmt = (
        sa.select(o)
        .where(o.c.clinic_id == reader.clinic_id)
        .order_by(o.c.created_at.desc(), o.c.id)
        .limit(OUTBOX_PAGE_SIZE)
    )
    messages = [OutboxMessage(**row._mapping) for row in reader.conn.execute(stmt)]
    counts = {
        str(state): n
        for state, n in reader.conn.execute(
            sa.select(o.c.state, sa.func.count())
            .where(o.c.clinic_id == reader.clinic_id)
            .group_by(o.c.state)
        )
    }
    return Outbox(messages, counts)


def patient_reported_ids(reader: Reader, patient_id: UUID) -> set[UUID]:
    """The patient's measurements that the patient reported (submitted through a link)."""
    r = questionnaire_responses
    rows = reader.conn.execute(
        sa.select(r.c.measurement_id).where(
            r.c.clinic_id == reader.clinic_id,
            r.c.patient_id == patient_id,
            r.c.measurement_id.is_not(None),
        )
    )
    return {row.measurement_id for row in rows}


@dataclass(frozen=True, slots=True)
class PatientQuestionnaireState:
    """A patient's questionnaires (newest due first) and their newest link."""

    assignments: list[QuestionnaireAssignment]
    link: QuestionnaireLink | None

    @property
    def waiting(self) -> list[QuestionnaireAssignment]:
        return [a for a in self.assignments if a.completed_at is None and a.cancelled_at is None]


def patient_questionnaires(reader: Reader, patient_id: UUID) -> PatientQuestionnaireState:
    """The questionnaires a patient was asked to answer, and the newest link sent."""
    reader.patient_record(patient_id)
    assignments = reader.select_by(
        QuestionnaireAssignment, patient_id=patient_id, order_by=("-due_on", "-created_at")
    )
    links = reader.select_by(QuestionnaireLink, patient_id=patient_id, order_by=("-created_at",))
    return PatientQuestionnaireState(assignments, links[0] if links else None)


def schedule_for(reader: Reader, condition: str) -> Schedule:
    """The clinic's schedule for a condition: its plan, else the product's default."""
    plans = reader.select_by(QuestionnairePlan, condition=condition)
    if not plans:
        return default_schedule(condition)
    plan = plans[0]
    return Schedule(
        {iid: frozenset(TimePoint(p) for p in points) for iid, points in plan.instruments.items()},
        plan.every_n_days,
        tuple(plan.follow_up_days),
    )


def reported_scores(reader: Reader, measurement_ids: list[UUID]) -> dict[UUID, Measurement]:
    """The measurements the patient submitted, by id (read on the patient's record)."""
    if not measurement_ids:
        return {}
    found = reader.select(Measurement, TABLE_OF[Measurement].c.id.in_(measurement_ids))
    return {m.id: m for m in found}


def clinic_plans(reader: Reader) -> set[str]:
    """The conditions the clinic chose a plan for."""
    return {p.condition for p in reader.select_by(QuestionnairePlan)}
