"""One patient's chart: demographics, whether needling may proceed (screening and consent
in force), the episodes with their actions, and the timeline of everything recorded."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from needlepoint.domain.catalogue import conditions
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import DomainError, PermissionDenied
from needlepoint.domain.permissions import GRANTS, Permission
from needlepoint.domain.screening import age_on, questionnaire
from needlepoint.queries.care_team import CareTeamEntry, care_team, colleagues_to_add
from needlepoint.queries.episodes import patient_episodes
from needlepoint.queries.patients import get_patient
from needlepoint.queries.questionnaire_completion import chart_questionnaires
from needlepoint.queries.reader import Reader
from needlepoint.queries.screening import (
    DECISION_WORDS,
    needling_headline,
    needling_status,
    screening_history,
)
from needlepoint.queries.timeline import patient_timeline
from needlepoint.web.ui.forms import clinic_zone, now, refusal_page, render, signed_in, to_login
from needlepoint.web.ui.forms import today as clinic_today

router = APIRouter(include_in_schema=False)
TIMELINE_PAGE = 200
ADDERS = GRANTS[Permission.MANAGE_CARE_TEAM]
BREAK_GLASS = GRANTS[Permission.EMERGENCY_ACCESS]

LINKS = {
    "session": "/sessions/{}",
    "episode_opened": "/episodes/{}",
    "episode_closed": "/episodes/{}",
}


def _may_add(r: Reader, team: list[CareTeamEntry]) -> bool:
    """The add form is offered to whom `add_care_team_member` accepts: the owner; a
    licensed member of the team; any licensed clinician while the clinic does not
    restrict records to the care team."""
    if r.role not in ADDERS:
        return False
    if r.role is Role.OWNER or not r.restricts_to_care_team():
        return True
    return any(m.user_id == r.user_id for m in team)


@router.get("/patients/{patient_id}", response_model=None)
def patient_chart(request: Request, patient_id: UUID, all: bool = False) -> Response:
    """The chart a clinician opens before a session."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            patient = get_patient(r, patient_id)
            episodes = patient_episodes(r, patient_id)
            timeline = patient_timeline(r, patient_id)
            needling = needling_status(r, patient_id, now())
            history = screening_history(r, patient_id)
            team = care_team(r, patient_id)
            addable = colleagues_to_add(r, patient_id) if _may_add(r, team) else []
            pq = chart_questionnaires(r, patient_id, clinic_today(clinic_zone(ctx)))
    except PermissionDenied as err:
        if err.field != "patient_id" or ctx.role not in BREAK_GLASS:
            return refusal_page(request, err)
        # Outside the care team: say so, and offer the emergency access (recorded).
        return render(request, "error.html", 403, message=err.detail, emergency_for=patient_id)
    except DomainError as err:
        return refusal_page(request, err)
    labels = {c.id: c.label for c in conditions().conditions}
    shown = timeline if all else timeline[:TIMELINE_PAGE]
    return render(
        request,
        "patient.html",
        patient=patient,
        episodes=episodes,
        timeline=shown,
        hidden=len(timeline) - len(shown),
        labels=labels,
        needling=needling,
        needling_headline=needling_headline(needling),
        decision_words=DECISION_WORDS,
        links=LINKS,
        age=age_on(patient.birth_date, clinic_today(clinic_zone(ctx))),
        adult_age=questionnaire().adult_age_years,
        history=history,
        team=team,
        addable=addable,
        pq=pq,
        kiosk_none=request.query_params.get("kiosk") == "none",
        questionnaire_withdrawn="withdrawn" in request.query_params,
    )
