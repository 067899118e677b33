"""The import engine: neutral import records → commands → the actions.

For each patient, in order:

1. **Skip** a patient already imported from this source (their external id is in
   `imported_records`): a re-run after a failure or an interruption resumes.
2. **Check** every record the patient holds, collecting every problem (the command's
   validation, our catalogues: condition and ICD-10 code, muscle, instrument and its
   answers; the clinicians named by e-mail; dates inside their episode). A patient with
   any problem is not imported; the report names each problem's file and row (or
   resource), field and reason.
3. **Run the actions** — `import_patient`, `open_episode`, `import_session` (the note as
   signed there, original signer and time), `import_amendment`, `record_measurement`,
   `close_episode` — on an in-memory unit of work (`BulkUnitOfWork`, the one the
   synthetic generator uses: the same action code, checks and audit events, no database
   round trip per action). A rule an action enforces that step 2 did not foresee is
   reported the same way, and the patient is not imported.
4. **Write** the records of a run of patients in one transaction; should that
   transaction fail, each of its patients is written again in a transaction of its own,
   so that one bad patient leaves nothing of itself and does not stop the others.

A dry run does steps 1-3 and writes nothing."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import ValidationError

from needlepoint.actions import episodes as episode_actions
from needlepoint.actions import importing as import_actions
from needlepoint.actions import outcomes as outcome_actions
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.analytics_marks import mark_changes
from needlepoint.adapters.db.engine import WRITE_OPTION, scope_to_clinic
from needlepoint.adapters.db.tables import imported_records, patients, users
from needlepoint.adapters.db.unit_of_work import (
    BulkUnitOfWork,
    prepare_inserts,
    write_prepared,
)
from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import conditions, muscle_ids
from needlepoint.domain.commands import (
    AdverseEventIn,
    CloseEpisode,
    CoInterventionIn,
    EstimParams,
    ImportAmendment,
    ImportPatient,
    ImportSession,
    MeasurementIn,
    NeedlingSiteIn,
    OpenEpisode,
    RecordMeasurement,
)
from needlepoint.domain.entities import Clinic, Entity, TrainingRecord, User
from needlepoint.domain.episodes import diagnose
from needlepoint.domain.errors import DomainError, PermissionDenied
from needlepoint.domain.notes import FUTURE_TOLERANCE
from needlepoint.domain.outcomes import score_submission
from needlepoint.domain.permissions import Permission, allows
from needlepoint.domain.site_safety import check_named_sites
from needlepoint.importing.records import (
    ClinicianRef,
    ImportedEpisode,
    ImportedMeasurement,
    ImportedPatient,
    ImportedSession,
    ImportedSite,
    Origin,
    Problem,
)

BATCH_PATIENTS = 25
"""Patients written per transaction (each patient is checked whole in memory first)."""


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    source: str
    patients_read: int = 0
    patients_imported: int = 0
    patients_skipped: int = 0  # already imported by an earlier run
    patients_failed: int = 0
    sessions_imported: int = 0
    measurements_imported: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "source": self.source,
            "patients_read": self.patients_read,
            "patients_imported": self.patients_imported,
            "patients_skipped": self.patients_skipped,
            "patients_failed": self.patients_failed,
            "sessions_imported": self.sessions_imported,
            "measurements_imported": self.measurements_imported,
            "seconds": round(self.seconds, 3),
            "problems": [
                {
                    "source": p.origin.source,
                    "record": p.origin.locator,
                    "field": p.field,
                    "reason": p.reason,
                    "patient_external_id": p.patient_external_id,
                }
                for p in self.problems
            ],
        }


@dataclass
class _Clinic:
    """What every patient's actions read about the importing clinic, read once."""

    clinic: Clinic
    staff: list[User]
    training: list[TrainingRecord]
    by_email: dict[str, User]
    imported: set[str]  # external ids of patients already imported from this source
    mrns: set[str]


