"""A clinic with one clinician and one patient ready to be needled: registered,
screened (all clear), consented (copy given) and with an open neck-pain episode.

The benchmarks (`bench/write_path.py`, `bench/pages.py`) and the crash test
(`scripts/crash_test.py`) start from it; everything goes through the actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from needlepoint.actions import consent, episodes, patients, screening
from needlepoint.actions.clinics import issue_operator_token, register_clinic, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import (
    OpenEpisode,
    PlanItemIn,
    RecordConsent,
    RecordScreening,
    RegisterClinic,
    RegisterPatient,
    RegisterUser,
    TrainingCourse,
)
from needlepoint.domain.entities import Consent, Episode, Patient, User
from needlepoint.domain.enums import ConsentMethod, Modality, Role, Sex
from needlepoint.domain.screening import questionnaire

# A course that meets every jurisdiction's hours in `jurisdictions.yaml`.
FULL_COURSE = TrainingCourse(
    provider="Synthetic Institute",
    course="Dry needling",
    hours_in_person=54,
    completed_on=date(2020, 1, 1),
    exam_passed=True,
)


@dataclass(frozen=True)
class ReadyPatient:
    """What was made, and the clinician's actor (and API token when asked for)."""

    clinician: User
    actor: Actor
    patient: Patient
    episode: Episode
    consent: Consent
    token: str | None


def ready_patient(
    engine: sa.Engine,
    *,
    ready_at: datetime,
    clinic_name: str = "Synthetic Clinic",
    password: str | None = None,
    trained: bool = True,
    screened: bool = True,
    with_token: bool = False,
    plan: tuple[Modality, ...] = (),
    source: str = "cli",
) -> ReadyPatient:
    """Make the clinic and patient; needling is allowed from `ready_at` (screening and
    consent an hour before; the episode opened that day, onset 30 days before).

    `screened=False` leaves the screening to the caller (e.g. repeated screenings over a
    long record); `plan` lists the episode's co-interventions."""
    tag = uuid.uuid4().hex[:8]
    owner = register_clinic(
        SqlUnitOfWork(engine),
        RegisterClinic(
            name=clinic_name, owner_email=f"owner-{tag}@synthetic.example", owner_name="Owner"
        ),
        source=source,
    )
    clinician = register_user(
        SqlUnitOfWork(engine),
        Actor(owner.id, owner.clinic_id, source=source),
        RegisterUser(
            email=f"pt-{tag}@synthetic.example",
            full_name="Synthetic PT",
            role=Role.CLINICIAN,
            password=password,
            training=[FULL_COURSE] if trained else [],
        ),
    )
    actor = Actor(clinician.id, clinician.clinic_id, source=source)
    patient = patients.register_patient(
        SqlUnitOfWork(engine),
        actor,
        RegisterPatient(
            mrn=f"S-{tag}",
            given_name="Sam",
            family_name="Ready",
            birth_date=date(1980, 1, 1),
            sex=Sex.UNKNOWN,
        ),
    )
    before = ready_at - timedelta(hours=1)
    if screened:
        screening.record_screening(
            SqlUnitOfWork(engine),
            actor,
            RecordScreening(
                patient_id=patient.id,
                answers={q.id: False for q in questionnaire().questions},
                screened_at=before,
            ),
        )
    signed = consent.record_consent(
        SqlUnitOfWork(engine),
        actor,
        RecordConsent(
            patient_id=patient.id,
            template_id="dry_needling",
            template_version="1.0",
            signer_name="Sam Ready",
            method=ConsentMethod.TYPED_NAME,
            signed_at=before,
            copy_given=True,
        ),
    )
    episode = episodes.open_episode(
        SqlUnitOfWork(engine),
        actor,
        OpenEpisode(
            patient_id=patient.id,
            condition="neck_pain",
            onset_date=ready_at.date() - timedelta(days=30),
            opened_on=ready_at.date(),
            plan=[PlanItemIn(modality=m) for m in plan],
        ),
    )
    token = (
        issue_operator_token(SqlUnitOfWork(engine), clinician, clinic_name, source=source)
        if with_token
        else None
    )
    return ReadyPatient(clinician, actor, patient, episode, signed, token)
