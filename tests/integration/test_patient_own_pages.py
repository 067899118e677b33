"""Issue 16, second part, on both databases: completion rates (only submitted answers
count), the chart's pending and overdue questionnaires, the patient's own progress and
consent pages behind their link, withdrawing consent (audited; needling refused after),
and kiosk mode (the clinician is signed out of the tablet; audited)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions import (
    consent,
    episodes,
    patient_record,
    patients,
    questionnaires,
    sessions,
)
from needlepoint.actions.clinics import register_user
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics.completion import completion
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    RegisterUser,
    SaveQuestionnaireAnswers,
    SignSession,
)
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.domain.errors import NotFound
from needlepoint.queries.questionnaire_completion import due_words
from needlepoint.queries.reader import open_reader
from needlepoint.queries.screening import needling_status
from needlepoint.web.api.completion import CompletionOut
from needlepoint.web.app import create_app
from tests.conftest import ClinicFixture, make_api
from tests.factories import consent_cmd, episode_cmd, patient_cmd, session_cmd

BASE = "http://clinic.test"
PASSWORD = "correct horse battery"
NDI = {f"item{i}": 2 for i in range(1, 11)}


def _sent(c: ClinicFixture, email: str, instruments: list[str], due_on: date | None = None):  # type: ignore[no-untyped-def]
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email=email))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    done = questionnaires.assign_questionnaires(
        c.uow(),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=ep.id, instrument_ids=instruments, send=True, base_url=BASE, due_on=due_on
        ),
    )
    with c.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == done.message.id)
        ).scalar_one()
    return p, done, str(url).rsplit("/", 1)[-1]


def _answer_ndi(c: ClinicFixture, token: str, assignment_id, submit: bool = True) -> None:  # type: ignore[no-untyped-def]
    questionnaires.save_questionnaire_answers(
        SqlUnitOfWork(c.engine),
        token,
        SaveQuestionnaireAnswers(assignment_id=assignment_id, answers=NDI),
    )
    if submit:
        questionnaires.submit_questionnaire(SqlUnitOfWork(c.engine), token, assignment_id)


def _client(c: ClinicFixture) -> TestClient:
    email = f"web-{c.owner.clinic_id.hex[:8]}@test.example"
    register_user(
        SqlUnitOfWork(c.engine),
        c.as_owner,
        RegisterUser(
            email=email, full_name="Web Clinician", role=Role.CLINICIAN, password=PASSWORD
        ),
    )
    client = TestClient(create_app(c.engine, secret_key="k" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return client


def _events(c: ClinicFixture, action: AuditAction) -> list[sa.Row]:  # type: ignore[type-arg]
    with c.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.audit_events).where(
                    t.audit_events.c.action == action,
                    # the database is the session's: other tests' clinics write these too
                    t.audit_events.c.clinic_id == c.owner.clinic_id,
                )
            )
        )


def test_completion_counts_only_submitted_answers(clinic: ClinicFixture) -> None:
    _p1, done1, token1 = _sent(clinic, "one@p.test", ["ndi"])
    _p2, done2, token2 = _sent(clinic, "two@p.test", ["ndi"])
    _p3, _done3, _token3 = _sent(
        clinic, "three@p.test", ["ndi"], due_on=date.today() + timedelta(days=30)
    )
    _answer_ndi(clinic, token1, done1.assignments[0].id)
    _answer_ndi(clinic, token2, done2.assignments[0].id, submit=False)  # saved, never sent
    today = datetime.now(UTC).date()
    with open_reader(
        clinic.engine, clinic.owner.clinic_id, Role.CLINICIAN, clinic.as_clinician.user_id
    ) as r:
        found = completion(r, today)
    assert (found.overall.completed, found.overall.asked) == (1, 2)  # not yet due: not counted
    assert found.overall.low is not None
    assert found.overall.low < 0.5 < found.overall.high
    (ndi,) = found.by_questionnaire
    assert (ndi.label, ndi.completed, ndi.asked) == ("Neck Disability Index", 1, 2)
    assert [(x.key, x.completed, x.asked) for x in found.by_time_point] == [("during_care", 1, 2)]
    assert [(x.completed, x.asked) for x in found.by_clinician] == [(1, 2)]
    assert {b.id for b in found.benchmarks} == {
        "automated_email",
        "email_reminders",
        "combined_effort",
    }
    assert "source not verified" in found.benchmarks[0].source  # the 42 % end is not verified
    # The API answers the same figures, in its documented shape; the assistant may not.
    api = make_api(clinic.engine, clinic)
    got = api.client.get("/api/v1/analytics/completion", headers=api.headers())
    assert got.status_code == 200
    body = CompletionOut.model_validate(got.json())
    assert (body.overall.completed, body.overall.asked) == (1, 2)
    assert [p.checked for p in body.published][1] == "seen in the source"
    refused = api.client.get("/api/v1/analytics/completion", headers=api.headers("assistant"))
    assert refused.status_code == 403
    client = _client(clinic)
    page = client.get("/analytics/completion")
    assert page.status_code == 200
    assert "1 / 2" in page.text
    assert "doi:10.1016/j.jses.2017.03.002" in page.text


def test_pending_and_overdue_on_the_chart_and_kiosk_mode(clinic: ClinicFixture) -> None:
    p, _done, _token = _sent(clinic, "k@p.test", ["ndi"], due_on=date.today() - timedelta(days=3))
    client = _client(clinic)
    chart = client.get(f"/patients/{p.id}")
    assert "overdue by 3 days" in chart.text or "overdue by 2 days" in chart.text  # zone edge
    csrf = re.search(r'name="csrf" value="([^"]+)"', chart.text)
    assert csrf
    handed = client.post(f"/patients/{p.id}/kiosk", data={"csrf": csrf[1]}, follow_redirects=False)
    assert handed.status_code == 303
    target = handed.headers["location"]
    assert target.startswith("/q/")
    # The clinician's session is over on this device: the chart asks to sign in again.
    again = client.get(f"/patients/{p.id}", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/login"
    questionnaire = client.get(target)
    assert questionnaire.status_code == 200
    assert "Neck" in questionnaire.text
    assert len(_events(clinic, AuditAction.KIOSK_STARTED)) == 1
    assert len(_events(clinic, AuditAction.SIGNED_OUT)) >= 1


def test_after_the_last_answer_on_the_kiosk_the_tablet_shows_nothing_of_the_patient(
    clinic: ClinicFixture,
) -> None:
    """The clinic's tablet passes to the next person: once the patient has sent the last
    answer there, their progress and consent (and its withdrawal) are closed on it at
    once, unlike the browser of an e-mailed link, which keeps them for the sitting."""
    p, done, _token = _sent(clinic, "kiosk@p.test", ["nprs"])
    signed = consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(p.id))
    tablet = _client(clinic)
    chart = tablet.get(f"/patients/{p.id}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', chart.text)
    assert csrf
    handed = tablet.post(f"/patients/{p.id}/kiosk", data={"csrf": csrf[1]}, follow_redirects=False)
    target = handed.headers["location"]
    sent = tablet.post(
        target,
        data={"assignment": str(done.assignments[0].id), "item1": "3", "send": "1"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    for path in ("/progress", "/consent"):
        closed = tablet.get(target + path)
        assert closed.status_code == 410, path
        assert "This link has been used" in closed.text
    withdraw = tablet.post(
        target + "/consent/withdraw", data={"consent": str(signed.id), "confirm": "yes"}
    )
    assert withdraw.status_code == 410
    with open_reader(clinic.engine, clinic.owner.clinic_id, Role.OWNER, clinic.owner.id) as rd:
        assert needling_status(rd, p.id, datetime.now(UTC)).consent is not None


def test_finishing_on_the_kiosk_ends_the_patients_e_mailed_link_too(
    clinic: ClinicFixture,
) -> None:
    """Everything answered on the clinic's tablet: the link e-mailed earlier opens
    nothing any more (it would show progress and consent with nothing to answer)."""
    p, done, emailed = _sent(clinic, "both@p.test", ["nprs"])
    kiosk = patient_record.start_kiosk(clinic.uow(), clinic.as_clinician, p.id)
    questionnaires.save_questionnaire_answers(
        clinic.uow(),
        kiosk.token,
        SaveQuestionnaireAnswers(assignment_id=done.assignments[0].id, answers={"item1": 2}),
    )
    questionnaires.submit_questionnaire(clinic.uow(), kiosk.token, done.assignments[0].id)
    later = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    for path in ("", "/progress", "/consent"):
        page = later.get(f"/q/{emailed}{path}")
        assert page.status_code == 410, path
        assert "This link has been used" in page.text
    with clinic.engine.connect() as conn:
        ended = conn.execute(
            sa.select(t.questionnaire_links.c.ended_because).where(
                t.questionnaire_links.c.patient_id == p.id
            )
        ).scalars()
        assert set(ended) == {"used"}


def test_the_patients_progress_leaves_out_scores_of_unsigned_draft_notes(
    clinic: ClinicFixture,
) -> None:
    """Unsigned drafts are not data: a draft note's NPRS is not on the patient's own
    progress page; once the note is signed, it is."""
    p, done, token = _sent(clinic, "draft@p.test", ["ndi"])
    ep = done.assignments[0].episode_id
    clinic.prepare_needling(p.id)
    draft = sessions.record_session(
        clinic.uow(),
        clinic.as_clinician,
        session_cmd(ep, measurements=[{"instrument_id": "nprs", "answers": {"item1": 9}}]),
    )
    client = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    progress = client.get(f"/q/{token}/progress")
    assert progress.status_code == 200
    assert "9/10" not in progress.text
    sessions.sign_session(
        clinic.uow(),
        clinic.as_clinician,
        SignSession(session_id=draft.id, expected_version=draft.version),
    )
    assert "9/10" in client.get(f"/q/{token}/progress").text


def test_due_words() -> None:
    today = date(2026, 11, 27)
    assert due_words(date(2026, 11, 24), today) == (3, "overdue by 3 days")
    assert due_words(date(2026, 11, 26), today) == (1, "overdue by 1 day")
    assert due_words(today, today) == (0, "due today")
    assert due_words(date(2026, 11, 29), today) == (0, "due in 2 days")


def test_the_patient_sees_own_progress_and_consent_and_withdraws(clinic: ClinicFixture) -> None:
    p, done, token = _sent(clinic, "own@p.test", ["ndi", "nprs"])
    signed = consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(p.id))
    ndi = next(a for a in done.assignments if a.instrument_id == "ndi")
    _answer_ndi(clinic, token, ndi.id)
    client = TestClient(create_app(clinic.engine, secret_key="k" * 40))
    progress = client.get(f"/q/{token}/progress")
    assert progress.status_code == 200
    assert "sent by you" in progress.text
    assert "not measured" in progress.text  # NPRS asked, not answered yet
    assert "source:" in progress.text  # the MCID with its source
    page = client.get(f"/q/{token}/consent")
    assert page.status_code == 200
    assert "Ada Testperson" in page.text
    assert "Withdraw my consent" in page.text
    # Not without the confirmation box.
    r = client.post(f"/q/{token}/consent/withdraw", data={"consent": str(signed.id)})
    assert "tick the box" in r.text
    with open_reader(clinic.engine, clinic.owner.clinic_id, Role.OWNER, clinic.owner.id) as rd:
        assert needling_status(rd, p.id, datetime.now(UTC)).consent is not None
    r = client.post(
        f"/q/{token}/consent/withdraw", data={"consent": str(signed.id), "confirm": "yes"}
    )
    assert r.status_code == 200
    assert "Your consent is withdrawn" in r.text
    (event,) = _events(clinic, AuditAction.CONSENT_WITHDRAWN_BY_PATIENT)
    assert event.source == "patient-link"
    assert event.patient_id == p.id
    assert _events(clinic, AuditAction.PATIENT_RECORD_VIEWED)
    with open_reader(clinic.engine, clinic.owner.clinic_id, Role.OWNER, clinic.owner.id) as rd:
        status = needling_status(rd, p.id, datetime.now(UTC))
    assert not status.may_needle
    assert status.consent is None
    chart = _client(clinic).get(f"/patients/{p.id}")
    assert "Consent to dry needling withdrawn on" in chart.text


def test_a_link_opens_only_its_own_patients_record(clinic: ClinicFixture) -> None:
    p1, _d1, _t1 = _sent(clinic, "a@p.test", ["ndi"])
    _p2, _d2, token2 = _sent(clinic, "b@p.test", ["ndi"])
    theirs = consent.record_consent(clinic.uow(), clinic.as_clinician, consent_cmd(p1.id))
    try:
        patient_record.withdraw_own_consent(SqlUnitOfWork(clinic.engine), token2, theirs.id)
        raise AssertionError("another patient's consent was withdrawn")
    except NotFound:
        pass
    page = TestClient(create_app(clinic.engine, secret_key="k" * 40)).get(f"/q/{token2}/consent")
    assert "Ada Testperson" not in page.text  # patient 1's signer
    assert "no signed consent" in page.text
    # An unknown or revoked token opens nothing.
    gone = TestClient(create_app(clinic.engine, secret_key="k" * 40)).get("/q/nothing/progress")
    assert gone.status_code == 404
