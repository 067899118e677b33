"""The research export's de-identification rules (`domain/research.py`): Safe Harbor's
identifiers never leave, ages over 89 are one group, a patient's date shifts keep the
intervals, and after suppression every equivalence class holds at least k patients."""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from needlepoint.domain.catalogue import conditions
from needlepoint.domain.entities import (
    AdverseEvent,
    Episode,
    Measurement,
    MedicationUse,
    NeedlingSite,
    Patient,
    Session,
)
from needlepoint.domain.enums import (
    AdverseEventKind,
    DrugClass,
    EpisodeStatus,
    SessionStatus,
    Severity,
    Sex,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)
from needlepoint.domain.research import (
    MAX_SHIFT_DAYS,
    SAFE_HARBOR,
    ClinicRecords,
    ResearchRelease,
    age_band,
    age_on,
    deidentify,
    draw_offset,
    k_anonymize,
    released_date,
    table_specs,
)

CONDITIONS = [c.id for c in conditions().conditions]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


# --- ages -------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=130))
def test_ages_over_89_are_one_group_and_younger_ages_fall_in_their_ten_year_band(
    age: int,
) -> None:
    band = age_band(age)
    if age > 89:
        assert band == "90+"
    else:
        low, high = (int(x) for x in band.split("-"))
        assert low <= age <= high
        assert high - low == 9
        assert high <= 89


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 1, 1)),
)
def test_age_is_completed_years(birth: date, on: date) -> None:
    age = age_on(birth, on)
    if on < birth:
        assert age == 0
        return

    # the birthday of `age` has passed, the next one has not (29 February → 1 March)
    def birthday(years: int) -> date:
        try:
            return birth.replace(year=birth.year + years)
        except ValueError:
            return date(birth.year + years, 3, 1)

    assert birthday(age) <= on
    if birth.year + age + 1 <= 9999:
        assert on < birthday(age + 1)


# --- dates ------------------------------------------------------------------------------


@given(st.randoms(use_true_random=False))
def test_a_patients_date_shift_is_never_zero_and_at_most_a_year(rng: random.Random) -> None:
    offset = draw_offset(rng)
    assert offset != 0
    assert abs(offset) <= MAX_SHIFT_DAYS


@given(
    st.lists(st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)), min_size=2),
    st.integers(min_value=-MAX_SHIFT_DAYS, max_value=MAX_SHIFT_DAYS).filter(bool),
)
def test_shifting_keeps_every_interval_and_the_year_mode_keeps_only_the_year(
    days: list[date], offset: int
) -> None:
    shifted = [released_date(d, offset, "shift") for d in days]
    for (a, b), (sa, sb) in zip(pairwise(days), pairwise(shifted), strict=True):
        assert isinstance(sa, date)
        assert isinstance(sb, date)
        assert (sb - sa) == (b - a)
    assert all(s != d for s, d in zip(shifted, days, strict=True))
    assert [released_date(d, offset, "year") for d in days] == [d.year for d in days]


# --- k-anonymity ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    patient: int
    key: tuple[str, ...]


records_strategy = st.lists(
    st.builds(
        Rec,
        st.integers(min_value=0, max_value=30),
        st.tuples(st.sampled_from("ab"), st.sampled_from("xyz"), st.sampled_from("pq")),
    ),
    max_size=120,
)


@given(records_strategy, st.integers(min_value=1, max_value=8))
def test_after_suppression_every_class_holds_at_least_k_patients(
    records: list[Rec], k: int
) -> None:
    kept, report = k_anonymize(records, lambda r: r.key, lambda r: r.patient, k)
    released: dict[tuple[str, ...], set[int]] = {}
    for r in kept:
        released.setdefault(r.key, set()).add(r.patient)
    assert all(len(patients) >= k for patients in released.values())
    # nothing is suppressed that did not have to be: every class of k or more is kept whole
    everyone: dict[tuple[str, ...], set[int]] = {}
    for r in records:
        everyone.setdefault(r.key, set()).add(r.patient)
    for key, patients in everyone.items():
        whole = [r for r in records if r.key == key]
        if len(patients) >= k:
            assert [r for r in kept if r.key == key] == whole
    # the report's figures are the truth
    assert report.records_in == len(records)
    assert report.records_suppressed == len(records) - len(kept)
    assert report.records_kept == len(kept)
    assert report.patients_in == len({r.patient for r in records})
    assert report.patients_suppressed == len(
        {r.patient for r in records} - {r.patient for r in kept}
    )
    assert sum(c.records for c in report.classes) == len(records)
    assert {c.key for c in report.classes if not c.suppressed} == set(released)
    assert report.smallest_kept_class == (
        min(len(p) for p in released.values()) if released else None
    )