def _load_clinic(engine: sa.Engine, actor: Actor, source: str) -> _Clinic:
    from needlepoint.adapters.db.tables import clinics, training_records

    with engine.connect() as conn, conn.begin():
        scope_to_clinic(conn, actor.clinic_id)
        clinic_row = (
            conn.execute(sa.select(clinics).where(clinics.c.id == actor.clinic_id)).mappings().one()
        )
        staff = [
            User(**r)
            for r in conn.execute(sa.select(users).where(users.c.clinic_id == actor.clinic_id))
            .mappings()
            .all()
        ]
        training = [
            TrainingRecord(**r)
            for r in conn.execute(
                sa.select(training_records).where(training_records.c.clinic_id == actor.clinic_id)
            )
            .mappings()
            .all()
        ]
        imported = set(
            conn.execute(
                sa.select(imported_records.c.external_id).where(
                    imported_records.c.clinic_id == actor.clinic_id,
                    imported_records.c.kind == "patient",
                    imported_records.c.source == source,
                )
            ).scalars()
        )
        mrns = set(
            conn.execute(sa.select(patients.c.mrn).where(patients.c.clinic_id == actor.clinic_id))
            .scalars()
            .all()
        )
    return _Clinic(
        clinic=Clinic(**clinic_row),
        staff=staff,
        training=training,
        by_email={u.email.lower(): u for u in staff},
        imported=imported,
        mrns=mrns,
    )


def run_import(
    engine: sa.Engine,
    actor: Actor,
    patients_in: Iterable[ImportedPatient],
    *,
    source: str,
    dry_run: bool,
    problems: Iterable[Problem] = (),
    on_patient: Callable[[ImportedPatient], None] | None = None,
    batch_patients: int = BATCH_PATIENTS,
    fail_after: int | None = None,
) -> ImportReport:
    """Import `patients_in` (read by a reader, which found `problems`) into the actor's
    clinic through the actions. `fail_after`: stop (raise) after writing that many
    batches — a test's way to interrupt a run."""
    started = time.perf_counter()
    report = ImportReport(dry_run=dry_run, source=source, problems=list(problems))
    failed_ids = {p.patient_external_id for p in report.problems if p.patient_external_id}
    report.patients_failed = len(failed_ids)
    report.patients_read = len(failed_ids)
    known = _load_clinic(engine, actor, source)
    me = next((u for u in known.staff if u.id == actor.user_id), None)
    if me is None or not me.is_active or not allows(me.role, Permission.IMPORT_RECORDS):
        raise PermissionDenied("only the clinic's owner imports records from another system")
    preload: list[Entity] = [known.clinic, *known.staff, *known.training]
    pending: list[tuple[ImportedPatient, list[Entity], int, int]] = []
    batches = 0
    seen_mrns: dict[str, str] = {}

    def flush() -> None:
        nonlocal batches
        if not pending:
            return
        if dry_run:
            for _patient, _, sessions, measurements in pending:
                _count(report, sessions, measurements)
            pending.clear()
            return
        try:
            _write(engine, actor.clinic_id, [e for _, adds, _, _ in pending for e in adds])
            for _, _, sessions, measurements in pending:
                _count(report, sessions, measurements)
        except Exception:  # one of them cannot be written: each on its own
            for patient, adds, sessions, measurements in pending:
                try:
                    _write(engine, actor.clinic_id, adds)
                    _count(report, sessions, measurements)
                except Exception as exc:  # reported, the others go on
                    report.patients_failed += 1
                    report.problems.append(
                        Problem(
                            patient.origin,
                            "-",
                            f"could not be written: {getattr(exc, 'detail', None) or exc}",
                            patient.external_id,
                        )
                    )
        pending.clear()
        batches += 1
        if fail_after is not None and batches >= fail_after:
            raise RuntimeError(f"interrupted after {batches} batches (fail_after)")

    for patient in patients_in:
        report.patients_read += 1
        if patient.external_id in known.imported:
            report.patients_skipped += 1
        else:
            found = check_patient(patient, known, seen_mrns)
            if not found:
                adds, found, sessions, measurements = _run_actions(
                    patient, actor, source, preload, known
                )
                if not found:
                    pending.append((patient, adds, sessions, measurements))
            if found:
                report.patients_failed += 1
                report.problems += found
        if on_patient is not None:
            on_patient(patient)
        if len(pending) >= batch_patients:
            flush()
    flush()
    report.seconds = time.perf_counter() - started
    return report


