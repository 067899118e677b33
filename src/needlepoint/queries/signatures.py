"""Who answers for a signed note: the clinician of record, the signer, each amendment's
author, with their credential, licence and dry needling training; and the adverse events
recorded after the session with their follow-ups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from needlepoint.adapters.db.tables import adverse_event_follow_ups, training_records, users
from needlepoint.domain.entities import AdverseEventFollowUp, TrainingRecord, User
from needlepoint.domain.enums import Role
from needlepoint.queries.reader import Reader

CREDENTIAL = {
    Role.OWNER: "Licensed clinician (clinic owner)",
    Role.CLINICIAN: "Licensed clinician",
    Role.STUDENT: "Student, under supervision",
    Role.ASSISTANT: "Assistant",
    Role.AUDITOR: "Auditor",
    Role.PATIENT: "Patient",
}


@dataclass(frozen=True, slots=True)
class Signatory:
    """A person named on a note, as the note shows them."""

    user_id: UUID
    full_name: str
    credential: str
    licence_number: str | None
    licence_date: date | None
    training: str | None  # the latest dry needling course, in words

    @property
    def licence(self) -> str:
        if not self.licence_number:
            return "no licence number recorded"
        since = f", since {self.licence_date.isoformat()}" if self.licence_date else ""
        return f"licence {self.licence_number}{since}"


def _training_words(record: TrainingRecord) -> str:
    hours = record.hours_in_person + record.hours_online
    return (
        f"{record.course} ({record.provider}), {hours:g} h, completed "
        f"{record.completed_on.isoformat()}{', exam passed' if record.exam_passed else ''}"
    )


def signatories(reader: Reader, user_ids: Iterable[UUID]) -> dict[UUID, Signatory]:
    """The named people by id (users of the reader's clinic; unknown ids are left out)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    people = reader.select(User, users.c.id.in_(ids))
    courses = reader.select(
        TrainingRecord,
        training_records.c.user_id.in_(ids),
        order_by=training_records.c.completed_on,
    )
    latest: dict[UUID, TrainingRecord] = {}
    for c in courses:
        latest[c.user_id] = c  # ordered by completion: the last one wins
    return {
        u.id: Signatory(
            user_id=u.id,
            full_name=u.full_name,
            credential=CREDENTIAL.get(u.role, u.role.value),
            licence_number=u.licence_number,
            licence_date=u.licence_date,
            training=_training_words(latest[u.id]) if u.id in latest else None,
        )
        for u in people
    }


def follow_ups(reader: Reader, event_ids: Iterable[UUID]) -> dict[UUID, list[AdverseEventFollowUp]]:
    """Each adverse event's follow-up entries, in the order they happened. The caller has
    opened the note (its patient's record) with the reader first."""
    ids = sorted(set(event_ids))
    out: dict[UUID, list[AdverseEventFollowUp]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = reader.select(
        AdverseEventFollowUp,
        adverse_event_follow_ups.c.adverse_event_id.in_(ids),
        order_by=(adverse_event_follow_ups.c.occurred_at, adverse_event_follow_ups.c.created_at),
    )
    for f in rows:
        out[f.adverse_event_id].append(f)
    return out
