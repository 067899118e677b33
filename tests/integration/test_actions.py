"""The write path on SQLite and PostgreSQL: one transaction, tenant and permission checks,
exactly one audit event per action, nothing half-written, signed notes locked."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from needlepoint.actions import (
    episodes,
    outcomes,
    patients,
    sessions,
)
from needlepoint.adapters.db import tables as t
from needlepoint.domain.commands import (
    AmendSession,
    CloseEpisode,
    RecordMeasurement,
    SignSession,
    UpdatePatient,
    UpdateSession,
)
from needlepoint.domain.entities import Session
from needlepoint.domain.enums import AuditAction, SessionStatus
from needlepoint.domain.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    RecordLocked,
    StaleVersion,
)
from needlepoint.queries.reader import Reader
from needlepoint.queries.sessions import session_detail
from tests.conftest import ClinicFixture
from tests.factories import episode_cmd, patient_cmd, session_cmd

CLINICAL_TABLES = [
    t.patients,
    t.episodes,
    t.plan_items,
    t.sessions,
    t.needling_sites,
    t.co_interventions,
    t.adverse_events,
    t.measurements,
    t.medication_uses,
    t.amendments,
    t.audit_events,
]


def counts(clinic: ClinicFixture) -> dict[str, int]:
    """Rows per clinical table belonging to this clinic."""
    with clinic.engine.connect() as conn:
        return {
            table.name: conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.clinic_id == clinic.owner.clinic_id)
            ).scalar_one()
            for table in CLINICAL_TABLES
        }


def audit_actions(clinic: ClinicFixture) -> list[str]:
    with clinic.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.audit_events.c.action)
                .where(t.audit_events.c.clinic_id == clinic.owner.clinic_id)
                .order_by(t.audit_events.c.occurred_at, t.audit_events.c.action)
            ).scalars()
        )


def charted(clinic: ClinicFixture) -> tuple[Any, Any, Session]:
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    clinic.prepare_needling(patient.id)
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    note = sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))
    return patient, episode, note


def test_a_complete_session_is_stored_with_everything_it_records(clinic: ClinicFixture) -> None:
    _, _episode, note = charted(clinic)
    with clinic.engine.connect() as conn:
        detail = session_detail(
            Reader(conn, clinic.owner.clinic_id, clinic.clinician.role, clinic.clinician.id),
            note.id,
        )
    assert detail.session.status is SessionStatus.DRAFT
    assert [s.muscle_id for s in detail.sites] == [
        "upper_trapezius",
        "levator_scapulae",
        "splenius_capitis",
        "cervical_multifidus",
    ]
    nprs = next(m for m in detail.measurements if m.instrument_id == "nprs")
    assert nprs.answers == {"item1": 6}
    assert nprs.score == 6
    rom = next(m for m in detail.measurements if m.instrument_id == "rom")
    assert rom.context == {"joint": "cervical_spine", "movement": "rotation", "side": "left"}
    assert detail.session.started_at.tzinfo is not None
    assert detail.co_interventions[0].description == "Chin tucks"


# "Every action writes exactly one audit event" is generated from the action registry,
# for every action and every audit event kind: tests/integration/test_action_registry.py.


def test_amending_writes_one_audit_event_and_keeps_the_original(clinic: ClinicFixture) -> None:
    _, _, note = charted(clinic)
    signed = sessions.sign_session(
        clinic.uow(), clinic.as_clinician, SignSession(session_id=note.id, expected_version=1)
    )
    n = len(audit_actions(clinic))
    sessions.amend_session(
        clinic.uow(),
        clinic.as_clinician,
        AmendSession(session_id=note.id, reason="Wrong side", text="Levator scapulae was right."),
    )
    assert len(audit_actions(clinic)) == n + 1
    with clinic.engine.connect() as conn:
        detail = session_detail(
            Reader(conn, clinic.owner.clinic_id, clinic.clinician.role, clinic.clinician.id),
            note.id,
        )
    assert detail.session == signed  # the original is readable exactly as signed
    assert [a.reason for a in detail.amendments] == ["Wrong side"]


def test_audit_event_names_who_what_which_record_and_digests(clinic: ClinicFixture) -> None:
    _, _episode, note = charted(clinic)
    sessions.sign_session(
        clinic.uow(), clinic.as_clinician, SignSession(session_id=note.id, expected_version=1)
    )
    with clinic.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.audit_events).where(
                t.audit_events.c.entity_id == note.id,
                t.audit_events.c.action == AuditAction.SESSION_SIGNED,
            )
        ).one()
    assert row.actor_user_id == clinic.clinician.id
    assert row.patient_id == note.patient_id
    assert row.entity_type == "session"
    assert row.before_digest
    assert row.after_digest
    assert row.before_digest != row.after_digest
    assert len(row.after_digest) == 64


def test_a_failed_action_leaves_no_row_behind(clinic: ClinicFixture) -> None:
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    clinic.prepare_needling(patient.id)
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    before = counts(clinic)
    # The last measurement is out of range: the session, its sites, co-interventions,
    # the first measurement and the audit event must all be refused together.
    bad = session_cmd(
        episode.id,
        measurements=[
            {"instrument_id": "nprs", "answers": {"item1": 5}},
            {"instrument_id": "ndi", "answers": {"item1": 9}},
        ],
    )
    with pytest.raises(InvalidInput) as err:
        sessions.record_session(clinic.uow(), clinic.as_clinician, bad)
    assert err.value.field == "measurements.1.answers.item1"
    assert counts(clinic) == before


def test_a_database_error_at_commit_rolls_back_everything(clinic: ClinicFixture) -> None:
    patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd(mrn="DUP-1"))
    before = counts(clinic)
    with pytest.raises(InvalidInput) as err:
        patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd(mrn="DUP-1"))
    assert err.value.field == "mrn"
    assert counts(clinic) == before


def test_a_signed_session_rejects_edits(clinic: ClinicFixture) -> None:
    _, episode, note = charted(clinic)
    signed = sessions.sign_session(
        clinic.uow(), clinic.as_clinician, SignSession(session_id=note.id, expected_version=1)
    )
    before = counts(clinic)
    edit = UpdateSession(
        session_id=note.id,
        expected_version=signed.version,
        **session_cmd(episode.id, subjective="rewritten").model_dump(
            exclude={"episode_id", "clinician_id"}
        ),
    )
    with pytest.raises(RecordLocked):
        sessions.update_session(clinic.uow(), clinic.as_clinician, edit)
    with pytest.raises(RecordLocked):
        sessions.sign_session(
            clinic.uow(),
            clinic.as_clinician,
            SignSession(session_id=note.id, expected_version=signed.version),
        )
    assert counts(clinic) == before


def test_a_draft_is_edited_in_place_and_its_children_replaced(clinic: ClinicFixture) -> None:
    _, episode, note = charted(clinic)
    edit = UpdateSession(
        session_id=note.id,
        expected_version=1,
        **session_cmd(episode.id, sites=[], measurements=[]).model_dump(
            exclude={"episode_id", "clinician_id"}
        ),
    )
    updated = sessions.update_session(clinic.uow(), clinic.as_clinician, edit)
    assert updated.version == 2
    c = counts(clinic)
    assert c["needling_sites"] == 0
    assert c["measurements"] == 0
    assert c["sessions"] == 1


def test_a_stale_update_is_refused(clinic: ClinicFixture) -> None:
    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    patients.update_patient(
        clinic.uow(),
        clinic.as_clinician,
        UpdatePatient(patient_id=patient.id, expected_version=1, given_name="Ada-Mae"),
    )
    before = counts(clinic)
    with pytest.raises(StaleVersion):
        patients.update_patient(
            clinic.uow(),
            clinic.as_clinician,
            UpdatePatient(patient_id=patient.id, expected_version=1, family_name="Overwrite"),
        )
    assert counts(clinic) == before


def test_a_concurrent_change_between_read_and_write_is_caught_by_the_database(
    clinic: ClinicFixture,
) -> None:
    """Two units of work read version 1; the second to commit must fail, not overwrite."""
    from dataclasses import replace

    from needlepoint.domain.entities import Patient

    patient = patients.register_patient(clinic.uow(), clinic.as_clinician, patient_cmd())
    patients.update_patient(
        clinic.uow(),
        clinic.as_clinician,
        UpdatePatient(patient_id=patient.id, expected_version=1, given_name="First"),
    )
    with clinic.uow() as late:
        # staged against the version-1 copy read before the other change committed
        late.replace(patient, replace(patient, given_name="Second", version=2))
        with pytest.raises(StaleVersion):
            late.commit()
    with clinic.engine.connect() as conn:
        name = conn.execute(
            sa.select(t.patients.c.given_name).where(t.patients.c.id == patient.id)
        ).scalar_one()
    assert name == "First"
    assert isinstance(patient, Patient)


def test_another_clinics_records_are_not_found(
    clinic: ClinicFixture, other_clinic: ClinicFixture
) -> None:
    patient, episode, note = charted(clinic)
    before = counts(clinic)
    with pytest.raises(NotFound):
        episodes.open_episode(
            other_clinic.uow(), other_clinic.as_clinician, episode_cmd(patient.id)
        )
    with pytest.raises(NotFound):
        sessions.record_session(
            other_clinic.uow(), other_clinic.as_clinician, session_cmd(episode.id)
        )
    with pytest.raises(NotFound):
        sessions.sign_session(
            other_clinic.uow(),
            other_clinic.as_clinician,
            SignSession(session_id=note.id, expected_version=1),
        )
    assert counts(clinic) == before


def test_a_user_of_another_clinic_cannot_act_here(
    clinic: ClinicFixture, other_clinic: ClinicFixture
) -> None:
    from needlepoint.actions.context import Actor

    intruder = Actor(other_clinic.clinician.id, clinic.owner.clinic_id, source="test")
    with pytest.raises(PermissionDenied):
        patients.register_patient(clinic.uow(), intruder, patient_cmd())


def test_the_front_desk_cannot_write_clinical_notes(clinic: ClinicFixture) -> None:
    patient = patients.register_patient(clinic.uow(), clinic.as_assistant, patient_cmd())
    clinic.prepare_needling(patient.id)
    episode = episodes.open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    before = counts(clinic)
    with pytest.raises(PermissionDenied):
        sessions.record_session(clinic.uow(), clinic.as_assistant, session_cmd(episode.id))
    # Nothing clinical is written; the refusal itself is on the audit trail.
    assert counts(clinic) == {**before, "audit_events": before["audit_events"] + 1}


def test_a_closed_episode_takes_no_more_sessions(clinic: ClinicFixture) -> None:
    _, episode, _ = charted(clinic)
    episodes.close_episode(
        clinic.uow(),
        clinic.as_clinician,
        CloseEpisode(
            episode_id=episode.id,
            expected_version=1,
            closed_on=date(2026, 3, 1),
            discharge_reason="Goals met",
        ),
    )
    with pytest.raises(RecordLocked):
        sessions.record_session(clinic.uow(), clinic.as_clinician, session_cmd(episode.id))


def test_an_unknown_muscle_is_refused_naming_the_site(clinic: ClinicFixture) -> None:
    _, episode, _ = charted(clinic)
    cmd = session_cmd(
        episode.id,
        sites=[{**session_cmd(episode.id).sites[0].model_dump(), "muscle_id": "paraspinals"}],
    )
    with pytest.raises(InvalidInput) as err:
        sessions.record_session(clinic.uow(), clinic.as_clinician, cmd)
    assert err.value.field == "sites.0.muscle_id"


def test_measurement_keeps_raw_answers_and_its_score_is_recomputable(
    clinic: ClinicFixture,
) -> None:
    from needlepoint.domain import instruments

    patient, episode, _ = charted(clinic)
    answers = {f"item{i}": (i % 6) for i in range(1, 11)}
    answers["item4"] = None  # one section unanswered: the denominator drops by 5
    m = outcomes.record_measurement(
        clinic.uow(),
        clinic.as_clinician,
        RecordMeasurement(
            patient_id=patient.id, episode_id=episode.id, instrument_id="ndi", answers=answers
        ),
    )
    with clinic.engine.connect() as conn:
        row = conn.execute(sa.select(t.measurements).where(t.measurements.c.id == m.id)).one()
    assert row.answers == answers
    expected = sum(v for v in answers.values() if v is not None) / 45 * 100
    assert row.score == pytest.approx(expected)
    assert instruments.score(instruments.get("ndi"), row.answers) == pytest.approx(row.score)
