"""Questionnaires from home (issue 16), on SQLite and PostgreSQL, with a real SMTP server
(aiosmtpd) catching the mail: the clinician assigns, the invitation goes through the
outbox, the patient opens the link from the mail, answers, resumes, submits once; the
score is stored as a patient-reported measurement. Links end by use, by a newer link,
by the clinic and by time; a link opens only its own patient's questionnaires."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from needlepoint.actions import episodes, patients, questionnaires
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.mail import MailCatcher, SmtpServer
from needlepoint.analytics import dataset as analytics_dataset
from needlepoint.analytics.dashboard import compute
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    CloseEpisode,
    SaveQuestionnaireAnswers,
    SendQuestionnaireLink,
    SetQuestionnairePlan,
)
from needlepoint.domain.entities import OutboxMessage
from needlepoint.domain.enums import AuditAction, LinkEnd, OutboxState, Role, TimePoint
from needlepoint.domain.errors import InvalidInput, NotFound, PermissionDenied
from needlepoint.domain.questionnaires import LinkClosed, hash_link_token
from needlepoint.outbox import OutboxWorker
from needlepoint.queries.questionnaires import outbox, patient_reported_ids
from needlepoint.queries.reader import open_reader
from tests.conftest import ClinicFixture, make_clinic
from tests.factories import episode_cmd, patient_cmd
from tests.integration import test_row_level_security

app_engine = test_row_level_security.app_engine  # the fixture: PostgreSQL's application role
BASE = "http://clinic.test"
LINK = re.compile(r"http://clinic\.test/q/([A-Za-z0-9_\-]+)")
NDI_ALL_TWO = {f"item{i}": 2 for i in range(1, 11)}  # 20 of 50 points = 40 %


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher() as c:
        yield c


def _patient_with_episode(c: ClinicFixture, email: str | None = "ada@patient.test") -> tuple:  # type: ignore[type-arg]
    p = patients.register_patient(c.uow(), c.as_clinician, patient_cmd(email=email))
    ep = episodes.open_episode(c.uow(), c.as_clinician, episode_cmd(p.id))
    return p, ep


def _worker(c: ClinicFixture, catcher: MailCatcher, **kw: object) -> OutboxWorker:
    return OutboxWorker(
        c.engine,
        SmtpServer.from_url(catcher.url),
        base_url=BASE,
        only_clinics=[c.owner.clinic_id],
        **kw,  # type: ignore[arg-type]
    )


def _send_ndi(c: ClinicFixture, episode_id: UUID) -> questionnaires.Assigned:
    return questionnaires.assign_questionnaires(
        c.uow(),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=episode_id, instrument_ids=["ndi"], send=True, base_url=BASE
        ),
    )


def _token_from(catcher: MailCatcher, recipient: str) -> str:
    mails = [m for m in catcher.messages if recipient in m.recipients]
    assert mails, f"no mail to {recipient}"
    found = LINK.search(mails[-1].body)
    assert found is not None, mails[-1].body
    return found.group(1)


def test_the_clinician_assigns_ndi_the_mail_arrives_and_the_patient_answers_it(
    clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    p, ep = _patient_with_episode(clinic)
    done = _send_ndi(clinic, ep.id)
    assert [a.instrument_id for a in done.assignments] == ["ndi"]
    assert done.assignments[0].time_point is TimePoint.DURING_CARE  # the episode began earlier
    assert done.message is not None
    assert done.message.state is OutboxState.PENDING

    sent = _worker(clinic, catcher).run_once()
    assert sent.sent == 1
    mail = next(m for m in catcher.messages if "ada@patient.test" in m.recipients)
    assert "Test Clinic" in mail.body
    # No health information in the mail: no questionnaire, condition or patient name.
    for word in ("Neck", "NDI", "neck", "Ada", "Testperson", "pain"):
        assert word not in mail.body + mail.subject
    token = _token_from(catcher, "ada@patient.test")
    with clinic.engine.connect() as conn:
        stored = conn.execute(sa.select(t.questionnaire_links.c.token_hash)).scalars().all()
        assert hash_link_token(token) in stored
        assert token not in stored
        row = conn.execute(
            sa.select(t.outbox_messages).where(t.outbox_messages.c.id == done.message.id)
        ).one()
        assert row.state == "sent"
        assert row.link_url is None  # the link is forgotten once sent
        assert token not in row.body

    opened = questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token)
    assert opened.clinic_name == "Test Clinic"
    ((assignment, response),) = opened.due
    assert response.answers == {}

    # Saved as the patient goes; resumable: opening again shows what was saved.
    first_half = {k: v for k, v in NDI_ALL_TWO.items() if int(k[4:]) <= 5}
    questionnaires.save_questionnaire_answers(
        SqlUnitOfWork(clinic.engine),
        token,
        SaveQuestionnaireAnswers(assignment_id=assignment.id, answers=first_half),
    )
    again = questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token)
    assert again.due[0][1].answers == first_half
    # Half a questionnaire is not scored: submitting names the first unanswered item.
    with pytest.raises(InvalidInput) as half:
        questionnaires.submit_questionnaire(SqlUnitOfWork(clinic.engine), token, assignment.id)
    assert half.value.field == "answers.item6"
    with clinic.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.measurements)
                .where(t.measurements.c.patient_id == p.id)
            ).scalar_one()
            == 0
        )

    questionnaires.save_questionnaire_answers(
        SqlUnitOfWork(clinic.engine),
        token,
        SaveQuestionnaireAnswers(assignment_id=assignment.id, answers=NDI_ALL_TWO),
    )
    m = questionnaires.submit_questionnaire(SqlUnitOfWork(clinic.engine), token, assignment.id)
    assert m.instrument_id == "ndi"
    assert m.score == pytest.approx(40.0)
    assert m.episode_id == ep.id
    with open_reader(clinic.engine, p.clinic_id, Role.CLINICIAN, clinic.clinician.id) as r:
        assert m.id in patient_reported_ids(r, p.id)
        # The clinic's analytics count it among the outcome scores, as the patient's.
        board, _fitted = compute(analytics_dataset.load(r))
    assert (board.measurements, board.patient_reported) == (1, 1)

    # Submitted once: the link is used up.
    with pytest.raises(LinkClosed) as used:
        questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token)
    assert used.value.reason == LinkEnd.USED


def test_an_answer_out_of_range_is_refused_naming_the_item(clinic: ClinicFixture) -> None:
    _p, ep = _patient_with_episode(clinic)
    done = _send_ndi(clinic, ep.id)
    token = _plain_token(clinic, done)
    with pytest.raises(InvalidInput) as bad:
        questionnaires.save_questionnaire_answers(
            SqlUnitOfWork(clinic.engine),
            token,
            SaveQuestionnaireAnswers(assignment_id=done.assignments[0].id, answers={"item3": 9}),
        )
    assert bad.value.field == "answers.item3"


def _plain_token(c: ClinicFixture, done: questionnaires.Assigned) -> str:
    """The token as the mail will carry it (read from the sealed outbox row)."""
    assert done.message is not None
    with c.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == done.message.id)
        ).scalar_one()
    return str(url).rsplit("/", 1)[-1]


def test_a_link_opens_only_its_own_patients_questionnaires(clinic: ClinicFixture) -> None:
    _a, ep_a = _patient_with_episode(clinic, "a@patient.test")
    _b, ep_b = _patient_with_episode(clinic, "b@patient.test")
    token_a = _plain_token(clinic, _send_ndi(clinic, ep_a.id))
    done_b = _send_ndi(clinic, ep_b.id)
    opened = questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token_a)
    assert {a.patient_id for a, _r in opened.due} == {ep_a.patient_id}
    with pytest.raises(NotFound):
        questionnaires.save_questionnaire_answers(
            SqlUnitOfWork(clinic.engine),
            token_a,
            SaveQuestionnaireAnswers(assignment_id=done_b.assignments[0].id, answers={"item1": 1}),
        )
    with pytest.raises(NotFound):
        questionnaires.submit_questionnaire(
            SqlUnitOfWork(clinic.engine), token_a, done_b.assignments[0].id
        )


def test_links_end_by_a_newer_link_by_the_clinic_and_by_time(clinic: ClinicFixture) -> None:
    p, ep = _patient_with_episode(clinic)
    first = _plain_token(clinic, _send_ndi(clinic, ep.id))
    link, _message = questionnaires.send_questionnaire_link(
        clinic.uow(), clinic.as_clinician, SendQuestionnaireLink(patient_id=p.id, base_url=BASE)
    )
    with pytest.raises(LinkClosed) as old:
        questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), first)
    assert old.value.reason == LinkEnd.SUPERSEDED

    questionnaires.revoke_questionnaire_link(clinic.uow(), clinic.as_clinician, link.id)
    with clinic.engine.connect() as conn:
        state = conn.execute(
            sa.select(t.outbox_messages.c.state).where(t.outbox_messages.c.link_id == link.id)
        ).scalar_one()
    assert state == "failed"  # its unsent e-mail is not sent

    done = questionnaires.send_questionnaire_link(
        clinic.uow(), clinic.as_clinician, SendQuestionnaireLink(patient_id=p.id, base_url=BASE)
    )
    token = _plain_token_of_message(clinic, done[1])
    later = SqlUnitOfWork(clinic.engine, lambda: datetime.now(UTC) + timedelta(days=15))
    with pytest.raises(LinkClosed) as expired:
        questionnaires.open_questionnaires(later, token)
    assert expired.value.reason == "expired"


def _plain_token_of_message(c: ClinicFixture, message: OutboxMessage) -> str:
    with c.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == message.id)
        ).scalar_one()
    return str(url).rsplit("/", 1)[-1]


def test_an_expired_link_asks_for_a_new_one_once_an_hour_and_the_clinic_is_told(
    clinic: ClinicFixture,
) -> None:
    p, ep = _patient_with_episode(clinic)
    token = _plain_token(clinic, _send_ndi(clinic, ep.id))
    later = datetime.now(UTC) + timedelta(days=15)
    assert questionnaires.request_new_link(SqlUnitOfWork(clinic.engine, lambda: later), token, BASE)
    # At most once an hour.
    assert not questionnaires.request_new_link(
        SqlUnitOfWork(clinic.engine, lambda: later + timedelta(minutes=5)), token, BASE
    )
    # An unknown token learns nothing and changes nothing.
    assert not questionnaires.request_new_link(SqlUnitOfWork(clinic.engine), "nonsense", BASE)
    with clinic.engine.connect() as conn:
        links = conn.execute(
            sa.select(t.questionnaire_links).where(t.questionnaire_links.c.patient_id == p.id)
        ).all()
        told = conn.execute(
            sa.select(t.notifications).where(t.notifications.c.subject_id == p.id)
        ).all()
    assert len(links) == 2
    assert len(told) == 1
    assert told[0].recipient_id == clinic.clinician.id


def test_every_patient_act_is_audited(clinic: ClinicFixture) -> None:
    p, ep = _patient_with_episode(clinic)
    done = _send_ndi(clinic, ep.id)
    token = _plain_token(clinic, done)
    a = done.assignments[0].id
    questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token, address="198.51.100.4")
    questionnaires.save_questionnaire_answers(
        SqlUnitOfWork(clinic.engine),
        token,
        SaveQuestionnaireAnswers(assignment_id=a, answers=NDI_ALL_TWO),
        address="198.51.100.4",
    )
    questionnaires.submit_questionnaire(
        SqlUnitOfWork(clinic.engine), token, a, address="198.51.100.4"
    )
    with clinic.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.audit_events.c.action, t.audit_events.c.source, t.audit_events.c.source_address
            )
            .where(t.audit_events.c.patient_id == p.id, t.audit_events.c.source == "patient-link")
            .order_by(t.audit_events.c.seq)
        ).all()
    assert [r.action for r in rows] == [
        AuditAction.QUESTIONNAIRE_OPENED,
        AuditAction.QUESTIONNAIRE_ANSWER_SAVED,
        AuditAction.QUESTIONNAIRE_SUBMITTED,
    ]
    assert {r.source_address for r in rows} == {"198.51.100.4"}


def test_the_outbox_is_the_clinics_own(clinic: ClinicFixture, other_clinic: ClinicFixture) -> None:
    _p, ep = _patient_with_episode(clinic)
    _send_ndi(clinic, ep.id)
    mine_id, theirs_id = clinic.owner.clinic_id, other_clinic.owner.clinic_id
    with open_reader(clinic.engine, mine_id, Role.ASSISTANT, clinic.assistant.id) as r:
        mine = outbox(r)
    assert [m.recipient for m in mine.messages] == ["ada@patient.test"]
    assert mine.counts == {"pending": 1}
    with open_reader(clinic.engine, theirs_id, Role.OWNER, other_clinic.owner.id) as r:
        assert outbox(r).messages == []
    auditor = clinic.owner  # an auditor reads no demographics: no outbox
    with (
        pytest.raises(PermissionDenied),
        open_reader(clinic.engine, mine_id, Role.AUDITOR, auditor.id) as r,
    ):
        outbox(r)


def test_the_clinic_sets_its_plan_per_condition(clinic: ClinicFixture) -> None:
    plan = questionnaires.set_questionnaire_plan(
        clinic.uow(),
        clinic.as_owner,
        SetQuestionnairePlan(
            condition="neck_pain",
            instruments={"ndi": ["intake", "discharge"], "pgic": ["follow_up"]},
            every_n_days=14,
            follow_up_days=[42, 91],
        ),
    )
    again = questionnaires.set_questionnaire_plan(
        clinic.uow(),
        clinic.as_owner,
        SetQuestionnairePlan(condition="neck_pain", instruments={"ndi": ["intake"]}),
    )
    assert again.id == plan.id
    assert again.version == 2
    with pytest.raises(PermissionDenied):
        questionnaires.set_questionnaire_plan(
            clinic.uow(),
            clinic.as_clinician,
            SetQuestionnairePlan(condition="neck_pain", instruments={"ndi": ["intake"]}),
        )
    with pytest.raises(InvalidInput) as bad:
        questionnaires.set_questionnaire_plan(
            clinic.uow(),
            clinic.as_owner,
            SetQuestionnairePlan(condition="neck_pain", instruments={"rom": ["intake"]}),
        )
    assert bad.value.field == "instruments.rom"


def test_a_patient_without_an_email_gets_no_link_and_nothing_is_written(
    clinic: ClinicFixture,
) -> None:
    _p, ep = _patient_with_episode(clinic, email=None)
    with clinic.engine.connect() as conn:
        before = conn.execute(
            sa.select(sa.func.count()).select_from(t.questionnaire_assignments)
        ).scalar_one()
    with pytest.raises(InvalidInput) as e:
        _send_ndi(clinic, ep.id)
    assert e.value.field == "email"
    with clinic.engine.connect() as conn:
        after = conn.execute(
            sa.select(sa.func.count()).select_from(t.questionnaire_assignments)
        ).scalar_one()
    assert after == before


def test_a_refused_delivery_is_retried_later_with_back_off(clinic: ClinicFixture) -> None:
    _p, ep = _patient_with_episode(clinic)
    done = _send_ndi(clinic, ep.id)
    nowhere = OutboxWorker(
        clinic.engine,
        SmtpServer.from_url("smtp://127.0.0.1:9"),  # nothing listens on the discard port
        only_clinics=[clinic.owner.clinic_id],
    )
    result = nowhere.run_once()
    assert result.failed == 1
    assert done.message is not None
    with clinic.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.outbox_messages).where(t.outbox_messages.c.id == done.message.id)
        ).one()
    assert row.state == "pending"
    assert row.attempts == 1
    assert row.last_error
    assert row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=30)
    assert nowhere.run_once().failed == 0  # not yet due again


def test_a_reminder_replaces_the_link_after_three_days(
    clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    _p, ep = _patient_with_episode(clinic, "rem@patient.test")
    first = _plain_token(clinic, _send_ndi(clinic, ep.id))
    _worker(clinic, catcher).run_once()
    later = datetime.now(UTC) + timedelta(days=3, minutes=1)
    assert _worker(clinic, catcher, clock=lambda: later).run_once().reminders == 1
    # One per schedule entry (a new worker: a running one looks once a minute).
    assert _worker(clinic, catcher, clock=lambda: later).run_once().reminders == 0
    mails = [m for m in catcher.messages if "rem@patient.test" in m.recipients]
    assert len(mails) == 2
    assert mails[1].subject.startswith("Reminder")
    with pytest.raises(LinkClosed):
        questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine, lambda: later), first)
    new = _token_from(catcher, "rem@patient.test")
    opened = questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine, lambda: later), new)
    assert len(opened.due) == 1


def _assignments(c: ClinicFixture, episode_id: UUID) -> list[tuple[str, str]]:
    with c.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.questionnaire_assignments.c.instrument_id,
                t.questionnaire_assignments.c.time_point,
            ).where(t.questionnaire_assignments.c.episode_id == episode_id)
        )
        return sorted((r[0], str(r[1])) for r in rows)


def test_assigning_twice_does_not_ask_twice(clinic: ClinicFixture) -> None:
    _p, ep = _patient_with_episode(clinic)
    _send_ndi(clinic, ep.id)
    with pytest.raises(InvalidInput):
        questionnaires.assign_questionnaires(
            clinic.uow(),
            clinic.as_clinician,
            AssignQuestionnaires(episode_id=ep.id, instrument_ids=["ndi"]),
        )
    assert len(_assignments(clinic, ep.id)) == 1  # the first one stays the only one


def test_an_unanswered_earlier_form_does_not_stop_the_next_time_point(
    clinic: ClinicFixture,
) -> None:
    """The NDI asked during care is still unanswered at discharge: the discharge NDI is
    asked all the same, and the earlier one stays (overdue, counted as not completed)."""
    _p, ep = _patient_with_episode(clinic)
    _send_ndi(clinic, ep.id)
    first = _assignments(clinic, ep.id)
    questionnaires.assign_questionnaires(
        clinic.uow(),
        clinic.as_clinician,
        AssignQuestionnaires(
            episode_id=ep.id, instrument_ids=["ndi"], time_point=TimePoint.DISCHARGE
        ),
    )
    assert _assignments(clinic, ep.id) == sorted([*first, ("ndi", "discharge")])


def test_the_whole_path_works_as_the_application_role_under_row_level_security(
    app_engine: sa.Engine, catcher: MailCatcher
) -> None:
    """PostgreSQL, connected as a member of needlepoint_app (not the tables' owner): the
    link is found by its hash before the clinic is known, the worker reads each clinic's
    outbox scoped to it, and the patient's answers land in the right clinic only."""
    c = make_clinic(app_engine)
    p, ep = _patient_with_episode(c, "rls@patient.test")
    _send_ndi(c, ep.id)
    assert _worker(c, catcher).run_once().sent == 1
    token = _token_from(catcher, "rls@patient.test")
    opened = questionnaires.open_questionnaires(SqlUnitOfWork(app_engine), token)
    a = opened.due[0][0].id
    questionnaires.save_questionnaire_answers(
        SqlUnitOfWork(app_engine),
        token,
        SaveQuestionnaireAnswers(assignment_id=a, answers=NDI_ALL_TWO),
    )
    m = questionnaires.submit_questionnaire(SqlUnitOfWork(app_engine), token, a)
    assert m.clinic_id == p.clinic_id
    with app_engine.connect() as conn:  # no clinic chosen: the application role sees nothing
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.outbox_messages)).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(t.questionnaire_responses)
            ).scalar_one()
            == 0
        )


