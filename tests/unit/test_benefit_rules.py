"""The derived series of the benefit summary: trigger points that resolve, and analgesics
that are cut down or stopped."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from needlepoint.domain.benefits import analgesic_course, benefits, trigger_point_course
from needlepoint.domain.entities import MedicationUse, NeedlingSite, Session
from needlepoint.domain.enums import (
    DrugClass,
    SessionStatus,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)

CLINIC, PATIENT, EPISODE, USER = (uuid.uuid4() for _ in range(4))
DAY0 = datetime(2026, 2, 3, 9, 30, tzinfo=UTC)


def session(week: int) -> Session:
    when = DAY0 + timedelta(days=7 * week)
    return Session(
        uuid.uuid4(), CLINIC, PATIENT, EPISODE, USER, when, "", "", "", "",
        SessionStatus.SIGNED, when, when,
    )  # fmt: skip


def site(s: Session, muscle: str, status: str, side: Side = Side.LEFT) -> NeedlingSite:
    return NeedlingSite(
        uuid.uuid4(), CLINIC, s.id, 0, muscle, side, TriggerPoint(status), Technique.STATIC,
        0.25, 30, 15, 3, 1, False, Tolerance.GOOD,
    )  # fmt: skip


def test_a_trigger_point_noted_none_after_active_is_resolved_and_counts_no_more() -> None:
    s = [session(w) for w in range(3)]
    sites = [
        site(s[0], "upper_trapezius", "active"),
        site(s[0], "infraspinatus", "none"),
        site(s[1], "upper_trapezius", "latent"),
        site(s[2], "upper_trapezius", "none"),
    ]
    points, course = trigger_point_course(s, sites)
    assert course[("upper_trapezius", "left")] == ["active", "latent", "resolved"]
    assert course[("infraspinatus", "left")] == ["none"]  # never had one: not "resolved"
    assert [p.score for p in points] == [1, 0, 0]


def test_a_muscle_not_noted_again_keeps_its_last_status() -> None:
    s = [session(w) for w in range(2)]
    sites = [site(s[0], "gluteus_medius", "active"), site(s[1], "piriformis", "active")]
    points, course = trigger_point_course(s, sites)
    assert [p.score for p in points] == [1, 2]
    assert course[("gluteus_medius", "left")] == ["active"]


def test_each_side_of_a_muscle_is_its_own_course() -> None:
    s = [session(0), session(1)]
    sites = [
        site(s[0], "upper_trapezius", "active"),
        site(s[0], "upper_trapezius", "active", Side.RIGHT),
        site(s[1], "upper_trapezius", "none"),
    ]
    points, course = trigger_point_course(s, sites)
    assert course[("upper_trapezius", "right")] == ["active"]
    assert [p.score for p in points] == [2, 1]


def use(drug: str, days: int, on: date) -> MedicationUse:
    return MedicationUse(
        uuid.uuid4(), CLINIC, PATIENT, drug, DrugClass.NSAID, days, on, USER,
        datetime.combine(on, datetime.min.time(), tzinfo=UTC),
    )  # fmt: skip


def test_analgesic_use_carries_each_drug_forward_until_it_is_logged_again() -> None:
    d = date(2026, 2, 3)
    log = [
        use("Ibuprofen", 5, d),
        use("Paracetamol", 3, d + timedelta(days=7)),
        use("ibuprofen", 0, d + timedelta(days=14)),  # stopped; names match regardless of case
    ]
    points, per_drug = analgesic_course(log)
    assert [p.score for p in points] == [5, 8, 3]
    assert [u.days_per_week for u in per_drug["ibuprofen"]] == [5, 0]


def test_the_eight_benefits_come_from_the_design_table_with_their_evidence() -> None:
    eight = [b.id for b in benefits() if not b.reported_beside]
    assert eight == [
        "pain_relief",
        "muscle_relaxation",
        "blood_circulation",
        "tissue_healing",
        "flexibility_rom",
        "complementary_care",
        "faster_recovery",
        "drug_free_management",
    ]
    beside = [b.id for b in benefits() if b.reported_beside]
    assert beside == ["function_disability"]
    assert benefits()[0].evidence.verified is True  # pain relief: ✅ strongest
    blood = next(b for b in benefits() if b.id == "blood_circulation")
    assert blood.instruments == []


def test_tissue_healing_is_never_informed_by_a_function_score() -> None:
    by_id = {b.id: b for b in benefits()}
    assert by_id["tissue_healing"].instruments == []  # no routine clinic measure exists
    function = set(by_id["function_disability"].instruments)
    assert {"ndi", "odi", "quickdash", "lefs", "psfs", "psfs_2"} <= function
    for b in benefits():
        if b.id != "function_disability":
            assert not function & set(b.instruments), b.id


def test_the_evidence_beside_each_row_is_the_evidence_for_that_benefit() -> None:
    from needlepoint.analytics.evidence import pooled_effects

    pooled = pooled_effects()
    assert set(pooled) == {b.id for b in benefits()}
    assert pooled["tissue_healing"].pooled == []  # no pooled evidence on muscle healing
    assert "function" not in (pooled["tissue_healing"].none or "").replace("not measured", "")
    assert [p.outcome for p in pooled["function_disability"].pooled] == ["disability"]
    assert all("pain" in p.outcome for p in pooled["pain_relief"].pooled)
    by_id = {b.id: b for b in benefits()}
    assert "Navarro-Santana" in by_id["function_disability"].evidence.source
    assert "Navarro-Santana" not in by_id["tissue_healing"].evidence.source