def _count(report: ImportReport, sessions: int, measurements: int) -> None:
    report.patients_imported += 1
    report.sessions_imported += sessions
    report.measurements_imported += measurements


def _write(engine: sa.Engine, clinic_id: UUID, adds: list[Entity]) -> None:
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
        conn.begin()
        scope_to_clinic(conn, clinic_id)
        write_prepared(conn, prepare_inserts(conn.dialect, adds))
        mark_changes(conn, [], adds, [])
        conn.commit()


# -- step 2: check everything, collect every problem ------------------------------------


def _problems_of(origin: Origin, patient: str, exc: ValidationError | DomainError) -> list[Problem]:
    if isinstance(exc, ValidationError):
        out = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "-"
            out.append(Problem(origin, _column(loc), str(err["msg"]), patient))
        return out
    fields = exc.errors or [{"field": exc.field, "message": exc.detail}]
    return [
        Problem(
            origin,
            _column(str(f.get("field") or "-")),
            str(f.get("message") or exc.detail),
            patient,
        )
        for f in fields
    ]


_RENAMED = {
    "estim_params.frequency_hz": "estim_frequency_hz",
    "estim_params.intensity_ma": "estim_intensity_ma",
    "estim_params.minutes": "estim_minutes",
}


def _column(loc: str) -> str:
    """A command's field path as the record's (the CSV's) column: `sites.0.muscle_id`
    → `muscle_id` (the problem's origin already names the site's row)."""
    parts = loc.split(".")
    while len(parts) > 1 and parts[0] in {
        "sites",
        "measurements",
        "adverse_events",
        "co_interventions",
    }:
        parts = parts[2:] if len(parts) > 2 and parts[1].isdigit() else parts[1:]
    out = ".".join(parts) or loc
    return _RENAMED.get(out, out)


def _user(
    ref: ClinicianRef, known: _Clinic, column: str, origin: Origin, patient: str, need: Permission
) -> tuple[User | None, list[Problem]]:
    user = known.by_email.get((ref.email or "").lower())
    if user is None:
        return None, [
            Problem(
                origin, column, f"no staff member with the e-mail {ref} in this clinic", patient
            )
        ]
    if not allows(user.role, need):
        return user, [
            Problem(
                origin,
                column,
                f"{user.full_name} is a {user.role.value}, who may not "
                f"{need.value.replace('_', ' ')}",
                patient,
            )
        ]
    return user, []


def check_patient(
    patient: ImportedPatient, known: _Clinic, seen_mrns: dict[str, str]
) -> list[Problem]:
    """Every problem of one patient's records (empty: the actions may run)."""
    ext = patient.external_id
    found: list[Problem] = []
    try:
        _patient_command(patient, "csv")
    except ValidationError as exc:
        found += _problems_of(patient.origin, ext, exc)
    if patient.mrn in known.mrns:
        found.append(
            Problem(
                patient.origin,
                "mrn",
                "a patient with this chart number (MRN) is already in the clinic",
                ext,
            )
        )
    elif seen_mrns.setdefault(patient.mrn, ext) != ext:
        found.append(
            Problem(
                patient.origin,
                "mrn",
                f"the same chart number as patient {seen_mrns[patient.mrn]}",
                ext,
            )
        )
    now = datetime.now(UTC)
    for episode in patient.episodes:
        found += _check_episode(episode, known, ext, now)
    return found


@functools.cache
def known_icd10_codes() -> frozenset[str]:
    """The ICD-10-CM codes of our catalogue: each condition's default and the billable
    codes offered in `billing.yaml` (each verified against the FY2026 tabular list, see
    its sources). An imported episode coded otherwise is reported, not stored unverified."""
    table = billing_data().icd10cm
    codes = {c.code for c in table.myofascial}
    codes |= {c.code for cs in table.by_condition.values() for c in cs}
    codes |= {code for beneath in table.headers.values() for code in beneath}
    codes |= {c.icd10.code for c in conditions().conditions}
    return frozenset(codes)


