"""Simulated patients answering questionnaires from home (issue 16), so that the
completion rates and the patient-reported scores can be seen in a demo. Everything goes
through the actions, with the simulated clock, as the rest of the generator does: the
clinician sends the questionnaires at each time point of a closed episode (intake,
discharge, 6 weeks and 3 months after discharge, those that have come by `until`), the
outbox marks each e-mail sent (nothing is mailed), the patient opens the link, saves and
submits, or does not; with reminders on, an unanswered link gets the schedule's
reminders, after which some more patients answer.

The response model (the issue's example figures, not a finding): at every time point
that has come, `answer_rate` of patients answer the invitation without a reminder
(default 0.55); with reminders, a further `reminder_lift` of all patients (default 0.26)
answer after one. Each time point is drawn on its own: a patient who left one
unanswered is still asked at the next (the unanswered questionnaire stays waiting, and
counts as not completed). The answers follow the clinician's own measurements of the
episode: at intake its first score, at discharge its latest, with a little noise; after
discharge (6 weeks, 3 months) the latest again, except that `relapse_rate` of the
answers (default 0.25, a demo assumption, not a finding) fall back part of the way
towards the first score, so the after-care analysis shows benefits kept and lost. The
questionnaire's code scores them; the follow-up answers are the episode's after-care
values."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.actions import outbox, patients, questionnaires
from needlepoint.actions.context import Actor
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.catalogue import conditions
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    SaveQuestionnaireAnswers,
    UpdatePatient,
)
from needlepoint.domain.enums import TimePoint
from needlepoint.domain.errors import DomainError
from needlepoint.domain.instruments import Instrument
from needlepoint.domain.instruments import get as get_instrument
from needlepoint.domain.questionnaires import defaults, is_self_report

BASE_URL = "http://patients.demo.invalid"
"""The address the simulated links name (never opened: the simulation uses the token)."""


@dataclass
class ResponseReport:
    """What the simulation did: questionnaires asked and submitted, reminders sent."""

    episodes: int = 0
    asked: int = 0
    submitted: int = 0
    reminders: int = 0
    follow_ups_asked: int = 0  # after discharge (6 weeks, 3 months)
    follow_ups_submitted: int = 0


class _Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


def _items(instrument: Instrument, target: float, rng: random.Random) -> dict[str, Any]:
    """Item answers whose score is near `target` (every item answered)."""
    lo, hi = instrument.score_range
    share = 0.0 if hi == lo else min(max((target - lo) / (hi - lo), 0.0), 1.0)
    span = instrument.item_max - instrument.item_min
    out: dict[str, Any] = {}
    for name in instrument.item_names:
        value = instrument.item_min + share * span + rng.gauss(0, span * 0.08)
        value = min(max(value, instrument.item_min), instrument.item_max)
        out[name] = round(value) if instrument.integer else round(value, 1)
    return out


def simulate_responses(
    engine: sa.Engine,
    clinic_id: UUID,
    *,
    seed: int,
    until: date,
    answer_rate: float = 0.55,
    reminders: bool = True,
    reminder_lift: float = 0.26,
    relapse_rate: float = 0.25,
    max_episodes: int | None = None,
    on_episode: Callable[[], None] | None = None,
) -> ResponseReport:
    """Simulate the clinic's patients answering (see the module). Returns the counts."""
    if not 0 <= answer_rate <= 1 or not 0 <= reminder_lift <= 1 - answer_rate:
        raise ValueError("answer_rate and reminder_lift must be shares that add up to at most 1")
    if not 0 <= relapse_rate <= 1:
        raise ValueError("relapse_rate must be a share")
    rng = random.Random(f"responses-{seed}")
    clock = _Clock()
    report = ResponseReport()

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, clock)

    e, m = t.episodes, t.measurements
    with engine.connect() as conn:
        episodes = list(
            conn.execute(
                sa.select(e)
                .where(e.c.clinic_id == clinic_id, e.c.closed_on.is_not(None))
                .order_by(e.c.opened_on, e.c.id)
            )
        )
    if max_episodes is not None:
        episodes = episodes[:max_episodes]
    follow_ups = defaults().follow_up_days
    after = defaults().reminder_after_days
    for ep in episodes:
        found = conditions().get(ep.condition)
        chosen = ["nprs"]
        if found and found.function_instrument and is_self_report(found.function_instrument):
            chosen.append(found.function_instrument)
        with engine.connect() as conn:
            scores: dict[str, list[float]] = {}
            for row in conn.execute(
                sa.select(m.c.instrument_id, m.c.score)
                .where(m.c.clinic_id == clinic_id, m.c.episode_id == ep.id, m.c.score.is_not(None))
                .order_by(m.c.taken_at)
            ):
                scores.setdefault(row.instrument_id, []).append(float(row.score))
            patient_row = conn.execute(
                sa.select(t.patients).where(t.patients.c.id == ep.patient_id)
            ).one()
        chosen = [i for i in chosen if scores.get(i)]
        if not chosen:
            continue
        clinician = Actor(ep.clinician_id, clinic_id, source="generator")
        report.episodes += 1
        if not patient_row.email:
            clock.at = datetime.combine(ep.opened_on, time(8), UTC)
            patients.update_patient(
                uow(),
                clinician,
                UpdatePatient(
                    patient_id=ep.patient_id,
                    expected_version=patient_row.version,
                    email=f"{patient_row.mrn.lower()}@patients.example",
                ),
            )
        points = [(TimePoint.INTAKE, ep.opened_on), (TimePoint.DISCHARGE, ep.closed_on)]
        points += [(TimePoint.FOLLOW_UP, ep.closed_on + timedelta(days=d)) for d in follow_ups]
        for point, day in points:
            if day > until:
                break
            clock.at = datetime.combine(day, time(9), UTC)
            try:
                done = questionnaires.assign_questionnaires(
                    uow(),
                    clinician,
                    AssignQuestionnaires(
                        episode_id=ep.id,
                        instrument_ids=chosen,
                        time_point=point,
                        due_on=day,
                        send=True,
                        base_url=BASE_URL,
                    ),
                )
            except DomainError:
                break
            report.asked += len(done.assignments)
            if point is TimePoint.FOLLOW_UP:
                report.follow_ups_asked += len(done.assignments)
            token = _delivered(engine, clock, clinic_id, done.message)
            draw = rng.random()
            if draw < answer_rate:
                clock.at += timedelta(hours=rng.uniform(2, 60))
            elif (
                reminders
                and draw < answer_rate + reminder_lift
                and day + timedelta(days=after[0]) <= until
            ):
                clock.at = datetime.combine(day + timedelta(days=after[0]), time(9), UTC)
                assert done.link is not None
                message = questionnaires.queue_reminder(uow(), clinic_id, done.link.id, BASE_URL)
                if message is None:
                    continue
                report.reminders += 1
                token = _delivered(engine, clock, clinic_id, message)
                clock.at += timedelta(hours=rng.uniform(1, 48))
            else:
                continue  # no answer at this time point; asked again at the next one
            relapse = point is TimePoint.FOLLOW_UP and rng.random() < relapse_rate
            for a in done.assignments:
                inst = get_instrument(a.instrument_id)
                history = scores[a.instrument_id]
                target = history[0] if point is TimePoint.INTAKE else history[-1]
                if relapse:
                    target += rng.uniform(0.3, 0.8) * (history[0] - history[-1])
                answers = _items(inst, target, rng)
                questionnaires.save_questionnaire_answers(
                    uow(), token, SaveQuestionnaireAnswers(assignment_id=a.id, answers=answers)
                )
                clock.at += timedelta(minutes=2)
                questionnaires.submit_questionnaire(uow(), token, a.id)
                report.submitted += 1
                if point is TimePoint.FOLLOW_UP:
                    report.follow_ups_submitted += 1
        if on_episode is not None:
            on_episode()
    return report


def _delivered(engine: sa.Engine, clock: _Clock, clinic_id: UUID, message: Any) -> str:
    """Mark the e-mail sent through the outbox's actions (nothing is mailed) and return
    the link's token, as the e-mail would carry it."""
    with engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == message.id)
        ).scalar_one()
    claimed = outbox.claim_message(SqlUnitOfWork(engine, clock), clinic_id, message.id)
    if claimed is not None:
        outbox.mark_sent(SqlUnitOfWork(engine, clock), clinic_id, claimed)
    return str(url).rsplit("/", 1)[-1]
