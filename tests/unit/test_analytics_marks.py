"""Which staged changes move a clinic's analytics version: those that change a record the
analytics read (`adapters.db.analytics_marks.ANALYSED`), and no others."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from needlepoint.adapters.db.analytics_marks import ANALYSED, changed_clinics
from needlepoint.domain.entities import AuditEvent, Patient, Session, User, WebSession
from needlepoint.domain.enums import AuditAction, AuditOutcome, Role, SessionStatus, Sex

CLINIC = uuid.uuid4()
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def a_session(**changes: object) -> Session:
    fields = {f: None for f in Session.__dataclass_fields__}
    fields.update(
        id=uuid.uuid4(),
        clinic_id=CLINIC,
        patient_id=uuid.uuid4(),
        episode_id=uuid.uuid4(),
        clinician_id=uuid.uuid4(),
        started_at=NOW,
        status=SessionStatus.DRAFT,
        subjective="tight neck",
        version=1,
        **changes,
    )
    return Session(**fields)  # type: ignore[arg-type]


def a_user() -> User:
    fields = {f: None for f in User.__dataclass_fields__}
    fields.update(id=uuid.uuid4(), clinic_id=CLINIC, full_name="Pat Therapist", role=Role.CLINICIAN)
    return User(**fields)  # type: ignore[arg-type]


def test_signing_a_note_moves_its_clinics_version() -> None:
    draft = a_session()
    signed = replace(draft, status=SessionStatus.SIGNED, signed_at=NOW, version=2)
    assert changed_clinics([], [], [(draft, signed)]) == {CLINIC}


def test_editing_a_drafts_text_does_not() -> None:
    draft = a_session()
    edited = replace(draft, subjective="tight neck, worse at night", version=2)
    assert changed_clinics([], [], [(draft, edited)]) == set()


def test_a_new_note_moves_it() -> None:
    assert changed_clinics([], [a_session()], []) == {CLINIC}


def test_audit_events_web_sessions_and_new_users_do_not() -> None:
    event = AuditEvent(
        id=uuid.uuid4(),
        clinic_id=CLINIC,
        action=AuditAction.RECORD_VIEWED,
        entity_type="patient",
        entity_id=uuid.uuid4(),
        occurred_at=NOW,
        source="web",
        outcome=AuditOutcome.SUCCESS,
    )
    web = {f: None for f in WebSession.__dataclass_fields__}
    web.update(id=uuid.uuid4(), clinic_id=CLINIC, user_id=uuid.uuid4())
    session = WebSession(**web)  # type: ignore[arg-type]
    touched = replace(session, last_seen_at=NOW)
    assert changed_clinics([], [event, session, a_user()], [(session, touched)]) == set()


def test_a_practitioners_name_moves_it_their_password_does_not() -> None:
    user = a_user()
    assert changed_clinics([], [], [(user, replace(user, full_name="Pat T."))]) == {CLINIC}
    assert changed_clinics([], [], [(user, replace(user, password_hash="x"))]) == set()


@given(
    birth=st.dates(min_value=date(1920, 1, 1), max_value=date(2020, 1, 1)),
    sex=st.sampled_from(list(Sex)),
    phone=st.text(max_size=12),
)
def test_a_patients_change_counts_only_when_the_analytics_read_it(
    birth: date, sex: Sex, phone: str
) -> None:
    fields = {f: None for f in Patient.__dataclass_fields__}
    fields.update(id=uuid.uuid4(), clinic_id=CLINIC, birth_date=date(1980, 1, 1), sex=Sex.FEMALE)
    old = Patient(**fields)  # type: ignore[arg-type]
    new = replace(old, birth_date=birth, sex=sex, phone=phone or None)
    expected = {CLINIC} if (birth, sex) != (old.birth_date, old.sex) else set()
    assert changed_clinics([], [], [(old, new)]) == expected
    assert changed_clinics([], [new], []) == set()  # a patient alone is in no analysis


def test_every_analysed_column_exists() -> None:
    from needlepoint.adapters.db.tables import metadata

    for table, columns in ANALYSED.items():
        assert columns <= set(metadata.tables[table].c.keys()), table