def _check_episode(
    episode: ImportedEpisode, known: _Clinic, ext: str, now: datetime
) -> list[Problem]:
    o = episode.origin
    found: list[Problem] = []
    _, problems = _user(
        episode.clinician, known, "clinician_email", o, ext, Permission.OPEN_EPISODE
    )
    found += problems
    try:
        diagnose(episode.condition, episode.icd10_code, episode.body_region)
    except DomainError as exc:
        found += _problems_of(o, ext, exc)
    else:
        if episode.icd10_code and episode.icd10_code.upper() not in known_icd10_codes():
            found.append(
                Problem(
                    o,
                    "icd10_code",
                    f"{episode.icd10_code} is not an ICD-10-CM code of our catalogue "
                    "(billing.yaml); code the episode with one of its codes",
                    ext,
                )
            )
    try:
        OpenEpisode(
            patient_id=uuid.UUID(int=0),
            condition=episode.condition,
            onset_date=episode.onset_date,
            opened_on=episode.opened_on,
            goals=episode.goals,
            icd10_code=episode.icd10_code,
            body_region=episode.body_region,
        )
    except ValidationError as exc:
        found += _problems_of(o, ext, exc)
    if episode.closed_on is not None and episode.closed_on < episode.opened_on:
        found.append(Problem(o, "closed_on", "the episode closes before it opened", ext))
    for session in episode.sessions:
        found += _check_session(session, episode, known, ext, now)
    for m in episode.measurements:
        found += _check_measurement(m, ext, now)
    return found


def _check_session(
    s: ImportedSession, episode: ImportedEpisode, known: _Clinic, ext: str, now: datetime
) -> list[Problem]:
    o = s.origin
    found: list[Problem] = []
    _, problems = _user(s.clinician, known, "clinician_email", o, ext, Permission.RECORD_SESSION)
    found += problems
    if s.signature is not None:
        _, problems = _user(
            s.signature.signer, known, "signed_by_email", o, ext, Permission.SIGN_SESSION
        )
        found += problems
        if s.signature.signed_at < s.started_at:
            found.append(
                Problem(o, "signed_at", "the note is signed before the session started", ext)
            )
        if s.signature.signed_at > now + FUTURE_TOLERANCE:
            found.append(Problem(o, "signed_at", "this time is in the future", ext))
    elif s.amendments:
        found.append(
            Problem(
                s.amendments[0].origin,
                "session_external_id",
                "only a signed note has amendments",
                ext,
            )
        )
    if s.started_at > now + FUTURE_TOLERANCE:
        found.append(Problem(o, "started_at", "this time is in the future", ext))
    if s.started_at.date() < episode.opened_on:
        found.append(
            Problem(
                o,
                "started_at",
                f"the session is before its episode opened ({episode.opened_on})",
                ext,
            )
        )
    if episode.closed_on is not None and s.started_at.date() > episode.closed_on:
        found.append(
            Problem(
                o,
                "started_at",
                f"the session is after its episode closed ({episode.closed_on})",
                ext,
            )
        )
    known_muscles = muscle_ids()
    for site in s.sites:
        found += _check_site(site, known_muscles, ext)
    for co in s.co_interventions:
        try:
            CoInterventionIn(modality=co.modality, description=co.description, minutes=co.minutes)  # type: ignore[arg-type]
        except ValidationError as exc:
            found += _problems_of(co.origin, ext, exc)
    for ae in s.adverse_events:
        try:
            _adverse_event(ae)
        except ValidationError as exc:
            found += _problems_of(ae.origin, ext, exc)
    for m in s.measurements:
        found += _check_measurement(m, ext, now)
    for a in s.amendments:
        _, problems = _user(
            a.author, known, "author_email", a.origin, ext, Permission.AMEND_SESSION
        )
        found += problems
        if s.signature is not None and a.written_at < s.signature.signed_at:
            found.append(
                Problem(
                    a.origin, "written_at", "the amendment is dated before the note was signed", ext
                )
            )
        if not a.reason.strip() or not a.text.strip():
            found.append(
                Problem(
                    a.origin,
                    "reason" if not a.reason.strip() else "text",
                    "a value is required",
                    ext,
                )
            )
    return found


