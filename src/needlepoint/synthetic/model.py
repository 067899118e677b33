"""The planted truth: how much each synthetic patient's pain improves, and why.

Expected NPRS reduction over an episode (points, positive = better):

    condition_effect[condition]
    + acute_bonus            if the episode is not chronic (onset < 90 days)
    + baseline_slope * (baseline NPRS - 6)
    + exercise_bonus         if exercise is in the plan
    + manual_therapy_bonus   if manual therapy is in the plan
    + practitioner_skill[practitioner]
    + Normal(0, noise_sd)    per patient

The values are invented for simulation only: they make analytics testable against a
known answer and are not clinical claims."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CHRONIC_AFTER_DAYS = 90


@dataclass(frozen=True)
class OutcomeModel:
    condition_effect: dict[str, float] = field(
        default_factory=lambda: {
            "neck_pain": 2.4,
            "low_back_pain": 2.0,
            "shoulder_pain": 2.2,
            "tension_type_headache": 2.3,
            "lateral_elbow_pain": 2.1,
            "plantar_heel_pain": 2.5,
            "knee_pain": 1.9,
        }
    )
    acute_bonus: float = 0.8
    baseline_slope: float = 0.35
    exercise_bonus: float = 0.6
    manual_therapy_bonus: float = 0.4
    practitioner_skill_sd: float = 0.8
    noise_sd: float = 1.2
    measurement_noise_sd: float = 0.5

    def expected_change(
        self,
        *,
        condition: str,
        chronic: bool,
        baseline: float,
        exercise: bool,
        manual_therapy: bool,
        skill: float,
    ) -> float:
        """The planted expected NPRS reduction, before patient-level noise."""
        return (
            self.condition_effect[condition]
            + (0.0 if chronic else self.acute_bonus)
            + self.baseline_slope * (baseline - 6.0)
            + (self.exercise_bonus if exercise else 0.0)
            + (self.manual_therapy_bonus if manual_therapy else 0.0)
            + skill
        )

    def describe(self) -> dict[str, Any]:
        """The model as plain data for the truth file."""
        return {"formula": __doc__, **asdict(self), "chronic_after_days": CHRONIC_AFTER_DAYS}


CONDITION_WEIGHTS: dict[str, float] = {
    "neck_pain": 0.22,
    "low_back_pain": 0.25,
    "shoulder_pain": 0.16,
    "tension_type_headache": 0.08,
    "lateral_elbow_pain": 0.09,
    "plantar_heel_pain": 0.08,
    "knee_pain": 0.12,
}

# Typical depths (mm) by muscle region, for plausible notes (not a safety rule).
DEPTH_RANGE_MM: dict[str, tuple[float, float]] = {
    "head": (5, 15),
    "neck": (8, 25),
    "upper_back": (8, 20),
    "chest": (8, 20),
    "shoulder": (15, 35),
    "upper_arm": (15, 35),
    "forearm": (8, 20),
    "lumbar": (25, 55),
    "hip": (35, 70),
    "thigh": (25, 50),
    "knee": (20, 40),
    "calf": (20, 40),
    "leg": (15, 30),
    "foot": (8, 25),
}

# Normal range (degrees) of the movement followed for each condition's ROM measure.
NORMAL_ROM_DEGREES: dict[str, float] = {
    "cervical_spine": 80,
    "lumbar_spine": 60,
    "shoulder": 180,
    "wrist": 70,
    "ankle": 20,
    "knee": 140,
}

NEEDLE_LENGTHS_MM = (15, 25, 30, 40, 50, 60, 75)


@dataclass(frozen=True)
class Protocol:
    """How often patients come back and what the clinic measures at each session.

    `ROUTINE` (the default): one episode per patient; NPRS at every session, the
    condition's function score at the first, middle and last sessions, range of motion at
    the first and last. `REGISTRY`: a clinic contributing to an outcomes registry — half of
    the discharged patients come back with a further episode (a flare or a new complaint,
    1.5 to 12 months later; MSK pain often recurs), and every session records NPRS,
    pressure pain thresholds over the treated trigger point and a control site (the same
    muscle on the other side) and range of motion, with the function score at the first
    session, every third and the last."""

    recurrence: float = 0.0  # chance that a discharged patient returns with a new episode
    measures: str = "routine"  # "routine" or "registry"
    max_episodes: int = 4

    def describe(self) -> dict[str, Any]:
        return asdict(self)


ROUTINE = Protocol()
REGISTRY = Protocol(recurrence=0.5, measures="registry")
PROTOCOLS = {"routine": ROUTINE, "registry": REGISTRY}
RETURN_AFTER_DAYS = (45, 365)  # discharge to a returning patient's new episode
SAME_PRACTITIONER = 0.7  # a returning patient mostly sees the same clinician
SAME_CONDITION = 0.5  # and half of the returns are a recurrence of the same complaint
