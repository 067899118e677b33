"""The checks of questionnaires answered from home with their context
(`domain.home_reports`): every in-range answer is taken as given, every out-of-range one
is refused naming its field; PSFS keeps the baseline's activities."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.enums import DrugClass
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.home_reports import (
    OtherDrug,
    baseline_activities,
    check_analgesic_report,
    check_psfs,
    check_return,
    latest_per_drug,
)
from needlepoint.domain.instruments import get

OPENED, TODAY = date(2026, 2, 1), date(2026, 3, 1)


def _use(drug: str, days: int, on: date = OPENED) -> MedicationUse:
    return MedicationUse(
        id=uuid4(),
        clinic_id=uuid4(),
        patient_id=uuid4(),
        drug=drug,
        drug_class=DrugClass.NSAID,
        days_per_week=days,
        recorded_on=on,
        recorded_by=uuid4(),
        created_at=datetime(2026, 2, 1, tzinfo=UTC),
    )


def test_the_latest_entry_of_each_drug_is_asked() -> None:
    log = [_use("Ibuprofen", 5), _use("ibuprofen ", 3, OPENED + timedelta(days=3))]
    assert [u.days_per_week for u in latest_per_drug(log)] == [3]


@given(st.integers(0, 7), st.integers(0, 7))
def test_any_days_from_0_to_7_are_logged_as_given(a: int, b: int) -> None:
    out = check_analgesic_report(
        [_use("Ibuprofen", 5)],
        {"Ibuprofen": a},
        OtherDrug("Naproxen", "nsaid", b, None),
    )
    assert [(r.drug, r.days_per_week) for r in out] == [("Ibuprofen", a), ("Naproxen", b)]


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=8), st.just(2.5)))
def test_days_outside_0_to_7_are_refused_naming_the_drug(days: float) -> None:
    with pytest.raises(InvalidInput) as err:
        check_analgesic_report([_use("Ibuprofen", 5)], {"Ibuprofen": days}, OtherDrug())
    assert err.value.field == "days.Ibuprofen"


@given(st.integers(-400, 400))
def test_a_return_day_is_taken_only_between_the_opening_and_today(offset: int) -> None:
    day = OPENED + timedelta(days=offset)
    inst = get("return_to_activity")
    if OPENED <= day <= TODAY:
        answers, context = check_return(
            inst, "sport", 1, day.isoformat(), opened_on=OPENED, today=TODAY
        )
        assert answers == {"item1": 1}
        assert context == {"activity": "sport", "returned_on": day.isoformat()}
    else:
        with pytest.raises(InvalidInput) as err:
            check_return(inst, "sport", 1, day, opened_on=OPENED, today=TODAY)
        assert err.value.field == "returned_on"


@given(st.lists(st.integers(0, 10), min_size=1, max_size=5))
def test_psfs_rates_the_baselines_activities_and_keeps_them(ratings: list[int]) -> None:
    baseline = {f"activity{i + 1}": f"task {i + 1}" for i in range(len(ratings))}
    answers, context = check_psfs(
        get("psfs"),
        {f"item{i + 1}": r for i, r in enumerate(ratings)},
        {"activity1": "something else"},
        baseline,
    )
    assert context == baseline
    assert list(answers.values()) == ratings


def test_the_baseline_is_the_first_psfs_of_the_same_version_naming_activities() -> None:
    def m(iid: str, ctx: dict[str, str] | None, day: int) -> Measurement:
        at = datetime(2026, 2, day, tzinfo=UTC)
        return Measurement(
            id=uuid4(),
            clinic_id=uuid4(),
            patient_id=uuid4(),
            instrument_id=iid,
            instrument_version="1",
            answers={},
            taken_at=at,
            recorded_by=uuid4(),
            created_at=at,
            context=ctx,
        )

    earlier = [
        m("psfs_2", {"activity1": "Running"}, 1),
        m("psfs", None, 2),
        m("psfs", {"activity1": "Driving"}, 3),
        m("psfs", {"activity1": "Typing"}, 4),
    ]
    assert baseline_activities("psfs", earlier) == {"activity1": "Driving"}
    assert baseline_activities("psfs_2", earlier) == {"activity1": "Running"}
    assert baseline_activities("psfs", earlier[:2]) is None