def _check_site(site: ImportedSite, known_muscles: frozenset[str], ext: str) -> list[Problem]:
    try:
        cmd = _site(site)
    except ValidationError as exc:
        return _problems_of(site.origin, ext, exc)
    if site.muscle_id not in known_muscles:
        return [
            Problem(
                site.origin,
                "muscle_id",
                f"'{site.muscle_id}' is not a muscle in the catalogue",
                ext,
            )
        ]
    try:
        check_named_sites([cmd])
    except DomainError as exc:
        return _problems_of(site.origin, ext, exc)
    return []


def _check_measurement(m: ImportedMeasurement, ext: str, now: datetime) -> list[Problem]:
    try:
        scored = score_submission(
            m.instrument_id, dict(m.answers), dict(m.context) if m.context else None
        )
    except DomainError as exc:
        field = exc.field or "-"
        return [
            Problem(
                m.origin,
                "instrument_id" if field == "instrument_id" else "answers",
                f"{field}: {exc.detail}" if field not in ("instrument_id", "-") else exc.detail,
                ext,
            )
        ]
    found: list[Problem] = []
    if m.score is not None and (scored.score is None or abs(scored.score - m.score) > 1e-6):
        found.append(
            Problem(
                m.origin,
                "score",
                f"the answers score {scored.score}, not {m.score} "
                f"(our scoring of {m.instrument_id})",
                ext,
            )
        )
    if m.taken_at > now + FUTURE_TOLERANCE:
        found.append(Problem(m.origin, "taken_at", "this time is in the future", ext))
    return found


# -- step 3: the actions -------------------------------------------------------------------


def _patient_command(p: ImportedPatient, source: str) -> ImportPatient:
    return ImportPatient(
        source=source,  # type: ignore[arg-type]
        external_id=p.external_id,
        mrn=p.mrn,
        given_name=p.given_name,
        family_name=p.family_name,
        birth_date=p.birth_date,
        sex=p.sex,  # type: ignore[arg-type]
        phone=p.phone,
        email=p.email,
    )


def _site(s: ImportedSite) -> NeedlingSiteIn:
    estim = None
    if (
        s.estim_frequency_hz is not None
        or s.estim_minutes is not None
        or s.estim_intensity_ma is not None
    ):
        estim = EstimParams(
            frequency_hz=s.estim_frequency_hz,  # type: ignore[arg-type]
            intensity_ma=s.estim_intensity_ma,
            minutes=s.estim_minutes,  # type: ignore[arg-type]
        )
    return NeedlingSiteIn.model_validate(
        {
            "muscle_id": s.muscle_id,
            "side": s.side,
            "trigger_point": s.trigger_point,
            "technique": s.technique,
            "needle_gauge_mm": s.needle_gauge_mm,
            "needle_length_mm": s.needle_length_mm,
            "depth_mm": s.depth_mm,
            "insertions": s.insertions,
            "local_twitch_responses": s.local_twitch_responses,
            "electrical_stimulation": s.electrical_stimulation,
            "estim_params": estim,
            "tolerance": s.tolerance,
            "notes": s.notes,
            "approach": s.approach,
            "override_reason": s.override_reason,
            "override_code": s.override_code,
        }
    )


def _adverse_event(ae: Any) -> AdverseEventIn:
    return AdverseEventIn.model_validate(
        {
            "kind": ae.kind,
            "severity": ae.severity,
            "onset_at": ae.onset_at,
            "description": ae.description,
            "action_taken": ae.action_taken,
            "reportable": ae.reportable,
            "reported_at": ae.reported_at,
        }
    )


def _measurement(m: ImportedMeasurement) -> MeasurementIn:
    return MeasurementIn(
        instrument_id=m.instrument_id,
        answers=dict(m.answers),
        taken_at=m.taken_at,
        context=dict(m.context) if m.context else None,
    )


