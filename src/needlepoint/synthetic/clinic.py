"""Generate a synthetic clinic through the actions.

`generate_clinic` registers a clinic, its practitioners (with planted skill) and N
patients, each with one episode of 3-12 sessions (more episodes for returning patients
under the `model.REGISTRY` protocol), needling sites that fit the condition, outcome
trajectories that follow `model.OutcomeModel`, adverse events at the published rates, and
analgesic use. Every record is written by the actions; in bulk mode they run
on a `BulkUnitOfWork` that batches the writes. Deterministic for a seed."""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, get_args
from uuid import UUID

import sqlalchemy as sa

from needlepoint.actions import clinics, consent, episodes, outcomes, patients, screening, sessions
from needlepoint.actions.context import Actor
from needlepoint.actions.screening import patient_facts
from needlepoint.adapters.db.engine import WRITE_OPTION, make_engine, refresh_statistics
from needlepoint.adapters.db.unit_of_work import (
    BulkUnitOfWork,
    PreparedRows,
    SqlUnitOfWork,
    prepare_inserts,
    write_prepared,
)
from needlepoint.domain import catalogue
from needlepoint.domain.catalogue import Region
from needlepoint.domain.commands import (
    AdverseEventIn,
    CloseEpisode,
    CoInterventionIn,
    DeviceClearance,
    EstimParams,
    MeasurementIn,
    NeedlingSiteIn,
    OpenEpisode,
    PlanItemIn,
    RecordConsent,
    RecordMedicationUse,
    RecordScreening,
    RecordSession,
    RegisterClinic,
    RegisterPatient,
    RegisterUser,
    SignSession,
    TrainingCourse,
)
from needlepoint.domain.entities import (
    Clinic,
    Entity,
    Episode,
    Patient,
    Screening,
    Session,
    TrainingRecord,
    User,
)
from needlepoint.domain.enums import (
    AdverseEventKind,
    ConsentMethod,
    DrugClass,
    Modality,
    Role,
    Severity,
    Sex,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)
from needlepoint.domain.screening import is_minor, questionnaire
from needlepoint.domain.site_conditions import site_conditions
from needlepoint.ports import UnitOfWork
from needlepoint.synthetic import names
from needlepoint.synthetic.model import (
    CHRONIC_AFTER_DAYS,
    CONDITION_WEIGHTS,
    DEPTH_RANGE_MM,
    NEEDLE_LENGTHS_MM,
    NORMAL_ROM_DEGREES,
    RETURN_AFTER_DAYS,
    ROUTINE,
    SAME_CONDITION,
    SAME_PRACTITIONER,
    OutcomeModel,
    Protocol,
)

SCREEN_EVERY_DAYS = 80  # re-screen before the default 90-day validity runs out
# Share of synthetic patients answering yes to each precaution (simulation only; never
# an absolute contraindication or a site exclusion, so that every planted note is valid).
SCREENING_PREVALENCE = {
    "current_medication": 0.3,
    "diabetes": 0.07,
    "vascular_disease": 0.03,
    "anticoagulants": 0.04,
    "pregnancy": 0.02,
    "implanted_electrical_device": 0.02,
    "myalgia_medication": 0.08,
}
ANCHOR = date(2026, 6, 30)
"""The generated clinic's "today" unless told otherwise: fixed, so output is reproducible.
The demo passes the real today (`anchor=`), so that its screenings and visits are current."""
SOURCE = "generator"

Mode = Literal["bulk", "actions"]


class SimulatedClock:
    """The generator's clock: set to the simulated moment of each action."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


class SeededIds:
    """Reproducible, ordered ids: UUID version 8 (RFC 9562 "custom") holding a hash of the
    seed, the patient's number and a counter. Records created one after another get
    ascending ids, so a bulk load appends to the indexes instead of scattering writes."""

    _PAYLOAD_BITS = 122  # 128 minus the version (4) and variant (2) bits

    def __init__(self, seed: int | str) -> None:
        digest = hashlib.sha256(f"needlepoint-synthetic-{seed}".encode()).digest()
        self._prefix = int.from_bytes(digest[:5], "big") >> 2  # 38 bits
        self.reseed(0)

    def reseed(self, stream: int) -> None:
        """Start stream `stream` (0: the clinic and its staff; i + 1: patient i)."""
        self._base = (self._prefix << 84) | (stream << 40)
        self._counter = 0

    def __call__(self) -> UUID:
        self._counter += 1
        payload = self._base | self._counter
        # Spread the payload over the free bits, keeping its order: 48 | ver | 12 | var | 62.
        high48 = payload >> 74
        mid12 = (payload >> 62) & 0xFFF
        low62 = payload & ((1 << 62) - 1)
        value = (high48 << 80) | (0x8 << 76) | (mid12 << 64) | (0b10 << 62) | low62
        return UUID(int=value)


@dataclass
class Practitioner:
    user: User
    skill: float
    actor: Actor


@dataclass
class GenerationReport:
    clinic_id: UUID
    owner_id: UUID
    patients: int
    sessions: int
    actions: int
    truth_path: Path | None
    truth: dict[str, Any] = field(repr=False)


@dataclass
class _Staff:
    """What every patient's generation needs to know about the clinic."""

    clinic: Clinic
    owner: User
    practitioners: list[Practitioner]
    training: list[TrainingRecord]

    def records(self) -> list[Entity]:
        """Everything a worker's actions read about the clinic and its staff."""
        return [self.clinic, self.owner, *(p.user for p in self.practitioners), *self.training]


