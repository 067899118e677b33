"""Validation against the planted truth: on a generated clinic of 40 practitioners and
4,000 patients, the mixed model recovers each practitioner's planted skill.

A random intercept is identifiable only relative to the clinic's average practitioner
(the fixed intercept absorbs the mean of the planted skills), so estimates are compared
with the planted skills centred on their mean."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from scipy.stats import spearmanr

from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.analytics import dataset
from needlepoint.analytics.practitioners import fit
from needlepoint.analytics.prognosis import Prognosis
from needlepoint.analytics.responders import Workspace
from needlepoint.domain.enums import Role
from needlepoint.queries.reader import Reader
from needlepoint.synthetic.clinic import generate_clinic

PRACTITIONERS = 40
PATIENTS = 4_000
SEED = 2026


@pytest.fixture(scope="session")
def planted_clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, Any]]:
    """The 4,000-patient clinic, generated once per test session, loaded for analysis."""
    folder = tmp_path_factory.mktemp("planted")
    engine = make_engine(f"sqlite:///{folder / 'clinic.db'}")
    upgrade(engine)
    report = generate_clinic(
        engine,
        patients_count=PATIENTS,
        practitioners_count=PRACTITIONERS,
        seed=SEED,
        truth_path=folder / "truth.json",
    )
    truth = json.loads((folder / "truth.json").read_text())
    with engine.connect() as conn:
        reader = Reader(conn, report.clinic_id, Role.OWNER, report.owner_id)
        data = dataset.load(reader)
    engine.dispose()
    workspace = Workspace(data)
    workspace.materialise()
    return workspace, truth


def test_practitioner_effects_recover_the_planted_skill(
    planted_clinic: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, truth = planted_clinic
    model = fit(ws, "nprs")
    assert model.converged, model.status
    assert model.practitioners == PRACTITIONERS
    skill = {UUID(p["user_id"]): p["skill_nprs"] for p in truth["practitioners"]}
    mean_skill = float(np.mean(list(skill.values())))
    estimated, planted, covered = [], [], []
    for e in model.effects:
        assert e.effect is not None
        assert e.ci_low is not None
        assert e.ci_high is not None
        target = skill[UUID(e.practitioner_id)] - mean_skill
        estimated.append(e.effect)
        planted.append(target)
        covered.append(e.ci_low <= target <= e.ci_high)
    rho = spearmanr(estimated, planted).statistic
    coverage = float(np.mean(covered))
    print(f"\nplanted truth: Spearman {rho:.3f}, 95 % interval coverage {coverage:.3f}")
    assert rho >= 0.8
    assert coverage >= 0.9
    # every practitioner has about 100 patients, but only those whose interval overlaps
    # nobody else's are ranked (1, 2, …); the others are "not distinguishable"
    ranks = sorted(e.rank for e in model.effects if e.rank)
    assert ranks == list(range(1, len(ranks) + 1))
    for e in model.effects:
        assert e.rank is not None or "not distinguishable" in e.note


def test_the_planted_covariate_effects_are_recovered(
    planted_clinic: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, truth = planted_clinic
    planted = truth["outcome_model"]
    fe = fit(ws, "nprs").fixed_effects
    # NPRS change is capped by the baseline and rounded to whole points: close, not exact
    assert fe["exercise"] == pytest.approx(planted["exercise_bonus"], abs=0.2)
    assert fe["manual_therapy"] == pytest.approx(planted["manual_therapy_bonus"], abs=0.2)
    assert -fe["chronic"] == pytest.approx(planted["acute_bonus"], abs=0.25)


def test_prognosis_is_discriminating_and_calibrated_out_of_fold(
    planted_clinic: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, _ = planted_clinic
    model = Prognosis(ws).model
    v = model.validation
    assert v is not None, model.status
    print(
        f"\nprognosis: AUC {v.auc:.3f}, calibration slope {v.calibration_slope:.3f}, "
        f"intercept {v.calibration_intercept:.3f}, Brier {v.brier:.4f} "
        f"({v.episodes} episodes, {v.events} reached the MCID by session 6)"
    )
    assert v.auc is not None
    assert v.auc > 0.6
    assert v.calibration_slope is not None
    assert 0.8 <= v.calibration_slope <= 1.2
    assert v.brier is not None
    assert v.brier < 0.2