def test_a_class_is_counted_in_patients_not_in_rows() -> None:
    """One patient's three episodes of the same kind are one patient, not three."""
    same = ("90+", "male", "knee_pain", "knee")
    records = [Rec(1, same), Rec(1, same), Rec(1, same), Rec(2, same)]
    kept, report = k_anonymize(records, lambda r: r.key, lambda r: r.patient, 3)
    assert kept == []
    assert report.records_suppressed == 4
    assert report.patients_suppressed == 2
    assert report.classes[0].patients == 2
    assert report.classes[0].records == 4


# --- the release --------------------------------------------------------------------------

NAME = st.text(alphabet=string.ascii_letters, min_size=8, max_size=16).map(
    lambda s: "Q" + s + "z"  # capitals inside: no catalogue id or enumeration looks like it
)


@dataclass
class Synthetic:
    records: ClinicRecords
    identifiers: list[str]  # every identifier value and free text of the input


@st.composite
def clinics(draw: st.DrawFn) -> Synthetic:
    ids = random.Random(draw(st.integers(min_value=0, max_value=2**32)))

    def uuid4() -> UUID:  # drawn through hypothesis, so a failing example replays
        return UUID(int=ids.getrandbits(128), version=4)

    clinic_id = uuid4()
    identifiers: list[str] = []
    patients: list[Patient] = []
    episodes: list[Episode] = []
    sessions: list[Session] = []
    sites: list[NeedlingSite] = []
    measurements: list[Measurement] = []
    events: list[AdverseEvent] = []
    medication: list[MedicationUse] = []
    staff = uuid4()
    identifiers += [str(clinic_id), clinic_id.hex, str(staff), staff.hex]
    for i in range(draw(st.integers(min_value=1, max_value=12))):
        given_name, family_name = draw(NAME), draw(NAME)
        birth = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(2005, 12, 31)))
        mrn = f"MRN-{draw(st.integers(min_value=0, max_value=10**9)):09d}"
        phone = f"+1-555-{draw(st.integers(min_value=0, max_value=9999)):04d}"
        email = f"{given_name}.{family_name}@mail.example".lower()
        patient = Patient(
            id=uuid4(),
            clinic_id=clinic_id,
            mrn=mrn,
            given_name=given_name,
            family_name=family_name,
            birth_date=birth,
            sex=draw(st.sampled_from(list(Sex))),
            created_at=NOW,
            updated_at=NOW,
            phone=phone,
            email=email,
        )
        patients.append(patient)
        identifiers += [given_name, family_name, mrn, phone, email, birth.isoformat()]
        identifiers += [str(patient.id), patient.id.hex]
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            opened = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 1, 1)))
            goals, reason = draw(NAME), draw(NAME)
            closed = draw(st.one_of(st.none(), st.just(opened + timedelta(days=40))))
            episode = Episode(
                id=uuid4(),
                clinic_id=clinic_id,
                patient_id=patient.id,
                clinician_id=staff,
                condition=draw(st.sampled_from(CONDITIONS)),
                icd10_code="M54.2",
                body_region=draw(st.sampled_from(["neck", "lumbar", draw(NAME)])),
                onset_date=opened - timedelta(days=draw(st.integers(1, 400))),
                opened_on=opened,
                goals=goals,
                status=EpisodeStatus.CLOSED if closed else EpisodeStatus.OPEN,
                created_at=NOW,
                updated_at=NOW,
                closed_on=closed,
                discharge_reason=reason if closed else None,
            )
            episodes.append(episode)
            identifiers += [goals, str(episode.id), episode.id.hex]
            if closed:
                identifiers.append(reason)
            for n in range(draw(st.integers(min_value=0, max_value=3))):
                soap = [draw(NAME) for _ in range(4)]
                started = datetime.combine(opened, datetime.min.time(), UTC) + timedelta(
                    days=7 * n, hours=14
                )
                session = Session(
                    id=uuid4(),
                    clinic_id=clinic_id,
                    patient_id=patient.id,
                    episode_id=episode.id,
                    clinician_id=staff,
                    started_at=started,
                    subjective=soap[0],
                    objective=soap[1],
                    assessment=soap[2],
                    plan=soap[3],
                    status=draw(st.sampled_from(list(SessionStatus))),
                    created_at=NOW,
                    updated_at=NOW,
                    signed_by=staff,
                    signed_at=started,
                    cpt_code="20560",
                )
                sessions.append(session)
                identifiers += [*soap, str(session.id), session.id.hex]
                note, override = draw(NAME), draw(NAME)
                site = NeedlingSite(
                    id=uuid4(),
                    clinic_id=clinic_id,
                    session_id=session.id,
                    position=0,
                    muscle_id="upper_trapezius",
                    side=Side.LEFT,
                    trigger_point=TriggerPoint.ACTIVE,
                    technique=Technique.PISTONING,
                    needle_gauge_mm=0.25,
                    needle_length_mm=30,
                    depth_mm=15,
                    insertions=4,
                    local_twitch_responses=2,
                    electrical_stimulation=False,
                    tolerance=Tolerance.GOOD,
                    notes=note,
                    override_reason=override,
                )
                sites.append(site)
                identifiers += [note, override, str(site.id)]
                activity = draw(NAME)
                measurement = Measurement(
                    id=uuid4(),
                    clinic_id=clinic_id,
                    patient_id=patient.id,
                    instrument_id="psfs",
                    instrument_version="1.0",
                    answers={"activity1": activity, "item1": 4},
                    taken_at=started,
                    recorded_by=staff,
                    created_at=NOW,
                    score=4.0,
                    episode_id=episode.id,
                    session_id=session.id,
                    context={"joint": "knee", "site": draw(NAME), "side": "Left knee " + activity},
                )
                measurements.append(measurement)
                identifiers += [activity, str(measurement.id)]
                description, action_taken = draw(NAME), draw(NAME)
                events.append(
                    AdverseEvent(
                        id=uuid4(),
                        clinic_id=clinic_id,
                        patient_id=patient.id,
                        kind=AdverseEventKind.BRUISING,
                        severity=Severity.MILD,
                        onset_at=started + timedelta(hours=2),
                        description=description,
                        recorded_by=staff,
                        created_at=NOW,
                        session_id=session.id,
                        action_taken=action_taken,
                    )
                )
                identifiers += [description, action_taken]
                drug = draw(NAME)
                medication.append(
                    MedicationUse(
                        id=uuid4(),
                        clinic_id=clinic_id,
                        patient_id=patient.id,
                        drug=drug,
                        drug_class=DrugClass.NSAID,
                        days_per_week=3,
                        recorded_on=opened + timedelta(days=7 * n),
                        recorded_by=staff,
                        created_at=NOW,
                        episode_id=episode.id,
                        dose_mg=400,
                    )
                )
                identifiers.append(drug)
        assert i >= 0
    records = ClinicRecords(
        time_zone="America/New_York",
        patients=patients,
        episodes=episodes,
        sessions=sessions,
        sites=sites,
        measurements=measurements,
        adverse_events=events,
        medication=medication,
    )
    return Synthetic(records, identifiers)


