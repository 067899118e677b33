"""The clinic withdraws a questionnaire the patient has not answered (issue 16): it is no
longer pending or overdue, not reminded, not opened by the link, and out of the
completion rates' denominators; an answered one is refused, naming why. The action, the
API and the chart's button, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from needlepoint.actions import questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics.completion import completion
from needlepoint.domain.enums import LinkEnd, Role
from needlepoint.domain.errors import InvalidInput
from needlepoint.domain.questionnaires import LinkClosed
from needlepoint.queries.questionnaire_completion import chart_questionnaires
from needlepoint.queries.reader import open_reader
from tests.conftest import ClinicFixture, make_api
from tests.integration.test_patient_own_pages import _answer_ndi, _client, _sent


def _assignment(c: ClinicFixture, assignment_id: object) -> sa.Row:  # type: ignore[type-arg]
    with c.engine.connect() as conn:
        return conn.execute(
            sa.select(t.questionnaire_assignments).where(
                t.questionnaire_assignments.c.id == assignment_id
            )
        ).one()


def test_a_withdrawn_questionnaire_is_not_pending_reminded_opened_or_counted(
    clinic: ClinicFixture,
) -> None:
    overdue = date.today() - timedelta(days=5)
    p, done, token = _sent(clinic, "w@p.test", ["ndi", "nprs"], due_on=overdue)
    ndi, nprs = sorted(done.assignments, key=lambda a: a.instrument_id)
    _answer_ndi(clinic, token, ndi.id)
    today = datetime.now(UTC).date()
    with open_reader(clinic.engine, clinic.owner.clinic_id, Role.OWNER, clinic.owner.id) as r:
        assert completion(r, today).overall.asked == 2
    withdrawn = questionnaires.cancel_questionnaire(clinic.uow(), clinic.as_clinician, nprs.id)
    assert withdrawn.cancelled_at is not None
    with open_reader(clinic.engine, clinic.owner.clinic_id, Role.OWNER, clinic.owner.id) as r:
        assert chart_questionnaires(r, p.id, today).pending == []  # neither pending nor overdue
        found = completion(r, today)
    assert (found.overall.completed, found.overall.asked) == (1, 1)  # out of the denominator
    # Nothing left to answer: the patient's link ended (revoked), and no reminder comes.
    with pytest.raises(LinkClosed) as closed:
        questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token)
    assert closed.value.reason == LinkEnd.REVOKED
    link = done.link
    later = SqlUnitOfWork(clinic.engine, lambda: datetime.now(UTC) + timedelta(days=4))
    assert questionnaires.queue_reminder(later, link.clinic_id, link.id, "http://x.test") is None


def test_an_answered_questionnaire_cannot_be_withdrawn(clinic: ClinicFixture) -> None:
    _p, done, token = _sent(clinic, "a@p.test", ["ndi"])
    (ndi,) = done.assignments
    _answer_ndi(clinic, token, ndi.id)
    before = _assignment(clinic, ndi.id)
    with pytest.raises(InvalidInput) as refused:
        questionnaires.cancel_questionnaire(clinic.uow(), clinic.as_clinician, ndi.id)
    assert refused.value.field == "assignment_id"
    assert "already answered" in refused.value.detail
    assert _assignment(clinic, ndi.id) == before  # nothing changed


def test_the_api_withdraws_and_refuses_an_answered_one_with_422(clinic: ClinicFixture) -> None:
    _p, done, token = _sent(clinic, "api@p.test", ["ndi", "nprs"])
    ndi, nprs = sorted(done.assignments, key=lambda a: a.instrument_id)
    _answer_ndi(clinic, token, ndi.id)
    api = make_api(clinic.engine, clinic)
    ok = api.client.post(f"/api/v1/questionnaires/{nprs.id}/cancel", headers=api.headers())
    assert ok.status_code == 200, ok.text
    assert ok.json()["cancelled_at"]
    again = api.client.post(f"/api/v1/questionnaires/{nprs.id}/cancel", headers=api.headers())
    assert again.status_code == 422
    answered = api.client.post(f"/api/v1/questionnaires/{ndi.id}/cancel", headers=api.headers())
    assert answered.status_code == 422
    assert "assignment_id" in answered.text
    assert "already answered" in answered.text
    assert _assignment(clinic, ndi.id).cancelled_at is None


def test_the_charts_withdraw_button(clinic: ClinicFixture) -> None:
    p, done, _token = _sent(clinic, "chart@p.test", ["ndi"], due_on=date.today())
    client = _client(clinic)
    chart = client.get(f"/patients/{p.id}")
    (a,) = done.assignments
    assert f'action="/questionnaires/{a.id}/cancel"' in chart.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', chart.text)
    assert csrf
    r = client.post(f"/questionnaires/{a.id}/cancel", data={"csrf": csrf[1]})
    assert r.status_code == 200
    assert "The questionnaire was withdrawn" in r.text
    assert f'action="/questionnaires/{a.id}/cancel"' not in r.text
    assert _assignment(clinic, a.id).cancelled_at is not None
    completion_page = client.get("/analytics/completion")
    assert "left out of every denominator" in completion_page.text
