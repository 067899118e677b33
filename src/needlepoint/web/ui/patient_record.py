"""The patient's own pages behind their link (issue 16), phone first like the
questionnaire pages: their progress in plain words (`/q/{token}/progress`), a copy of
the consent they signed (`/q/{token}/consent`) and withdrawing it
(`POST /q/{token}/consent/withdraw`, with a confirmation box). And kiosk mode: the
clinician's "Hand to patient" on the chart (`POST /patients/{id}/kiosk`) signs the
clinician out of this device and opens the patient's questionnaires on it.

The token in the address is the patient's only credential (`actions.patient_record`
says what a link opens); the clinician's pages are never reachable from it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from needlepoint.actions import accounts, patient_record
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain import clinic_time
from needlepoint.domain.benefits import analgesic_course
from needlepoint.domain.consent import get_template
from needlepoint.domain.entities import Measurement, MedicationUse
from needlepoint.domain.errors import DomainError
from needlepoint.domain.home_reports import latest_per_drug
from needlepoint.domain.instruments import get as get_instrument
from needlepoint.domain.patient_progress import Score, progress
from needlepoint.domain.questionnaires import LinkClosed, after_care_days
from needlepoint.web.pages import _current, _signed_out
from needlepoint.web.ui.forms import (
    checked_form,
    in_thread,
    refusal_page,
    see_other,
    signed_in,
    submitted_form,
    to_login,
)
from needlepoint.web.ui.patient_questionnaires import _address, _closed, _page, _uow, in_sitting

router = APIRouter(include_in_schema=False)


def _own(request: Request, token: str) -> patient_record.OwnRecord | Response:
    try:
        return patient_record.open_own_record(
            _uow(request), token, address=_address(request), sitting=in_sitting(request, token)
        )
    except LinkClosed as err:
        return _closed(request, token, err)


def _common(found: patient_record.OwnRecord, token: str) -> dict[str, Any]:
    return {"token": token, "clinic_name": found.clinic_name, "waiting": found.waiting}


def _return_words(m: Measurement, day: Callable[[datetime], str]) -> str:
    """A return to work or sport in words: "Work: returned on 11 February 2026"."""
    ctx = m.context or {}
    what = str(ctx.get("activity", "")).capitalize() or "Work or sport"
    if not m.score:
        return f"{what}: not yet returned"
    on = ctx.get("returned_on")
    when = day(datetime.combine(date.fromisoformat(str(on)), time(12), UTC)) if on else ""
    return f"{what}: returned" + (f" on {when}" if when else "")


def _analgesic_scores(medication: list[MedicationUse]) -> list[Score]:
    """Drug-days a week on each day of the analgesic log (each drug's latest entry counts;
    0 days = stopped), with each drug's days in words; sent by the patient when any entry
    of that day came from home."""
    points, _per_drug = analgesic_course(medication)
    out: list[Score] = []
    for p in points:
        upto = [u for u in medication if u.recorded_on <= p.taken_at.date()]
        words = ", ".join(f"{u.drug} {u.days_per_week} days a week" for u in latest_per_drug(upto))
        mine = any(
            u.response_id is not None for u in medication if u.recorded_on == p.taken_at.date()
        )
        out.append(Score(p.taken_at, p.score, mine, words))
    return out


@router.get("/q/{token}/progress", response_model=None)
async def own_progress(request: Request, token: str) -> Response:
    """The patient's scores over time against each questionnaire's MCID, in words."""

    def work() -> Response:
        found = _own(request, token)
        if isinstance(found, Response):
            return found
        tz = clinic_time.zone(found.time_zone)
        scores: dict[str, list[Score]] = defaultdict(list)
        for m in found.measurements:
            assert m.score is not None
            scores[m.instrument_id].append(
                Score(
                    m.taken_at,
                    m.score,
                    m.id in found.patient_reported,
                    after_discharge=after_care_days(m.context) is not None,
                )
            )
        day = lambda t: clinic_time.local_date(t, tz).strftime("%-d %B %Y")  # noqa: E731
        for m in found.measurements:
            if m.instrument_id == "return_to_activity":
                scores[m.instrument_id] = [
                    replace(s, words=_return_words(m, day)) if s.taken_at == m.taken_at else s
                    for s in scores[m.instrument_id]
                ]
        scores["analgesic_use"] = _analgesic_scores(found.medication)
        asked = list(found.asked)
        if found.medication and "analgesic_use" not in asked:
            asked.append("analgesic_use")
        items = progress([get_instrument(i) for i in asked], scores)
        return _page(
            request,
            "patient_progress.html",
            items=items,
            day=day,
            **_common(found, token),
        )

    return await in_thread(work)


@router.get("/q/{token}/consent", response_model=None)
async def own_consent(request: Request, token: str) -> Response:
    """A copy of each consent the patient signed: what, when (the clinic's time), and
    whether it is withdrawn; a way to withdraw one in force."""

    def work() -> Response:
        found = _own(request, token)
        if isinstance(found, Response):
            return found
        tz = clinic_time.zone(found.time_zone)
        copies = []
        for c in found.consents:
            try:
                template = get_template(c.template_id, c.template_version)
            except DomainError:
                template = None
            copies.append(
                {
                    "consent": c,
                    "template": template,
                    "signed": clinic_time.when(c.signed_at, tz),
                    "withdrawn": clinic_time.when(c.withdrawn_at, tz) if c.withdrawn_at else None,
                }
            )
        return _page(
            request,
            "patient_consent.html",
            copies=copies,
            done="withdrawn" in request.query_params,
            error=request.query_params.get("error"),
            **_common(found, token),
        )

    return await in_thread(work)


@router.post("/q/{token}/consent/withdraw", response_model=None)
async def withdraw(request: Request, token: str) -> Response:
    """Withdraw one consent (only with the confirmation box ticked)."""
    form = await submitted_form(request)

    def work() -> Response:
        if form.get("confirm") != "yes":
            return RedirectResponse(f"/q/{token}/consent?error=confirm#withdraw", 303)
        try:
            consent_id = UUID(str(form.get("consent", "")))
        except ValueError:
            return RedirectResponse(f"/q/{token}/consent", 303)
        try:
            patient_record.withdraw_own_consent(
                _uow(request),
                token,
                consent_id,
                address=_address(request),
                sitting=in_sitting(request, token),
            )
        except LinkClosed as err:
            return _closed(request, token, err)
        except DomainError:
            return RedirectResponse(f"/q/{token}/consent?error=gone", 303)
        return RedirectResponse(f"/q/{token}/consent?withdrawn=1", 303)

    return await in_thread(work)


@router.post("/patients/{patient_id}/kiosk", response_model=None)
async def hand_to_patient(request: Request, patient_id: UUID) -> Response:
    """Kiosk mode: open the patient's questionnaires on this device and sign the
    clinician out of it first (their session ends on the server), so nothing of the
    clinician's is reachable from the patient's screen without signing in again."""
    submitted = await submitted_form(request)

    def work() -> Response:
        ctx = signed_in(request)
        if ctx is None:
            return to_login()
        checked_form(request, submitted)
        try:
            started = patient_record.start_kiosk(ctx.uow(), ctx.actor, patient_id)
        except DomainError as err:
            if err.field == "patient_id" and "waiting" in err.detail:
                return see_other(f"/patients/{patient_id}?kiosk=none#questionnaires-due")
            return refusal_page(request, err)
        found = _current(request)
        if found is not None:
            accounts.end_session(SqlUnitOfWork(request.app.state.engine), found.session)
        return _signed_out(f"/q/{started.token}")

    return await in_thread(work)