def _cells(release: ResearchRelease) -> list[str]:
    return [
        v.isoformat() if isinstance(v, date) else str(v)
        for table in release.tables
        for row in table.rows
        for v in row.values()
        if v is not None
    ]


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(clinics(), st.sampled_from(["shift", "year"]), st.randoms(use_true_random=False))
def test_no_released_cell_contains_any_identifier_or_free_text_of_the_input(
    clinic: Synthetic, dates: str, rng: random.Random
) -> None:
    release = deidentify(clinic.records, k=1, dates=dates, rng=rng)  # type: ignore[arg-type]
    assert release.table("episodes").rows, "k=1 releases every episode"
    cells = _cells(release)
    for value in clinic.identifiers:
        found = [c for c in cells if value.lower() in c.lower()]
        assert not found, f"{value!r} released in {found[:3]}"


@SETTINGS
@given(clinics(), st.randoms(use_true_random=False))
def test_a_patients_released_dates_keep_their_intervals(
    clinic: Synthetic, rng: random.Random
) -> None:
    release = deidentify(clinic.records, k=1, dates="shift", rng=rng)
    episodes = {r["episode"]: r for r in release.table("episodes").rows}
    truth = {e.opened_on: e for e in clinic.records.episodes}
    for row in release.table("sessions").rows:
        opened = episodes[row["episode"]]["opened"]
        assert isinstance(opened, date)
        assert isinstance(row["date"], date)
        assert (row["date"] - opened).days == row["day"]
    # every patient's episodes are shifted by one offset: the gap between two episodes
    # of one patient is the true gap
    by_patient: dict[object, list[date]] = {}
    for row in release.table("episodes").rows:
        assert isinstance(row["opened"], date)
        by_patient.setdefault(row["patient"], []).append(row["opened"])
    true_by_patient: dict[UUID, list[date]] = {}
    for e in clinic.records.episodes:
        true_by_patient.setdefault(e.patient_id, []).append(e.opened_on)
    released_gaps = sorted(sorted((max(d) - min(d)).days for d in by_patient.values()))
    true_gaps = sorted((max(d) - min(d)).days for d in true_by_patient.values())
    assert released_gaps == true_gaps
    assert truth  # the input had episodes


