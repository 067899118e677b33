"""A used link ends (issue 16: "links expire and are revoked by use"): after the last
answer, the browser that sent it still sees the thanks page, the patient's progress and
consent copy for 30 minutes (a signed cookie of that link, and the link's own time of
use); opened later or elsewhere, every route of the link shows "this link has been
used" with the way to ask for a new one, and changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions import consent, episodes, patient_record, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import AssignQuestionnaires
from needlepoint.domain.enums import LinkEnd
from needlepoint.domain.questionnaires import LinkClosed, hash_link_token
from needlepoint.web.app import create_app
from needlepoint.web.ui.patient_questionnaires import SITTING_COOKIE
from tests.conftest import ClinicFixture
from tests.factories import consent_cmd, episode_cmd, patient_cmd

BASE = "http://clinic.test"
SECRET = "sitting-" + "k" * 40
USED = "This link has been used"


def _sent(c: ClinicFixture):  # type: ignore[no-untyped-def]
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email="used@p.test"))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    signed = consent.record_consent(c.uow(), c.as_clinician, consent_cmd(p.id))
    done = questionnaires.assign_questionnaires(
        c.uow(),
        c.as_clinician,
        AssignQuestionnaires(episode_id=ep.id, instrument_ids=["nprs"], send=True, base_url=BASE),
    )
    assert done.message is not None
    assert done.message.link_url is not None
    return p, signed, done.assignments[0], done.message.link_url.rsplit("/", 1)[-1]


def _answered(c: ClinicFixture):  # type: ignore[no-untyped-def]
    """The patient answers NPRS on the page: the link is used; their browser is in the
    sitting."""
    p, signed, assignment, token = _sent(c)
    browser = TestClient(create_app(c.engine, secret_key=SECRET))
    sent = browser.post(
        f"/q/{token}",
        data={"assignment": str(assignment.id), "item1": "4", "send": "1"},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert SITTING_COOKIE in sent.headers["set-cookie"]
    with c.engine.connect() as conn:
        ended = conn.execute(
            sa.select(t.questionnaire_links.c.ended_because).where(
                t.questionnaire_links.c.token_hash == hash_link_token(token)
            )
        ).scalar_one()
    assert ended == LinkEnd.USED
    return p, signed, assignment, token, browser


def _routes(token: str, assignment: str, consent_id: str) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    return [
        ("GET", f"/q/{token}", {}),
        ("POST", f"/q/{token}", {"assignment": assignment, "item1": "2", "save": "1"}),
        ("POST", f"/q/{token}", {"assignment": assignment, "item1": "2", "send": "1"}),
        ("GET", f"/q/{token}/thanks", {}),
        ("GET", f"/q/{token}/progress", {}),
        ("GET", f"/q/{token}/consent", {}),
        ("POST", f"/q/{token}/consent/withdraw", {"consent": consent_id, "confirm": "yes"}),
    ]


def _consent_in_force(c: ClinicFixture, consent_id: object) -> bool:
    with c.engine.connect() as conn:
        return (
            conn.execute(
                sa.select(t.consents.c.withdrawn_at).where(t.consents.c.id == consent_id)
            ).scalar_one()
            is None
        )


def test_in_the_sitting_the_patient_still_sees_thanks_progress_and_consent(
    clinic: ClinicFixture,
) -> None:
    _p, _signed, _a, token, browser = _answered(clinic)
    thanks = browser.get(f"/q/{token}/thanks")
    assert thanks.status_code == 200
    assert "Your answers were sent" in thanks.text
    assert f"/q/{token}/progress" in thanks.text
    progress = browser.get(f"/q/{token}/progress")
    assert progress.status_code == 200
    assert "sent by you" in progress.text
    copy = browser.get(f"/q/{token}/consent")
    assert copy.status_code == 200
    assert "Withdraw my consent" in copy.text
    # The questionnaires themselves are done: the link opens none of them.
    again = browser.get(f"/q/{token}")
    assert again.status_code == 410
    assert USED in again.text


@pytest.mark.parametrize("later", ["another browser", "after the sitting"])
def test_a_used_link_opened_later_or_elsewhere_ends_on_every_route(
    clinic: ClinicFixture, later: str
) -> None:
    _p, signed, assignment, token, browser = _answered(clinic)
    if later == "another browser":
        client = TestClient(create_app(clinic.engine, secret_key=SECRET))
    else:
        client = browser  # its cookie is still there; the link was used 31 minutes ago
        links = t.questionnaire_links
        mine = links.c.token_hash == hash_link_token(token)
        with clinic.engine.begin() as conn:
            ended = conn.execute(sa.select(links.c.ended_at).where(mine)).scalar_one()
            conn.execute(
                sa.update(links).where(mine).values(ended_at=ended - timedelta(minutes=31))
            )
    for method, path, data in _routes(token, str(assignment.id), str(signed.id)):
        r = client.request(method, path, data=data or None, follow_redirects=False)
        assert r.status_code == 410, (method, path, r.status_code)
        assert USED in r.text, (method, path)
        assert "E-mail me a new link" in r.text, (method, path)
        assert "sent by you" not in r.text
    assert _consent_in_force(clinic, signed.id)  # the withdrawal was not carried out


def test_a_cookie_of_another_link_or_forged_opens_nothing(clinic: ClinicFixture) -> None:
    _p, _signed, _a, token, browser = _answered(clinic)
    cookie = browser.cookies.get(SITTING_COOKIE)
    assert cookie
    stranger = TestClient(create_app(clinic.engine, secret_key=SECRET))
    stranger.cookies.set(SITTING_COOKIE, cookie[:-2] + "xx", path=f"/q/{token}")
    assert stranger.get(f"/q/{token}/progress").status_code == 410
    other = TestClient(create_app(clinic.engine, secret_key="another-" + "k" * 40))
    other.cookies.set(SITTING_COOKIE, cookie, path=f"/q/{token}")  # signed by another key
    assert other.get(f"/q/{token}/progress").status_code == 410


def test_the_action_opens_a_used_link_only_in_its_sitting(clinic: ClinicFixture) -> None:
    _p, _signed, assignment, token = _sent(clinic)
    questionnaires.save_questionnaire_answers(
        SqlUnitOfWork(clinic.engine),
        token,
        questionnaires.SaveQuestionnaireAnswers(assignment_id=assignment.id, answers={"item1": 3}),
    )
    questionnaires.submit_questionnaire(SqlUnitOfWork(clinic.engine), token, assignment.id)
    with pytest.raises(LinkClosed) as outside:
        patient_record.open_own_record(SqlUnitOfWork(clinic.engine), token)
    assert outside.value.reason == "used"
    assert patient_record.open_own_record(SqlUnitOfWork(clinic.engine), token, sitting=True)
    late = SqlUnitOfWork(
        clinic.engine, lambda: datetime.now(UTC) + patient_record.SITTING + timedelta(seconds=1)
    )
    with pytest.raises(LinkClosed):
        patient_record.open_own_record(late, token, sitting=True)


def test_a_last_answer_sent_on_a_form_with_context_also_starts_the_sitting(
    clinic: ClinicFixture,
) -> None:
    """Every way of sending the last answer ends the link by use and starts the sitting:
    return to work or sport has a form of its own (actions.home_reports), as do PSFS and
    analgesic use; its sender still sees the progress page, another browser does not."""
    c = clinic
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email="rtw@p.test"))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    done = questionnaires.assign_questionnaires(
        c.uow(),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=ep.id, instrument_ids=["return_to_activity"], send=True, base_url=BASE
        ),
    )
    assert done.message is not None
    assert done.message.link_url is not None
    token = done.message.link_url.rsplit("/", 1)[-1]
    browser = TestClient(create_app(c.engine, secret_key=SECRET))
    sent = browser.post(
        f"/q/{token}",
        data={
            "assignment": str(done.assignments[0].id),
            "activity": "work",
            "returned": "0",
            "send": "1",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert SITTING_COOKIE in sent.headers["set-cookie"]
    assert browser.get(f"/q/{token}/progress").status_code == 200
    elsewhere = TestClient(create_app(c.engine, secret_key=SECRET))
    later = elsewhere.get(f"/q/{token}/progress")
    assert later.status_code == 410
    assert USED in later.text