def test_with_a_plan_the_worker_sends_what_falls_due_once(
    clinic: ClinicFixture, catcher: MailCatcher
) -> None:
    """Once the clinic chose a plan for neck pain, the worker sends the 6-week follow-up
    of a discharged episode by itself, once; without a plan nothing is sent by itself."""
    p, ep = _patient_with_episode(clinic, "plan@patient.test")
    discharged = episodes.close_episode(
        clinic.uow(),
        clinic.as_clinician,
        CloseEpisode(
            episode_id=ep.id,
            expected_version=ep.version,
            closed_on=date.today() - timedelta(days=42),
            discharge_reason="goals met",
        ),
    )
    assert discharged.closed_on is not None
    assert _worker(clinic, catcher).run_once().scheduled == 0  # no plan: by hand only
    questionnaires.set_questionnaire_plan(
        clinic.uow(),
        clinic.as_owner,
        SetQuestionnairePlan(
            condition="neck_pain",
            instruments={"ndi": ["discharge", "follow_up"], "groc": ["follow_up"]},
            follow_up_days=[42, 91],
        ),
    )
    first = _worker(clinic, catcher).run_once()
    assert first.scheduled == 1
    assert first.sent == 1
    assert _worker(clinic, catcher).run_once().scheduled == 0  # never twice
    with clinic.engine.connect() as conn:
        asked = conn.execute(
            sa.select(
                t.questionnaire_assignments.c.instrument_id,
                t.questionnaire_assignments.c.time_point,
            ).where(t.questionnaire_assignments.c.patient_id == p.id)
        ).all()
    assert sorted(asked) == [("groc", "follow_up"), ("ndi", "follow_up")]
    token = _token_from(catcher, "plan@patient.test")
    opened = questionnaires.open_questionnaires(SqlUnitOfWork(clinic.engine), token)
    assert {a.instrument_id for a, _r in opened.due} == {"groc", "ndi"}


def test_the_outbox_command_sends_what_waits_and_says_what_it_needs(
    tmp_path: Path, catcher: MailCatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from needlepoint.adapters.db.engine import make_engine
    from needlepoint.adapters.db.migrate import upgrade
    from needlepoint.cli import app

    engine = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    upgrade(engine)
    c = make_clinic(engine)
    _p, ep = _patient_with_episode(c, "cli@patient.test")
    _send_ndi(c, ep.id)
    runner = CliRunner()
    monkeypatch.delenv("NEEDLEPOINT_SMTP_URL", raising=False)
    refused = runner.invoke(app, ["outbox", "--once", "--db", str(tmp_path / "o.db")])
    assert refused.exit_code == 2
    assert "NEEDLEPOINT_SMTP_URL" in refused.output
    monkeypatch.setenv("NEEDLEPOINT_SMTP_URL", catcher.url)
    done = runner.invoke(app, ["outbox", "--once", "--db", str(tmp_path / "o.db")])
    assert done.exit_code == 0, done.output
    assert "sent 1" in done.output
    assert any("cli@patient.test" in m.recipients for m in catcher.messages)
