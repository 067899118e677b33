"""Domain rules: permissions, commands, record locking, audit digests, data files."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from needlepoint.adapters.db.tables import TABLE_OF
from needlepoint.domain import catalogue
from needlepoint.domain.audit import digest
from needlepoint.domain.commands import NeedlingSiteIn, OpenEpisode, RecordSession, RegisterPatient
from needlepoint.domain.entities import Session
from needlepoint.domain.enums import Role, SessionStatus
from needlepoint.domain.episodes import diagnose
from needlepoint.domain.errors import InvalidInput, PermissionDenied, RecordLocked, StaleVersion
from needlepoint.domain.instruments import library
from needlepoint.domain.notes import ensure_editable, ensure_signed
from needlepoint.domain.permissions import GRANTS, Permission, allows, require
from needlepoint.domain.versions import check_version
from needlepoint.synthetic.clinic import _progress, _spread

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)


def a_session(**changes: Any) -> Session:
    s = Session(
        id=uuid4(),
        clinic_id=uuid4(),
        patient_id=uuid4(),
        episode_id=uuid4(),
        clinician_id=uuid4(),
        started_at=NOW,
        subjective="s",
        objective="o",
        assessment="a",
        plan="p",
        status=SessionStatus.DRAFT,
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(s, **changes)


def test_every_permission_is_granted_to_someone() -> None:
    assert set(GRANTS) == set(Permission)
    assert all(GRANTS[p] for p in Permission)


def test_the_front_desk_handles_demographics_not_notes() -> None:
    assert allows(Role.ASSISTANT, Permission.REGISTER_PATIENT)
    assert not allows(Role.ASSISTANT, Permission.RECORD_SESSION)
    assert not allows(Role.ASSISTANT, Permission.READ_CLINICAL)


def test_students_document_but_do_not_sign() -> None:
    assert allows(Role.STUDENT, Permission.RECORD_SESSION)
    assert not allows(Role.STUDENT, Permission.SIGN_SESSION)
    with pytest.raises(PermissionDenied):
        require(Role.STUDENT, Permission.SIGN_SESSION)


def test_auditors_read_no_health_records() -> None:
    held = {p for p in Permission if allows(Role.AUDITOR, p)}
    assert held == {
        Permission.USE_ACCOUNT,
        Permission.READ_STAFF,
        Permission.READ_AUDIT,
        Permission.REVIEW_EMERGENCY_ACCESS,
    }


def test_a_signed_note_is_locked_and_a_draft_is_not_amended() -> None:
    ensure_editable(a_session())
    with pytest.raises(RecordLocked):
        ensure_editable(a_session(status=SessionStatus.SIGNED))
    with pytest.raises(RecordLocked):
        ensure_signed(a_session())


def test_a_stale_version_is_refused() -> None:
    check_version(a_session(version=3), 3)
    with pytest.raises(StaleVersion):
        check_version(a_session(version=3), 2)


def site(**overrides: Any) -> dict[str, Any]:
    return {
        "muscle_id": "infraspinatus",
        "side": "right",
        "trigger_point": "active",
        "technique": "static",
        "needle_gauge_mm": 0.3,
        "needle_length_mm": 40,
        "depth_mm": 25,
        "insertions": 3,
        "tolerance": "good",
        **overrides,
    }


def test_a_needle_cannot_go_deeper_than_it_is_long() -> None:
    NeedlingSiteIn(**site())
    with pytest.raises(ValidationError, match="deeper than the needle"):
        NeedlingSiteIn(**site(depth_mm=45))


def test_estim_parameters_need_estim_switched_on() -> None:
    with pytest.raises(ValidationError):
        NeedlingSiteIn(**site(estim_params={"frequency_hz": 2, "minutes": 10}))
    NeedlingSiteIn(
        **site(electrical_stimulation=True, estim_params={"frequency_hz": 2, "minutes": 10})
    )


def test_times_must_carry_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        RecordSession(episode_id=uuid4(), started_at=datetime(2026, 3, 1, 10))


def test_patients_are_not_born_in_the_future_and_episodes_start_after_onset() -> None:
    with pytest.raises(ValidationError):
        RegisterPatient(
            mrn="1", given_name="A", family_name="B", birth_date=date(2999, 1, 1), sex="female"
        )
    with pytest.raises(ValidationError):
        OpenEpisode(
            patient_id=uuid4(),
            condition="neck_pain",
            onset_date=date(2026, 2, 2),
            opened_on=date(2026, 2, 1),
        )


def test_unknown_conditions_are_refused_and_codes_default_from_the_catalogue() -> None:
    dx = diagnose("lateral_elbow_pain", None, None)
    assert dx.icd10_code == "M77.10"
    assert dx.body_region == "elbow"
    assert diagnose("lateral_elbow_pain", "M77.11", None).icd10_code == "M77.11"
    with pytest.raises(InvalidInput) as err:
        diagnose("fibromyalgia_cure", None, None)
    assert err.value.field == "condition"


def test_digests_change_with_content_and_are_stable() -> None:
    s = a_session()
    assert digest([s]) == digest([replace(s)])
    assert digest([s]) != digest([replace(s, subjective="different")])
    assert digest([]) is None


def test_entities_and_tables_hold_the_same_fields() -> None:
    for kind, table in TABLE_OF.items():
        assert [f.name for f in fields(kind)] == list(table.c.keys()), kind.__name__


def test_every_clinical_table_carries_the_clinic() -> None:
    for table in TABLE_OF.values():
        if table.name != "clinics":
            assert "clinic_id" in table.c, table.name
            assert not table.c.clinic_id.nullable, table.name


def test_clinical_data_files_are_consistent() -> None:
    conditions = catalogue.conditions()
    muscles = catalogue.muscles()
    ids = {c.id for c in conditions.conditions}
    assert set(muscles.condition_muscles) <= ids
    for c in conditions.conditions:
        assert c.function_instrument is None or c.function_instrument in library()
    assert all(m.thorax for m in muscles.muscles if m.region in ("chest", "upper_back"))
    brady = catalogue.adverse_event_benchmarks().study("brady_2014")
    assert sum(brady.mild_by_kind_percent.values()) <= brady.mild_percent


@given(n=st.integers(2, 12))
def test_recovery_progress_rises_from_zero_to_one(n: int) -> None:
    values = [_progress(k, n) for k in range(n)]
    assert values[0] == 0
    assert values[-1] == pytest.approx(1)
    assert values == sorted(values)


@given(total=st.integers(-5, 100), items=st.integers(1, 20), seed=st.integers(0, 10**6))
def test_spread_answers_hit_the_total_within_range(total: int, items: int, seed: int) -> None:
    import random

    answers = _spread(total, items, 1, 5, random.Random(seed))
    values = [v for v in answers.values() if v is not None]
    assert all(1 <= v <= 5 for v in values)
    assert sum(values) == min(max(total, items), 5 * items)