@SETTINGS
@given(clinics(), st.integers(min_value=2, max_value=6), st.randoms(use_true_random=False))
def test_every_released_episode_class_holds_k_patients_and_nothing_of_a_suppressed_one_leaves(
    clinic: Synthetic, k: int, rng: random.Random
) -> None:
    release = deidentify(clinic.records, k=k, dates="year", rng=rng)
    episodes = release.table("episodes").rows
    classes: dict[tuple[object, ...], set[object]] = {}
    for row in episodes:
        key = (row["age_band"], row["sex"], row["condition"], row["region"])
        classes.setdefault(key, set()).add(row["patient"])
    assert all(len(p) >= k for p in classes.values())
    assert len(episodes) == release.report.records_kept
    released = {row["episode"] for row in episodes}
    sessions = {row["session"] for row in release.table("sessions").rows}
    assert {row["episode"] for row in release.table("sessions").rows} <= released
    assert {row["episode"] for row in release.table("measurements").rows} <= released
    assert {row["episode"] for row in release.table("medication").rows} <= released
    assert {row["session"] for row in release.table("needling_sites").rows} <= sessions
    assert {row["session"] for row in release.table("adverse_events").rows} <= sessions
    signed = sum(1 for s in clinic.records.sessions if s.status is SessionStatus.SIGNED)
    assert len(sessions) <= signed


@SETTINGS
@given(clinics())
def test_only_signed_notes_and_coded_context_leave(clinic: Synthetic) -> None:
    release = deidentify(clinic.records, k=1, dates="shift", rng=random.Random(1))
    signed = [s for s in clinic.records.sessions if s.status is SessionStatus.SIGNED]
    assert len(release.table("sessions").rows) == len(signed)
    # a measurement taken in a draft note does not leave
    assert len(release.table("measurements").rows) == len(signed)
    for row in release.table("measurements").rows:
        assert row["joint"] == "knee"
        assert row["side"] is None  # "Left knee …" is text someone typed: dropped


@SETTINGS
@given(clinics())
def test_study_ids_are_a_letter_and_twelve_digits_drawn_afresh_each_release(
    clinic: Synthetic,
) -> None:
    one = deidentify(clinic.records, k=1, dates="shift", rng=random.Random(1))
    two = deidentify(clinic.records, k=1, dates="shift", rng=random.Random(2))
    ids_one = {r["patient"] for r in one.table("episodes").rows}
    ids_two = {r["patient"] for r in two.table("episodes").rows}
    assert all(re.fullmatch(r"P\d{12}", str(i)) for i in ids_one)
    assert not ids_one & ids_two


@SETTINGS
@given(clinics())
def test_the_region_is_a_catalogue_body_region_or_other(clinic: Synthetic) -> None:
    regions = {c.body_region for c in conditions().conditions}
    release = deidentify(clinic.records, k=1, dates="shift", rng=random.Random(3))
    assert {r["region"] for r in release.table("episodes").rows} <= regions | {"other"}


def test_safe_harbor_lists_the_18_identifiers_in_the_rules_order() -> None:
    assert [i.clause for i in SAFE_HARBOR] == list("ABCDEFGHIJKLMNOPQR")
    assert all(i.name and i.held_as and i.handling for i in SAFE_HARBOR)


@pytest.mark.parametrize("mode", ["shift", "year"])
def test_every_column_is_described_and_typed_for_its_date_mode(mode: str) -> None:
    for table in table_specs(mode):  # type: ignore[arg-type]
        assert len(set(table.names)) == len(table.names)
        for column in table.columns:
            assert column.meaning
            assert column.deidentification
            if column.name in ("opened", "closed", "date", "onset"):
                assert column.type == ("date" if mode == "shift" else "integer")