def _run_actions(
    patient: ImportedPatient,
    actor: Actor,
    source: str,
    preload: list[Entity],
    known: _Clinic,
) -> tuple[list[Entity], list[Problem], int, int]:
    """Run the patient's actions on an in-memory unit of work: the records to write, or
    the problem an action found (then nothing of the patient is kept)."""
    uow = BulkUnitOfWork(None)
    uow.preload(preload)
    ext = patient.external_id
    origin = patient.origin
    sessions = measurements = 0
    try:
        registered = import_actions.import_patient(uow, actor, _patient_command(patient, source))
        for episode in sorted(patient.episodes, key=lambda e: (e.opened_on, e.external_id)):
            origin = episode.origin
            clinician = known.by_email[(episode.clinician.email or "").lower()]
            opened = episode_actions.open_episode(
                uow,
                actor,
                OpenEpisode(
                    patient_id=registered.id,
                    condition=episode.condition,
                    onset_date=episode.onset_date,
                    opened_on=episode.opened_on,
                    goals=episode.goals,
                    icd10_code=episode.icd10_code,
                    body_region=episode.body_region,
                    clinician_id=clinician.id,
                ),
            )
            for s in sorted(episode.sessions, key=lambda s: (s.started_at, s.external_id)):
                origin = s.origin
                signer = (
                    known.by_email[(s.signature.signer.email or "").lower()]
                    if s.signature
                    else None
                )
                note = import_actions.import_session(
                    uow,
                    actor,
                    ImportSession(
                        episode_id=opened.id,
                        clinician_id=known.by_email[(s.clinician.email or "").lower()].id,
                        source=source,  # type: ignore[arg-type]
                        external_id=f"{ext}/{s.external_id}",
                        started_at=s.started_at,
                        subjective=s.subjective,
                        objective=s.objective,
                        assessment=s.assessment,
                        plan=s.plan,
                        sites=[_site(x) for x in s.sites],
                        co_interventions=[
                            CoInterventionIn.model_validate(
                                {
                                    "modality": c.modality,
                                    "description": c.description,
                                    "minutes": c.minutes,
                                }
                            )
                            for c in s.co_interventions
                        ],
                        adverse_events=[_adverse_event(a) for a in s.adverse_events],
                        measurements=[_measurement(m) for m in s.measurements],
                        signed_by=signer.id if signer else None,
                        signed_at=s.signature.signed_at if s.signature else None,
                    ),
                )
                sessions += 1
                measurements += len(s.measurements)
                for a in sorted(s.amendments, key=lambda a: a.written_at):
                    origin = a.origin
                    import_actions.import_amendment(
                        uow,
                        actor,
                        ImportAmendment(
                            session_id=note.id,
                            author_id=known.by_email[(a.author.email or "").lower()].id,
                            written_at=a.written_at,
                            reason=a.reason,
                            text=a.text,
                        ),
                    )
            for m in sorted(episode.measurements, key=lambda m: m.taken_at):
                origin = m.origin
                outcome_actions.record_measurement(
                    uow,
                    actor,
                    RecordMeasurement(
                        patient_id=registered.id,
                        episode_id=opened.id,
                        instrument_id=m.instrument_id,
                        answers=dict(m.answers),
                        taken_at=m.taken_at,
                        context=dict(m.context) if m.context else None,
                    ),
                )
                measurements += 1
            if episode.closed_on is not None:
                origin = episode.origin
                episode_actions.close_episode(
                    uow,
                    actor,
                    CloseEpisode(
                        episode_id=opened.id,
                        expected_version=opened.version,
                        closed_on=episode.closed_on,
                        discharge_reason=episode.discharge_reason or "",
                    ),
                )
    except (DomainError, ValidationError) as exc:
        return [], _problems_of(origin, ext, exc), 0, 0
    adds, updates = uow.drain()
    # An episode closed in the same run is still a new record: its insert carries the
    # closing (the bulk unit of work folds the change into the pending insert).
    assert not updates
    return adds, [], sessions, measurements
