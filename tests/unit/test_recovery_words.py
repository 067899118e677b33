"""Faster recovery has no comparator (REFERENCE §5: a professional statement only): the
days and sessions to the first meaningful change are said as a fact, never "improved",
and a change that was not kept at the last measurement says so. Muscles are named as the
catalogue names them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from needlepoint.domain.benefits import EpisodeRecords, summarise_episode
from needlepoint.domain.entities import Episode, Measurement, NeedlingSite, Session
from needlepoint.domain.enums import (
    EpisodeStatus,
    SessionStatus,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)
from needlepoint.web.ui.progress import headline

CLINIC, PATIENT, EPISODE, USER = (uuid.uuid4() for _ in range(4))
DAY0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _session(day: int) -> Session:
    when = DAY0 + timedelta(days=day)
    return Session(
        uuid.uuid4(), CLINIC, PATIENT, EPISODE, USER, when, "", "", "", "",
        SessionStatus.SIGNED, when, when,
    )  # fmt: skip


def _nprs(day: int, score: float) -> Measurement:
    when = DAY0 + timedelta(days=day, hours=1)
    return Measurement(
        uuid.uuid4(), CLINIC, PATIENT, "nprs", "1.0", {"score": score}, when, USER, when,
        score, EPISODE,
    )  # fmt: skip


def _records(
    scores: list[tuple[int, float]], sites: list[NeedlingSite] | None = None
) -> EpisodeRecords:
    episode = Episode(
        EPISODE, CLINIC, PATIENT, USER, "plantar_heel_pain", "M72.2", "foot",
        date(2026, 10, 1), DAY0.date(), "", EpisodeStatus.OPEN, DAY0, DAY0,
    )  # fmt: skip
    sessions = [_session(d) for d in (0, 5, 12)]
    return EpisodeRecords(
        episode, sessions, [_nprs(d, s) for d, s in scores], [], sites or [], [], []
    )


def _recovery(records: EpisodeRecords) -> str:
    summary = summarise_episode(records)
    return headline(next(b for b in summary.benefits if b.id == "faster_recovery"))


def test_a_threshold_reached_then_lost_is_a_fact_not_an_improvement() -> None:
    # 4/10 → 2/10 on day 10 (the threshold reached), → 3/10 at the last measurement
    records = _records([(0, 4), (10, 2), (14, 3)])
    said = _recovery(records)
    assert "improved" not in said
    assert said == (
        "Numeric Pain Rating Scale threshold first reached after 10 days, 2 sessions; "
        "not kept at the last measurement; "
        "no comparator: whether recovery was faster is not judged"
    )
    summary = summarise_episode(records)
    recovery = next(b for b in summary.benefits if b.id == "faster_recovery")
    assert recovery.status == "recorded"  # never "measured": nothing was compared
    facts = {f.label: f.value for f in recovery.facts}
    assert facts["days to first meaningful change"] == 10
    assert facts["change kept at the last measurement"] == "no: below the threshold again"
    pain = next(b for b in summary.benefits if b.id == "pain_relief")
    assert headline(pain) == "unchanged"


def test_a_threshold_kept_is_still_not_called_faster() -> None:
    said = _recovery(_records([(0, 6), (10, 2), (14, 1)]))
    assert said == (
        "Numeric Pain Rating Scale threshold first reached after 10 days, 2 sessions; "
        "no comparator: whether recovery was faster is not judged"
    )


def test_nothing_recorded_is_not_measured() -> None:
    assert _recovery(_records([])) == "not measured"


def _site(s: Session, muscle: str, status: str) -> NeedlingSite:
    return NeedlingSite(
        uuid.uuid4(), CLINIC, s.id, 0, muscle, Side.LEFT, TriggerPoint(status),
        Technique.STATIC, 0.25, 30, 15, 3, 1, False, Tolerance.GOOD,
    )  # fmt: skip


def test_the_trigger_point_list_names_each_muscle_as_the_catalogue_does() -> None:
    records = _records([])
    first, second = records.sessions[0], records.sessions[1]
    sites = [
        _site(first, "lateral_gastrocnemius", "active"),
        _site(first, "abductor_hallucis", "latent"),
        _site(second, "lateral_gastrocnemius", "none"),
    ]
    records = _records([], sites)
    records = EpisodeRecords(
        records.episode, [first, second, records.sessions[2]], [], [], sites, [], []
    )
    summary = summarise_episode(records)
    muscles = next(b for b in summary.benefits if b.id == "muscle_relaxation")
    assert {f.label: f.value for f in muscles.facts} == {
        "Gastrocnemius (lateral head) (left)": "active → resolved",
        "Abductor hallucis (left)": "latent",
    }