@dataclass
class _Course:
    """One generated episode: its patient, its truth and its discharge date (None while
    still under way)."""

    patient: Patient
    truth: dict[str, Any]
    closed_on: date | None


@dataclass
class _Chunk:
    """The output of generating patients [start, stop): driver-ready rows and the truth."""

    start: int
    stop: int
    rows: PreparedRows
    truth: list[dict[str, Any]]
    sessions: int
    actions: int


def generate_clinic(
    engine: sa.Engine,
    *,
    patients_count: int,
    seed: int,
    practitioners_count: int | None = None,
    mode: Mode = "bulk",
    truth_path: Path | None = None,
    chunk_size: int = 100,
    workers: int | None = None,
    on_patient: Callable[[], None] | None = None,
    clinic_name: str | None = None,
    protocol: Protocol = ROUTINE,
    anchor: date = ANCHOR,
    owner_email: str | None = None,
    owner_password: str | None = None,
) -> GenerationReport:
    """Generate a clinic into an already migrated database; return what was made.

    `mode="actions"` runs every action in its own database transaction; `mode="bulk"`
    (the default) runs the same actions on in-memory units of work, in `workers`
    processes, and writes each chunk of patients in one transaction. Patient i always
    draws from its own random streams, so the result depends only on the seed (and the
    `protocol`: how often patients return, what is measured, and the `anchor`: the
    clinic's "today", the last day anything happens)."""
    gen = _Generator(seed, mode, engine if mode == "actions" else None, protocol, anchor)
    staff = gen.setup_clinic(
        practitioners_count or max(3, min(60, patients_count // 100)),
        clinic_name,
        owner_email=owner_email,
        owner_password=owner_password,
    )
    if gen.bulk is not None:
        gen.bulk.flush(engine)
    chunks = [
        (i, min(i + chunk_size, patients_count)) for i in range(0, patients_count, chunk_size)
    ]
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    truth_episodes: list[dict[str, Any]] = []
    sessions = 0
    actions = gen.actions
    for chunk in _run_chunks(gen, engine, staff, chunks, n_workers, mode):
        if chunk.rows:
            with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
                conn.begin()
                write_prepared(conn, chunk.rows)
                conn.commit()
        truth_episodes += chunk.truth
        sessions += chunk.sessions
        actions += chunk.actions
        if on_patient is not None:
            for _ in range(chunk.stop - chunk.start):
                on_patient()
    refresh_statistics(engine)  # a bulk load: the planner must see the new rows
    truth = gen.truth(staff, patients_count, truth_episodes)
    report = GenerationReport(
        clinic_id=staff.owner.clinic_id,
        owner_id=staff.owner.id,
        patients=patients_count,
        sessions=sessions,
        actions=actions,
        truth_path=None,
        truth=truth,
    )
    if truth_path is not None:
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only like every file beside the database (synthetic, but it names patients).
        fd = os.open(truth_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(truth, indent=1, default=str))
        truth_path.chmod(0o600)  # an older file keeps its mode through O_TRUNC
        report.truth_path = truth_path
    return report


def _run_chunks(
    gen: _Generator,
    engine: sa.Engine,
    staff: _Staff,
    chunks: list[tuple[int, int]],
    workers: int,
    mode: Mode,
) -> Iterator[_Chunk]:
    """Chunks in order, generated here or by a pool of worker processes."""
    if mode == "actions" or workers <= 1 or len(chunks) < 4:
        for start, stop in chunks:
            yield gen.chunk(staff, start, stop, engine.dialect)
        return
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    init = (
        gen.seed,
        gen.protocol,
        staff,
        engine.url.render_as_string(hide_password=False),
        gen.anchor,
    )
    with context.Pool(workers, initializer=_worker_init, initargs=init) as pool:
        yield from pool.imap(_worker_chunk, chunks)


_worker: tuple[_Generator, _Staff, sa.Dialect] | None = None


def _worker_init(
    seed: int, protocol: Protocol, staff: _Staff, url: str, anchor: date = ANCHOR
) -> None:
    global _worker
    engine = make_engine(url)
    if engine.dialect.name != "sqlite":  # let the dialect learn the server's settings
        engine.connect().close()
    _worker = (_Generator(seed, "bulk", None, protocol, anchor), staff, engine.dialect)


def _worker_chunk(bounds: tuple[int, int]) -> _Chunk:
    assert _worker is not None
    gen, staff, dialect = _worker
    return gen.chunk(staff, bounds[0], bounds[1], dialect)


class _Generator:
    def __init__(
        self,
        seed: int,
        mode: Mode,
        engine: sa.Engine | None,
        protocol: Protocol = ROUTINE,
        anchor: date = ANCHOR,
    ) -> None:
        self.engine = engine
        self.anchor = anchor
        self.seed = seed
        self.protocol = protocol
        self.mode = mode
        self.rng = random.Random(seed)
        start = datetime.combine(anchor - timedelta(days=800), time(8), tzinfo=UTC)
        self.clock = SimulatedClock(start)
        self.ids = SeededIds(seed)
        self.model = OutcomeModel()
        self.bulk = BulkUnitOfWork(None, self.clock, self.ids) if engine is None else None
        self.actions = 0
        self.sessions = 0
        self.muscles = catalogue.muscles()
        self.conditions = catalogue.conditions()
        benchmarks = catalogue.adverse_event_benchmarks()
        brady = benchmarks.study("brady_2014")
        boyce = benchmarks.study("boyce_2020")
        self.mild_rates = {
            AdverseEventKind(kind): pct / 100 for kind, pct in brady.mild_by_kind_percent.items()
        }
        self.significant_rate = (boyce.significant_events or 0) / boyce.sample
        self.ae_sources = {"mild": brady.citation, "significant": boyce.citation}

    # -- plumbing ---------------------------------------------------------------------------
    def uow(self) -> UnitOfWork:
        self.actions += 1
        if self.bulk is not None:
            return self.bulk
        assert self.engine is not None
        return SqlUnitOfWork(self.engine, self.clock, self.ids)

    def at(self, moment: datetime) -> None:
        self.clock.at = moment

    # -- the clinic -------------------------------------------------------------------------
    def setup_clinic(
        self,
        practitioners: int,
        clinic_name: str | None,
        *,
        owner_email: str | None = None,
        owner_password: str | None = None,
    ) -> _Staff:
        owner = clinics.register_clinic(
            self.uow(),
            RegisterClinic(
                name=clinic_name or f"Synthetic Dry Needling Clinic (seed {self.seed})",
                owner_email=owner_email or f"owner.{self.seed}@clinic.example",
                owner_name="Clinic Owner",
                owner_password=owner_password,
            ),
            source=SOURCE,
        )
        owner_actor = Actor(owner.id, owner.clinic_id, source=SOURCE)
        staff = [self._practitioner(owner_actor, i) for i in range(practitioners)]
        uow = self.uow()
        self.actions -= 1  # a read, not an action
        with uow:
            clinic = uow.get(Clinic, owner.clinic_id, owner.clinic_id)
            training = [
                t
                for p in staff
                for t in uow.list_by(TrainingRecord, owner.clinic_id, user_id=p.user.id)
            ]
        assert clinic is not None
        return _Staff(clinic=clinic, owner=owner, practitioners=staff, training=training)

    def chunk(self, staff: _Staff, start: int, stop: int, dialect: sa.Dialect) -> _Chunk:
        """Generate patients [start, stop) and return their rows, ready for the driver."""
        self.actions = 0
        self.sessions = 0
        if self.bulk is not None:
            self.bulk.preload(staff.records())
        owner_actor = Actor(staff.owner.id, staff.owner.clinic_id, source=SOURCE)
        truth = []
        for i in range(start, stop):
            self.rng = random.Random(f"{self.seed}:patient:{i}")
            self.ids.reseed(i + 1)
            truth += self._patient(i, staff.practitioners, owner_actor)
        rows: PreparedRows = []
        if self.bulk is not None:
            adds, updates = self.bulk.drain()
            assert not updates, "a patient's records are all created within its chunk"
            rows = prepare_inserts(dialect, adds)
        return _Chunk(start, stop, rows, truth, self.sessions, self.actions)

    def truth(
        self, staff: _Staff, patients_count: int, episodes: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The planted effects, for checking analytics against."""
        return {
            "generator": "needlepoint.synthetic.clinic",
            "seed": self.seed,
            "anchor_date": self.anchor.isoformat(),
            "clinic_id": str(staff.owner.clinic_id),
            "patients": patients_count,
            "outcome_model": self.model.describe(),
            "protocol": self.protocol.describe(),
            "practitioners": [
                {"user_id": str(p.user.id), "name": p.user.full_name, "skill_nprs": p.skill}
                for p in staff.practitioners
            ],
            "adverse_event_rates_per_session": {
                "mild": {k.value: v for k, v in self.mild_rates.items()},
                "significant": self.significant_rate,
                "sources": self.ae_sources,
            },
            "episodes": episodes,
        }

    def _practitioner(self, owner: Actor, i: int) -> Practitioner:
        rng = self.rng
        skill = rng.gauss(0, self.model.practitioner_skill_sd)
        sex = rng.random() < 0.5
        given = rng.choice(names.GIVEN_FEMALE if sex else names.GIVEN_MALE)
        family = rng.choice(names.FAMILY)
        licensed = self.anchor - timedelta(days=rng.randint(400, 9000))
        # More training hours for the more skilled: expertise is part of the planted story.
        hours = max(24.0, round(40 + 25 * skill + rng.gauss(0, 10)))
        user = clinics.register_user(
            self.uow(),
            owner,
            RegisterUser(
                email=f"pt{i + 1:03d}.{self.seed}@clinic.example",
                full_name=f"{given} {family}, PT",
                role=Role.CLINICIAN,
                licence_number=f"PT-{self.seed % 1000:03d}-{i + 1:04d}",
                licence_date=licensed,
                training=[
                    TrainingCourse(
                        provider="Synthetic Institute of Dry Needling",
                        course="Dry needling level 1",
                        hours_in_person=hours,
                        hours_online=float(rng.choice([0, 8, 12])),
                        completed_on=licensed + timedelta(days=rng.randint(365, 900)),
                        exam_passed=True,
                        regions=list(get_args(Region)),
                    )
                ],
            ),
        )
        return Practitioner(user, skill, Actor(user.id, user.clinic_id, source=SOURCE))

    # -- one patient, one or more episodes --------------------------------------------------
    def _patient(self, i: int, staff: list[Practitioner], owner: Actor) -> list[dict[str, Any]]:
        """Patient i's episodes: the first, then (with the protocol's recurrence) further
        ones after each discharge, while they start before the clinic's "today"."""
        rng = self.rng
        practitioner = rng.choice(staff)
        condition = rng.choices(list(CONDITION_WEIGHTS), weights=list(CONDITION_WEIGHTS.values()))[
            0
        ]
        female = rng.random() < (0.62 if condition != "knee_pain" else 0.5)
        age = min(88, max(16, round(rng.gauss(47, 15))))  # a few minors (guardian signs)
        start = self.anchor - timedelta(days=rng.randint(14, 760))
        age_days = age * 365 + rng.randint(0, 364)
        first = self._episode(i, practitioner, None, condition, female, start, age, age_days)
        truths = [first.truth]
        protocol, last = self.protocol, first
        while (
            last.closed_on is not None
            and len(truths) < protocol.max_episodes
            and rng.random() < protocol.recurrence
        ):
            start = last.closed_on + timedelta(days=rng.randint(*RETURN_AFTER_DAYS))
            if start > self.anchor - timedelta(days=28):  # three visits before "today" at least
                break
            if rng.random() >= SAME_PRACTITIONER:
                practitioner = rng.choice(staff)
            if rng.random() >= SAME_CONDITION:
                weights = {c: w for c, w in CONDITION_WEIGHTS.items() if c != condition}
                condition = rng.choices(list(weights), weights=list(weights.values()))[0]
            age = (start - last.patient.birth_date).days * 100 // 36525
            last = self._episode(
                i, practitioner, last, condition, female, start, age, 0, previous=truths[-1]
            )
            truths.append(last.truth)
        return truths

    def _episode(
        self,
        i: int,
        practitioner: Practitioner,
        before: _Course | None,
        condition: str,
        female: bool,
        start: date,
        age: int,
        age_days: int,
        previous: dict[str, Any] | None = None,
    ) -> _Course:
        """One episode of care (registering the patient first if `before` is None)."""
        rng = self.rng
        model = self.model
        actor = practitioner.actor
        chronic = rng.random() < 0.55
        onset_days = (
            rng.randint(CHRONIC_AFTER_DAYS + 1, 1500)
            if chronic
            else rng.randint(3, CHRONIC_AFTER_DAYS - 1)
        )
        exercise = rng.random() < 0.7
        manual = rng.random() < 0.5
        education = rng.random() < 0.6
        baseline = float(min(10, max(2, round(rng.gauss(6.2, 1.5)))))
        expected = model.expected_change(
            condition=condition,
            chronic=chronic,
            baseline=baseline,
            exercise=exercise,
            manual_therapy=manual,
            skill=practitioner.skill,
        )
        change = min(baseline, max(-1.5, expected + rng.gauss(0, model.noise_sd)))
        n_sessions = min(12, max(3, round(rng.gauss(7 - 0.4 * (change - 2.5), 2.0))))
        visits = self._visit_dates(start, n_sessions)
        ongoing = len(visits) < n_sessions  # the planned course runs past the clinic's today
        start = visits[0].date()  # an episode still under way may have begun earlier
        onset = start - timedelta(days=onset_days)

        self.at(visits[0] - timedelta(minutes=30))
        if before is None:
            born = start - timedelta(days=age_days)
            patient = patients.register_patient(
                self.uow(),
                actor,
                RegisterPatient(
                    mrn=f"MRN-{i + 1:06d}",
                    given_name=rng.choice(names.GIVEN_FEMALE if female else names.GIVEN_MALE),
                    family_name=rng.choice(names.FAMILY),
                    birth_date=born,
                    sex=Sex.FEMALE if female else Sex.MALE,
                    phone=f"+1-555-01{rng.randint(0, 99):02d}",
                ),
            )
        else:
            patient = before.patient
        cond = self.conditions.get(condition)
        assert cond is not None
        side = rng.choice([Side.LEFT, Side.RIGHT])
        plan = [
            PlanItemIn(
                modality=Modality.DRY_NEEDLING,
                description="Trigger point dry needling",
                sessions_per_week=1,
            )
        ]
        if exercise:
            plan.append(
                PlanItemIn(
                    modality=Modality.EXERCISE,
                    description="Graded home exercise",
                    sessions_per_week=1,
                )
            )
        if manual:
            plan.append(
                PlanItemIn(
                    modality=Modality.MANUAL_THERAPY,
                    description="Joint mobilisation and soft tissue work",
                )
            )
        if education:
            plan.append(PlanItemIn(modality=Modality.EDUCATION, description="Pain education"))
        episode = episodes.open_episode(
            self.uow(),
            actor,
            OpenEpisode(
                patient_id=patient.id,
                condition=condition,
                onset_date=onset,
                opened_on=start,
                goals="Reduce pain by at least 2 points; return to usual activities.",
                plan=plan,
            ),
        )
        truth: dict[str, Any] = {
            "episode_id": str(episode.id),
            "patient_id": str(patient.id),
            "practitioner_id": str(practitioner.user.id),
            "condition": condition,
            "chronic": chronic,
            "age": age,
            "sex": "female" if female else "male",
            "exercise": exercise,
            "manual_therapy": manual,
            "baseline_nprs": baseline,
            "expected_nprs_change": round(expected, 4),
            "planted_nprs_change": round(change, 4),
            "sessions": len(visits),
            "ongoing": ongoing,
        }
        if previous is not None:
            truth["returning"] = True
            truth["screening"] = previous["screening"]  # the same answers, asked again
        self._medication(actor, patient, episode, visits[0], change, first=True, truth=truth)
        screened = self._screen(actor, patient, visits[0], female=female, truth=truth)
        self.at(visits[0] - timedelta(minutes=10))
        consent.record_consent(
            self.uow(),
            actor,
            RecordConsent(
                patient_id=patient.id,
                template_id="dry_needling",
                template_version="1.0",
                **self._signer(patient, (visits[0] - timedelta(minutes=10)).date()),
                method=ConsentMethod.TYPED_NAME,
                signed_at=visits[0] - timedelta(minutes=10),
                copy_given=True,
            ),
        )
        followed = self._followed_muscle(condition, side)
        last: Session | None = None
        for k, visit in enumerate(visits):
            if (visit.date() - screened.screened_at.date()).days >= SCREEN_EVERY_DAYS:
                screened = self._screen(actor, patient, visit, female=female, truth=truth)
            last = self._session(
                actor,
                episode,
                patient,
                visit,
                k,
                len(visits),
                n_sessions,
                baseline,
                change,
                side,
                exercise,
                manual,
                education,
                condition,
                followed,
                pregnant=bool(truth["screening"].get("pregnancy")),
            )
        assert last is not None
        if ongoing:
            return _Course(patient, truth, None)
        self._medication(actor, patient, episode, visits[-1], change, first=False, truth=truth)
        self.at(visits[-1] + timedelta(hours=1))
        episodes.close_episode(
            self.uow(),
            actor,
            CloseEpisode(
                episode_id=episode.id,
                expected_version=episode.version,
                closed_on=visits[-1].date(),
                discharge_reason="Goals met" if change >= 2 else "Plateaued; home programme",
            ),
        )
        return _Course(patient, truth, visits[-1].date())

    def _followed_muscle(self, condition: str, side: Side) -> tuple[str, str] | None:
        """Registry protocol: where the pressure pain threshold is followed (the condition's
        first muscle on the treated side) and its control (the same muscle, other side)."""
        if self.protocol.measures != "registry":
            return None
        muscle = self.muscles.get(self.muscles.condition_muscles[condition][0])
        assert muscle is not None
        other = Side.RIGHT if side is Side.LEFT else Side.LEFT
        return f"{muscle.name}, {side.value}", f"{muscle.name}, {other.value}"

    def _screen(
        self,
        actor: Actor,
        patient: Patient,
        visit: datetime,
        *,
        female: bool,
        truth: dict[str, Any],
    ) -> Screening:
        """Screen before needling: mostly clear, some precautions (acknowledged). The first
        screening's answers are kept: a re-screening repeats them."""
        rng = self.rng
        answers = truth.get("screening")
        if answers is None:
            answers = {q.id: False for q in questionnaire().questions}
            for question, p in SCREENING_PREVALENCE.items():
                if question == "pregnancy" and not female:
                    continue
                answers[question] = rng.random() < p
            truth["screening"] = answers
        notes = {"current_medication": "Listed in the medication log."}
        facts = patient_facts(patient)
        self.at(visit - timedelta(minutes=20))
        return screening.record_screening(
            self.uow(),
            actor,
            RecordScreening(
                patient_id=patient.id,
                answers=answers,
                notes={k: v for k, v in notes.items() if answers.get(k)},
                acknowledged_precautions=sorted(q for q, yes in answers.items() if yes)
                + (["minor"] if is_minor(facts, (visit - timedelta(minutes=20)).date()) else []),
                screened_at=visit - timedelta(minutes=20),
                # a synthetic device patient's stimulation is cleared (issue 13: otherwise
                # stimulation near the chest or arms is refused)
                device_clearance=DeviceClearance(
                    cleared_by="Device clinic (synthetic)",
                    cleared_on=visit.date() - timedelta(days=30),
                    document="Clearance letter in the chart (synthetic)",
                )
                if answers.get("implanted_electrical_device")
                else None,
            ),
        )

    @staticmethod
    def _signer(patient: Patient, day: date) -> dict[str, Any]:
        """Who signs the consent: the patient, or a parent for a minor."""
        if is_minor(patient_facts(patient), day):
            parent = f"Parent of {patient.given_name}"
            return {"signer_name": parent, "signer_relationship": "parent"}
        return {
            "signer_name": f"{patient.given_name} {patient.family_name}",
            "signer_relationship": "patient",
        }

    def _visit_dates(self, start: date, n: int) -> list[datetime]:
        rng = self.rng
        visits = []
        day = start
        for _ in range(n):
            visits.append(_moment(day, rng, hour_from=8))
            day += timedelta(days=rng.choice([3, 4, 7, 7, 7, 10, 14]))
        if visits[-1].date() > self.anchor:
            # Still under way on the clinic's "today": the visits so far, at least three
            # (the course moved earlier if need be), not yet the whole planned course.
            lag = max(timedelta(0), visits[2].date() - self.anchor)
            visits = [v - lag for v in visits]
            past = [v for v in visits if v.date() <= self.anchor]
            visits = past[: max(3, min(len(past), n - 1))]
        return visits

    def _session(
        self,
        actor: Actor,
        episode: Episode,
        patient: Patient,
        visit: datetime,
        k: int,
        n: int,
        planned: int,
        baseline: float,
        change: float,
        side: Side,
        exercise: bool,
        manual: bool,
        education: bool,
        condition: str,
        followed: tuple[str, str] | None,
        *,
        pregnant: bool = False,
    ) -> Session:
        rng = self.rng
        # An episode still under way is part-way along the course planned for it.
        progress = _progress(k, planned)
        nprs = _clip(
            round(baseline - change * progress + rng.gauss(0, self.model.measurement_noise_sd)),
            0,
            10,
        )
        cond = self.conditions.get(condition)
        assert cond is not None
        measures = [MeasurementIn(instrument_id="nprs", answers={"item1": nprs}, taken_at=visit)]
        registry = followed is not None
        if cond.function_instrument and (
            k in (0, n - 1) or (k % 3 == 0 if registry else k == n // 2)
        ):
            measures.append(
                self._function(cond.function_instrument, baseline, change, progress, visit)
            )
        if followed is not None:
            measures += self._pressure_pain_thresholds(followed, baseline, change, progress, visit)
        if cond.rom and (registry or k in (0, n - 1)):
            normal = NORMAL_ROM_DEGREES[cond.rom.joint]
            impairment = min(0.6, 0.05 * baseline + rng.uniform(0, 0.15))
            recovered = impairment * (1 - 0.7 * progress * max(0.0, change) / max(baseline, 1))
            degrees = round(normal * (1 - recovered) + rng.gauss(0, 2), 0)
            rom_side = "midline" if cond.rom.joint == "lumbar_spine" else side.value
            measures.append(
                MeasurementIn(
                    instrument_id="rom",
                    answers={"item1": max(0.0, degrees)},
                    taken_at=visit,
                    context={
                        "joint": cond.rom.joint,
                        "movement": cond.rom.movement,
                        "side": rom_side,
                    },
                )
            )
        sites = self._sites(condition, side, progress, pregnant=pregnant)
        co = []
        if exercise:
            co.append(
                CoInterventionIn(
                    modality=Modality.EXERCISE,
                    description="Supervised exercise",
                    minutes=rng.choice([10, 15, 20]),
                )
            )
        if manual:
            co.append(
                CoInterventionIn(
                    modality=Modality.MANUAL_THERAPY,
                    description="Soft tissue mobilisation",
                    minutes=10,
                )
            )
        if education and k == 0:
            co.append(
                CoInterventionIn(
                    modality=Modality.EDUCATION, description="Explained pain and expected soreness"
                )
            )
        events = self._adverse_events(visit)
        self.at(visit + timedelta(minutes=40))
        note = sessions.record_session(
            self.uow(),
            actor,
            RecordSession(
                episode_id=episode.id,
                started_at=visit,
                subjective=f"Pain {nprs}/10 today."
                if k
                else f"Pain {nprs}/10; onset {episode.onset_date}.",
                objective=f"Trigger points palpated in {len(sites)} muscle(s).",
                assessment="Responding to treatment." if k and change > 1 else "Myofascial pain.",
                plan="Continue plan of care.",
                sites=sites,
                co_interventions=co,
                adverse_events=events,
                measurements=measures,
            ),
        )
        self.sessions += 1
        # The latest note of an episode still under way is sometimes not signed yet.
        ongoing_draft = k == n - 1 and n < planned and rng.random() < 0.5
        if not ongoing_draft:
            self.at(visit + timedelta(minutes=55))
            note = sessions.sign_session(
                self.uow(), actor, SignSession(session_id=note.id, expected_version=note.version)
            )
        return note

    def _sites(
        self, condition: str, side: Side, progress: float, *, pregnant: bool = False
    ) -> list[NeedlingSiteIn]:
        """The sites of one note. In pregnancy the clinician keeps away from the abdomen and
        the lumbopelvic region and uses no electrical stimulation (site_conditions.yaml)."""
        rng = self.rng
        candidates = self.muscles.condition_muscles[condition]
        if pregnant:
            avoid = site_conditions().pregnancy
            kept = [
                m
                for m in candidates
                if not any(
                    rule.reaches(muscle)
                    for rule in (avoid["abdomen"], avoid["lumbopelvic"])
                    if (muscle := self.muscles.get(m)) is not None
                )
            ]
            candidates = kept or ["upper_trapezius"]
        chosen = rng.sample(candidates, k=min(len(candidates), rng.randint(2, 5)))
        spinal = condition in ("neck_pain", "low_back_pain", "tension_type_headache")
        thorax_side = side
        sites = []
        for muscle_id in chosen:
            muscle = self.muscles.get(muscle_id)
            assert muscle is not None
            # Never both sides of the thorax in one session (REFERENCE §1).
            site_side = (
                thorax_side if muscle.thorax or not spinal else rng.choice([Side.LEFT, Side.RIGHT])
            )
            lo, hi = DEPTH_RANGE_MM[muscle.region]
            depth = round(rng.uniform(lo, hi))
            length = next(n for n in NEEDLE_LENGTHS_MM if n >= depth + 5)
            active_p = max(0.1, 0.85 - 0.7 * progress)
            tp = (
                TriggerPoint.ACTIVE
                if rng.random() < active_p
                else (TriggerPoint.LATENT if rng.random() < 0.7 else TriggerPoint.NONE)
            )
            estim = rng.random() < 0.1 and not pregnant
            sites.append(
                NeedlingSiteIn(
                    muscle_id=muscle_id,
                    side=site_side,
                    trigger_point=tp,
                    technique=Technique.PISTONING if rng.random() < 0.75 else Technique.STATIC,
                    needle_gauge_mm=rng.choice([0.25, 0.25, 0.30]),
                    needle_length_mm=float(length),
                    depth_mm=float(depth),
                    insertions=rng.randint(1, 8),
                    local_twitch_responses=rng.randint(1, 5)
                    if tp is TriggerPoint.ACTIVE
                    else rng.randint(0, 1),
                    electrical_stimulation=estim,
                    estim_params=EstimParams(frequency_hz=2, intensity_ma=None, minutes=10)
                    if estim
                    else None,
                    tolerance=rng.choices(
                        [Tolerance.GOOD, Tolerance.FAIR, Tolerance.POOR], [0.8, 0.17, 0.03]
                    )[0],
                )
            )
        return sites

    def _adverse_events(self, visit: datetime) -> list[AdverseEventIn]:
        rng = self.rng
        events = []
        for kind, rate in self.mild_rates.items():
            if rng.random() < rate:
                events.append(
                    AdverseEventIn(
                        kind=kind,
                        severity=Severity.MILD,
                        onset_at=visit + timedelta(minutes=20),
                        description=f"{kind.value.replace('_', ' ').capitalize()}; resolved.",
                    )
                )
        if rng.random() < self.significant_rate:
            events.append(
                AdverseEventIn(
                    kind=rng.choice([AdverseEventKind.FAINTING, AdverseEventKind.WORSE_SYMPTOMS]),
                    severity=Severity.SIGNIFICANT,
                    onset_at=visit + timedelta(minutes=25),
                    description="Needed medical attention; patient advised and followed up.",
                    action_taken="Needling stopped; patient monitored; GP informed.",
                )
            )
        return events

    def _pressure_pain_thresholds(
        self,
        followed: tuple[str, str],
        baseline: float,
        change: float,
        progress: float,
        visit: datetime,
    ) -> list[MeasurementIn]:
        """Algometry before needling, three trials at each site: the treated trigger point
        is more tender than the control and becomes less so as pain falls (simulation)."""
        rng = self.rng
        relief = max(0.0, change) * progress
        out = []
        for site, location, kpa in (
            ("treated", followed[0], 420 - 22 * baseline + 18 * relief),
            ("control", followed[1], 430 - 8 * baseline + 4 * relief),
        ):
            mean = kpa + rng.gauss(0, 25)
            trials = {f"item{j + 1}": round(max(50.0, mean + rng.gauss(0, 15))) for j in range(3)}
            out.append(
                MeasurementIn(
                    instrument_id="ppt",
                    answers=dict(trials),
                    taken_at=visit,
                    context={"site": site, "location": location},
                )
            )
        return out

    def _function(
        self, instrument_id: str, baseline: float, change: float, progress: float, visit: datetime
    ) -> MeasurementIn:
        rng = self.rng
        severity = max(0.0, min(1.0, (baseline - change * progress) / 10 + rng.gauss(0, 0.06)))
        if instrument_id in ("ndi", "odi"):
            answers = _spread(round(severity * 0.8 * 50), 10, 0, 5, rng)
        elif instrument_id == "quickdash":
            answers = _spread(11 + round(severity * 0.8 * 44), 11, 1, 5, rng)
        elif instrument_id == "lefs":
            answers = _spread(round((1 - severity * 0.8) * 80), 20, 0, 4, rng)
        else:  # headache days per month
            answers = {"item1": _clip(round(severity * 20 + rng.gauss(0, 1.5)), 0, 31)}
        return MeasurementIn(instrument_id=instrument_id, answers=answers, taken_at=visit)

    def _medication(
        self,
        actor: Actor,
        patient: Patient,
        episode: Episode,
        visit: datetime,
        change: float,
        *,
        first: bool,
        truth: dict[str, Any],
    ) -> None:
        rng = self.rng
        if first:
            if rng.random() >= 0.6:
                truth["analgesic"] = None
                return
            drug_class = rng.choices(list(names.DRUGS), weights=[0.35, 0.45, 0.08, 0.07, 0.05])[0]
            days = rng.randint(2, 7)
            truth["analgesic"] = {"class": drug_class, "days_before": days}
        else:
            info = truth.get("analgesic")
            if not info:
                return
            drug_class = info["class"]
            reduction = max(0, round(change * 0.9 + rng.gauss(0, 1)))
            days = max(0, info["days_before"] - reduction)
            info["days_after"] = days
        drug, dose = names.DRUGS[drug_class]
        self.at(visit + timedelta(minutes=5))
        outcomes.record_medication_use(
            self.uow(),
            actor,
            RecordMedicationUse(
                patient_id=patient.id,
                episode_id=episode.id,
                drug=drug,
                drug_class=DrugClass(drug_class),
                dose_mg=dose,
                days_per_week=days,
                recorded_on=visit.date(),
            ),
        )


def _moment(day: date, rng: random.Random, *, hour_from: int) -> datetime:
    return datetime.combine(
        day, time(rng.randint(hour_from, 17), rng.choice([0, 15, 30, 45])), tzinfo=UTC
    )


def _progress(k: int, n: int) -> float:
    """Share of the episode's improvement reached by visit k (0 at the first visit, 1 at the
    last), rising fast then levelling off."""
    if n <= 1:
        return 0.0
    tau = max(1.0, (n - 1) / 2.5)
    return (1 - math.exp(-k / tau)) / (1 - math.exp(-(n - 1) / tau))


def _clip(value: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, value)))


def _spread(
    total: int, items: int, lo: int, hi: int, rng: random.Random
) -> dict[str, int | float | None]:
    """Item answers in [lo, hi] that add up to `total` (clipped to what is possible)."""
    values = [lo] * items
    remaining = min(max(total - lo * items, 0), (hi - lo) * items)
    while remaining:
        j = rng.randrange(items)
        if values[j] < hi:
            values[j] += 1
            remaining -= 1
    return {f"item{j + 1}": v for j, v in enumerate(values)}
