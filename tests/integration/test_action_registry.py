"""Tests generated from the action registry (`actions/registry.py`), on SQLite and
PostgreSQL:

* every action writes exactly its declared audit event(s), each exactly once, in the one
  commit of its own transaction (together with the records it changes);
* every action that declares a permission refuses each role without it (writing only
  the `access.denied` event of the refusal) and an actor of another clinic (writing
  nothing at all).

Each registered action has scenarios below; a test fails when an action has none, or
when its scenarios together do not exercise every event kind it declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa

from needlepoint.actions import (
    accounts,
    adverse_events,
    care_team,
    clinics,
    consent,
    credentials,
    episodes,
    home_reports,
    importing,
    outbox,
    outcomes,
    patient_record,
    patients,
    questionnaires,
    research,
    screening,
    sessions,
    staff,
    templates,
)
from needlepoint.actions.context import Actor
from needlepoint.actions.registry import Declared, all_actions
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.passwords import hash_api_token, hash_password
from needlepoint.adapters.totp import code_at
from needlepoint.domain.commands import (
    AddAdverseEventFollowUp,
    AddCareTeamMember,
    AddNoteSnippet,
    AddTrainingRecord,
    AmendSession,
    AssignQuestionnaires,
    ChangePassword,
    CloseEpisode,
    CompletePasswordReset,
    CreateApiToken,
    DiscardSession,
    ImportAmendment,
    ImportPatient,
    ImportSession,
    MfaCode,
    RecordAdverseEvent,
    RecordMeasurement,
    RecordMedicationUse,
    RecordReferral,
    RegisterClinic,
    RegisterUser,
    ReissueRecoveryCodes,
    ReportAnalgesicUse,
    ReportPsfs,
    ReportReturnToActivity,
    RequestEmergencyAccess,
    SaveQuestionnaireAnswers,
    SendQuestionnaireLink,
    SetFavourites,
    SetQuestionnairePlan,
    SignSession,
    UpdateClinicSettings,
    UpdatePatient,
    UpdateSecuritySettings,
    UpdateSession,
    UpdateStaffMember,
    WithdrawConsent,
)
from needlepoint.domain.entities import AuditEvent, Entity, User, WebSession
from needlepoint.domain.enums import AdverseEventKind, AuditAction, FollowUpKind, Role, Severity
from needlepoint.domain.errors import PermissionDenied
from needlepoint.domain.permissions import allows
from needlepoint.domain.research import ExportResearch
from needlepoint.ports import ConnectedUnitOfWork
from tests.conftest import ClinicFixture, make_clinic
from tests.factories import consent_cmd, episode_cmd, patient_cmd, screening_cmd, session_cmd

E = TypeVar("E", bound=Entity)
REGISTRY = all_actions()
PASSWORD = "correct horse battery"


class Recording:
    """A unit of work (`ports.ConnectedUnitOfWork`) around a real one that keeps what
    each commit carried: which records, and which audit events, went into which
    transaction."""

    def __init__(self, inner: SqlUnitOfWork) -> None:
        self.inner = inner
        self.staged: list[Entity] = []
        self.commits: list[list[Entity]] = []
        self.denials: list[AuditEvent] = []

    def now(self) -> datetime:
        return self.inner.now()

    def new_id(self) -> UUID:
        return self.inner.new_id()

    def __enter__(self) -> Self:
        self.inner.__enter__()
        self.staged = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.inner.__exit__(exc_type, exc, tb)

    def commit(self) -> None:
        self.inner.commit()
        self.commits.append(self.staged)
        self.staged = []

    def rollback(self) -> None:
        self.inner.rollback()
        self.staged = []

    def add(self, entity: Entity) -> None:
        self.staged.append(entity)
        self.inner.add(entity)

    def replace(self, old: E, new: E) -> None:
        self.staged.append(new)
        self.inner.replace(old, new)

    def delete(self, entity: Entity) -> None:
        self.staged.append(entity)  # a removal is a change the commit carries too
        self.inner.delete(entity)

    def get(self, kind: type[E], id: UUID, clinic_id: UUID) -> E | None:
        return self.inner.get(kind, id, clinic_id)

    def list_by(self, kind: type[E], clinic_id: UUID, **equals: Any) -> list[E]:
        return self.inner.list_by(kind, clinic_id, **equals)

    def record_denial(self, event: AuditEvent) -> None:
        self.denials.append(event)
        self.inner.record_denial(event)

    @property
    def engine(self) -> sa.Engine:
        return self.inner.engine

    @property
    def connection(self) -> sa.Connection:
        return self.inner.connection


def _as_interface(uow: Recording) -> ConnectedUnitOfWork:
    """The recording double, handed to actions as the interface they are typed with."""
    return uow


# -- the world each scenario starts from ------------------------------------------------


@dataclass
class World:
    clinic: ClinicFixture
    other: ClinicFixture
    users: dict[Role, User] = field(default_factory=dict)

    @property
    def engine(self) -> sa.Engine:
        return self.clinic.engine

    def uow(self, clock: Callable[[], datetime] | None = None) -> SqlUnitOfWork:
        if clock is None:
            return SqlUnitOfWork(self.engine)
        return SqlUnitOfWork(self.engine, clock)

    def actor(self, role: Role) -> Actor:
        user = self.users[role]
        return Actor(user.id, user.clinic_id, source="test")

    @property
    def intruder(self) -> Actor:
        """The other clinic's owner, claiming to act in this clinic."""
        return Actor(self.other.owner.id, self.clinic.owner.clinic_id, source="test")

    def charted(self) -> tuple[Any, Any, Any]:
        """A screened, consented patient with an open episode and a draft note."""
        c = self.clinic
        patient = patients.register_patient(self.uow(), c.as_clinician, patient_cmd())
        c.prepare_needling(patient.id)
        episode = episodes.open_episode(self.uow(), c.as_clinician, episode_cmd(patient.id))
        note = sessions.record_session(self.uow(), c.as_clinician, session_cmd(episode.id))
        return patient, episode, note

    def user_with_password(self, role: Role = Role.CLINICIAN) -> User:
        tag = uuid4().hex[:10]
        return clinics.register_user(
            self.uow(),
            self.clinic.as_owner,
            RegisterUser(
                email=f"pw-{tag}@test.example", full_name="Pat Word", role=role, password=PASSWORD
            ),
        )

    def enrolled(self, user: User) -> list[str]:
        """Enrol `user` in TOTP; returns their recovery codes."""
        me = Actor(user.id, user.clinic_id, source="test")
        secret, _uri = accounts.begin_mfa_enrolment(self.uow(), me)
        code = code_at(secret, datetime.now(UTC))
        return accounts.confirm_mfa_enrolment(self.uow(), me, MfaCode(code=code))

    def signed_in(self, user: User) -> WebSession:
        done = accounts.sign_in(
            self.uow(), user.email, PASSWORD, address="192.0.2.7", request_id=None
        )
        assert done.session is not None
        return done.session


def make_world(engine: sa.Engine) -> World:
    clinic, other = make_clinic(engine), make_clinic(engine, "Other Clinic")
    world = World(clinic, other)
    world.users = {
        Role.OWNER: clinic.owner,
        Role.CLINICIAN: clinic.clinician,
        Role.ASSISTANT: clinic.assistant,
    }
    for role in (Role.STUDENT, Role.AUDITOR, Role.PATIENT):
        tag = uuid4().hex[:10]
        world.users[role] = clinics.register_user(
            SqlUnitOfWork(engine),
            clinic.as_owner,
            RegisterUser(email=f"{role}-{tag}@test.example", full_name=f"A {role}", role=role),
        )
    return world


# -- scenarios: for each action, how to set it up and call it ---------------------------

Call = Callable[[Any, Actor], Any]
"""Runs the action on the given unit of work as the given actor."""


@dataclass(frozen=True)
class Scenario:
    action: str  # the registry name, `module.function`
    label: str
    expects: frozenset[AuditAction]
    prepare: Callable[[World], Call]

    @property
    def id(self) -> str:
        return f"{self.action}[{self.label}]"


SCENARIOS: list[Scenario] = []


def scenario(action: str, *expects: AuditAction, label: str = "ok") -> Callable[..., Any]:
    def register(prepare: Callable[[World], Call]) -> Callable[[World], Call]:
        SCENARIOS.append(Scenario(action, label, frozenset(expects), prepare))
        return prepare

    return register


A = AuditAction


@scenario("patients.register_patient", A.PATIENT_REGISTERED)
def _(w: World) -> Call:
    return lambda uow, actor: patients.register_patient(uow, actor, patient_cmd())


@scenario("patients.update_patient", A.PATIENT_UPDATED)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    cmd = UpdatePatient(patient_id=p.id, expected_version=p.version, phone="+1-555-0100")
    return lambda uow, actor: patients.update_patient(uow, actor, cmd)


@scenario("patients.record_referral", A.REFERRAL_RECORDED)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    cmd = RecordReferral(
        patient_id=p.id, referrer_name="Dr Ana Ruiz, MD", received_on=date(2026, 1, 5)
    )
    return lambda uow, actor: patients.record_referral(uow, actor, cmd)


@scenario("episodes.open_episode", A.EPISODE_OPENED)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    return lambda uow, actor: episodes.open_episode(uow, actor, episode_cmd(p.id))


@scenario("episodes.close_episode", A.EPISODE_CLOSED)
def _(w: World) -> Call:
    _p, e, _s = w.charted()
    cmd = CloseEpisode(
        episode_id=e.id,
        expected_version=e.version,
        closed_on=date(2026, 3, 1),
        discharge_reason="Goals met",
    )
    return lambda uow, actor: episodes.close_episode(uow, actor, cmd)


@scenario("sessions.record_session", A.SESSION_RECORDED)
def _(w: World) -> Call:
    _p, e, _s = w.charted()
    return lambda uow, actor: sessions.record_session(uow, actor, session_cmd(e.id))


@scenario("sessions.update_session", A.SESSION_UPDATED)
def _(w: World) -> Call:
    _p, e, s = w.charted()
    cmd = UpdateSession(
        session_id=s.id,
        expected_version=s.version,
        **session_cmd(e.id).model_dump(exclude={"episode_id", "clinician_id"}),
    )
    return lambda uow, actor: sessions.update_session(uow, actor, cmd)


@scenario("sessions.sign_session", A.SESSION_SIGNED)
def _(w: World) -> Call:
    _p, _e, s = w.charted()
    cmd = SignSession(session_id=s.id, expected_version=s.version)
    return lambda uow, actor: sessions.sign_session(uow, actor, cmd)


@scenario("sessions.amend_session", A.SESSION_AMENDED)
def _(w: World) -> Call:
    _p, _e, s = w.charted()
    sessions.sign_session(
        w.uow(), w.clinic.as_clinician, SignSession(session_id=s.id, expected_version=s.version)
    )
    cmd = AmendSession(session_id=s.id, reason="Typo", text="Left side, not right.")
    return lambda uow, actor: sessions.amend_session(uow, actor, cmd)


@scenario("sessions.discard_session", A.SESSION_DISCARDED)
def _(w: World) -> Call:
    _p, _e, s = w.charted()
    cmd = DiscardSession(session_id=s.id, expected_version=s.version)
    return lambda uow, actor: sessions.discard_session(uow, actor, cmd)


def _signed_note(w: World) -> Any:
    _p, _e, s = w.charted()
    return sessions.sign_session(
        w.uow(), w.clinic.as_clinician, SignSession(session_id=s.id, expected_version=s.version)
    )


def _late_event(session: Any) -> RecordAdverseEvent:
    return RecordAdverseEvent(
        session_id=session.id,
        kind=AdverseEventKind.BRUISING,
        severity=Severity.MILD,
        onset_at=session.started_at + timedelta(hours=12),
        description="Bruise over the needled muscle the next morning",
    )


@scenario("adverse_events.record_adverse_event", A.ADVERSE_EVENT_RECORDED)
def _(w: World) -> Call:
    cmd = _late_event(_signed_note(w))
    return lambda uow, actor: adverse_events.record_adverse_event(uow, actor, cmd)


@scenario("adverse_events.add_follow_up", A.ADVERSE_EVENT_FOLLOWED_UP)
def _(w: World) -> Call:
    note = _signed_note(w)
    event = adverse_events.record_adverse_event(w.uow(), w.clinic.as_clinician, _late_event(note))
    cmd = AddAdverseEventFollowUp(
        adverse_event_id=event.id,
        kind=FollowUpKind.RESOLUTION,
        text="Resolved without treatment",
        occurred_at=event.onset_at + timedelta(hours=1),
    )
    return lambda uow, actor: adverse_events.add_follow_up(uow, actor, cmd)


@scenario("outcomes.record_measurement", A.MEASUREMENT_RECORDED)
def _(w: World) -> Call:
    p, e, _s = w.charted()
    cmd = RecordMeasurement(
        patient_id=p.id,
        episode_id=e.id,
        instrument_id="ndi",
        answers={f"item{i}": 2 for i in range(1, 11)},
    )
    return lambda uow, actor: outcomes.record_measurement(uow, actor, cmd)


@scenario("outcomes.record_medication_use", A.MEDICATION_RECORDED)
def _(w: World) -> Call:
    p, e, _s = w.charted()
    cmd = RecordMedicationUse(
        patient_id=p.id,
        episode_id=e.id,
        drug="Ibuprofen",
        drug_class="nsaid",
        dose_mg=400,
        days_per_week=5,
        recorded_on=date(2026, 2, 3),
    )
    return lambda uow, actor: outcomes.record_medication_use(uow, actor, cmd)


@scenario("screening.record_screening", A.SCREENING_RECORDED)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    return lambda uow, actor: screening.record_screening(uow, actor, screening_cmd(p.id))


@scenario("consent.record_consent", A.CONSENT_RECORDED)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    return lambda uow, actor: consent.record_consent(uow, actor, consent_cmd(p.id))


@scenario("consent.withdraw_consent", A.CONSENT_WITHDRAWN)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    given = consent.record_consent(w.uow(), w.clinic.as_clinician, consent_cmd(p.id))
    cmd = WithdrawConsent(
        consent_id=given.id,
        expected_version=given.version,
        withdrawn_at=datetime(2026, 2, 20, tzinfo=UTC),
    )
    return lambda uow, actor: consent.withdraw_consent(uow, actor, cmd)


@scenario("credentials.add_training_record", A.TRAINING_RECORDED)
def _(w: World) -> Call:
    cmd = AddTrainingRecord(
        user_id=w.clinic.clinician.id,
        provider="P",
        course="DN",
        hours_in_person=27,
        completed_on=date(2025, 1, 1),
        exam_passed=True,
    )
    return lambda uow, actor: credentials.add_training_record(uow, actor, cmd)


@scenario("credentials.update_clinic_settings", A.CLINIC_SETTINGS_CHANGED)
def _(w: World) -> Call:
    cmd = UpdateClinicSettings(expected_version=1, screening_valid_days=60)
    return lambda uow, actor: credentials.update_clinic_settings(uow, actor, cmd)


@scenario("clinics.register_clinic", A.CLINIC_REGISTERED)
def _(w: World) -> Call:
    tag = uuid4().hex[:10]
    cmd = RegisterClinic(name="New", owner_email=f"new-{tag}@test.example", owner_name="N")
    return lambda uow, actor: clinics.register_clinic(uow, cmd, source="test")


@scenario("clinics.register_user", A.USER_REGISTERED)
def _(w: World) -> Call:
    cmd = RegisterUser(
        email=f"u-{uuid4().hex[:10]}@test.example", full_name="U", role=Role.CLINICIAN
    )
    return lambda uow, actor: clinics.register_user(uow, actor, cmd)


def _token_id(w: World, user: User) -> UUID:
    """The id of a new operator's token of `user`."""
    plain = clinics.issue_operator_token(w.uow(), user, "to revoke", source="test")
    with w.engine.connect() as conn:
        found = conn.execute(
            sa.select(t.api_tokens.c.id).where(t.api_tokens.c.token_hash == hash_api_token(plain))
        ).scalar_one()
    return UUID(str(found))


def _with_password(w: World, user: User) -> None:
    """Give an account made without a password (the fixture's) the test's password."""
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(t.users)
            .where(t.users.c.id == user.id)
            .values(password_hash=hash_password(PASSWORD))
        )


@scenario("clinics.revoke_api_token", A.API_TOKEN_REVOKED)
def _(w: World) -> Call:
    user = w.clinic.clinician
    token_id = _token_id(w, user)
    return lambda uow, actor: clinics.revoke_api_token(uow, actor, user.id, token_id)


# The account lifecycle (issue 14): owners act on another account of the clinic; users on
# their own (the permitted actor of a USE_ACCOUNT action is the fixture's clinician).


@scenario("staff.deactivate_user", A.USER_DEACTIVATED)
def _(w: World) -> Call:
    user = w.user_with_password()
    return lambda uow, actor: staff.deactivate_user(uow, actor, user.id)


@scenario("staff.update_staff_member", A.USER_UPDATED)
def _(w: World) -> Call:
    user = w.user_with_password()
    cmd = UpdateStaffMember(
        user_id=user.id, expected_version=user.version, role=Role.STUDENT, licence_number="PT-9"
    )
    return lambda uow, actor: staff.update_staff_member(uow, actor, cmd)


@scenario("staff.reactivate_user", A.USER_REACTIVATED)
def _(w: World) -> Call:
    user = w.user_with_password()
    staff.deactivate_user(w.uow(), w.clinic.as_owner, user.id)
    return lambda uow, actor: staff.reactivate_user(uow, actor, user.id)


@scenario("staff.reset_password", A.PASSWORD_RESET_ISSUED)
def _(w: World) -> Call:
    user = w.user_with_password()
    return lambda uow, actor: staff.reset_password(uow, actor, user.id)


@scenario("staff.reset_mfa", A.MFA_RESET)
def _(w: World) -> Call:
    user = w.user_with_password()
    w.enrolled(user)
    return lambda uow, actor: staff.reset_mfa(uow, actor, user.id)


@scenario("staff.issue_enrolment_code", A.MFA_ENROLMENT_CODE_ISSUED)
def _(w: World) -> Call:
    user = w.user_with_password()
    return lambda uow, actor: staff.issue_enrolment_code(uow, actor, user.id)


@scenario("staff.unlock_sign_in", A.SIGN_IN_UNLOCKED)
def _(w: World) -> Call:
    user = w.user_with_password()
    return lambda uow, actor: staff.unlock_sign_in(uow, actor, user.id)


@scenario("staff.complete_password_reset", A.PASSWORD_RESET_COMPLETED)
def _(w: World) -> Call:
    user = w.user_with_password()
    _user, code = staff.reset_password(w.uow(), w.clinic.as_owner, user.id)
    cmd = CompletePasswordReset(
        email=user.email, reset_code=code, new_password="a brand new passphrase"
    )
    return lambda uow, actor: staff.complete_password_reset(
        uow, cmd, address="192.0.2.9", request_id=None
    )


@scenario("staff.create_api_token", A.API_TOKEN_ISSUED)
def _(w: World) -> Call:
    _with_password(w, w.clinic.clinician)
    cmd = CreateApiToken(label="integration", password=PASSWORD)
    return lambda uow, actor: staff.create_api_token(uow, actor, cmd)


@scenario("staff.revoke_own_api_token", A.API_TOKEN_REVOKED)
def _(w: World) -> Call:
    token_id = _token_id(w, w.clinic.clinician)
    return lambda uow, actor: staff.revoke_own_api_token(uow, actor, token_id)


@scenario("staff.change_password", A.PASSWORD_CHANGED)
def _(w: World) -> Call:
    _with_password(w, w.clinic.clinician)
    w.signed_in(w.clinic.clinician)  # another browser: signed out by the change
    cmd = ChangePassword(current_password=PASSWORD, new_password="another long passphrase")
    return lambda uow, actor: staff.change_password(uow, actor, cmd)


@scenario("staff.reissue_recovery_codes", A.MFA_RECOVERY_CODES_REISSUED)
def _(w: World) -> Call:
    me = w.actor(Role.CLINICIAN)
    secret, _uri = accounts.begin_mfa_enrolment(w.uow(), me)
    accounts.confirm_mfa_enrolment(w.uow(), me, MfaCode(code=code_at(secret, datetime.now(UTC))))

    def call(uow: Any, actor: Actor) -> Any:
        # the next time step's code: the enrolment used this one (no replays)
        code = code_at(secret, datetime.now(UTC) + timedelta(seconds=30))
        return staff.reissue_recovery_codes(uow, actor, ReissueRecoveryCodes(code=code))

    return call


@scenario("clinics.issue_operator_token", A.API_TOKEN_ISSUED)
def _(w: World) -> Call:
    user = w.clinic.clinician
    return lambda uow, actor: clinics.issue_operator_token(uow, user, "ops", source="test")


@scenario("accounts.sign_in", A.LOGIN_SUCCEEDED, label="password")
def _(w: World) -> Call:
    user = w.user_with_password()
    return lambda uow, actor: accounts.sign_in(
        uow, user.email, PASSWORD, address="192.0.2.1", request_id=None
    )


@scenario("accounts.sign_in", A.LOGIN_FAILED, label="wrong password")
def _(w: World) -> Call:
    user = w.user_with_password()
    return lambda uow, actor: accounts.sign_in(
        uow, user.email, "wrong password!", address="192.0.2.2", request_id=None
    )


@scenario("accounts.sign_in", A.LOGIN_PASSWORD_ACCEPTED, label="code next")
def _(w: World) -> Call:
    user = w.user_with_password()
    w.enrolled(user)
    return lambda uow, actor: accounts.sign_in(
        uow, user.email, PASSWORD, address="192.0.2.3", request_id=None
    )


@scenario("accounts.verify_code", A.LOGIN_SUCCEEDED, A.MFA_RECOVERY_CODE_USED, label="recovery")
def _(w: World) -> Call:
    user = w.user_with_password()
    codes = w.enrolled(user)
    pending = w.signed_in(user)
    return lambda uow, actor: accounts.verify_code(
        uow, pending, MfaCode(code=codes[0]), address="192.0.2.4", request_id=None
    )


@scenario("accounts.verify_code", A.LOGIN_FAILED, label="wrong code")
def _(w: World) -> Call:
    user = w.user_with_password()
    w.enrolled(user)
    pending = w.signed_in(user)
    return lambda uow, actor: accounts.verify_code(
        uow, pending, MfaCode(code="000000"), address="192.0.2.5", request_id=None
    )


@scenario("accounts.complete_enrolled_sign_in", A.LOGIN_SUCCEEDED)
def _(w: World) -> Call:
    user = w.user_with_password()
    w.enrolled(user)
    pending = w.signed_in(user)
    return lambda uow, actor: accounts.complete_enrolled_sign_in(
        uow, pending, address="192.0.2.6", request_id=None
    )


@scenario("accounts.begin_mfa_enrolment")
def _(w: World) -> Call:
    return lambda uow, actor: accounts.begin_mfa_enrolment(uow, actor)


@scenario("accounts.confirm_mfa_enrolment", A.MFA_ENROLLED)
def _(w: World) -> Call:
    secrets: dict[UUID, str] = {}

    def call(uow: Any, actor: Actor) -> Any:
        if actor.user_id not in secrets:  # each actor enrols their own device first
            me = Actor(actor.user_id, actor.clinic_id, source="test")
            try:
                secrets[actor.user_id] = accounts.begin_mfa_enrolment(w.uow(), me)[0]
            except PermissionDenied:
                secrets[actor.user_id] = (
                    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # refused below all the same
                )
        code = code_at(secrets[actor.user_id], datetime.now(UTC))
        return accounts.confirm_mfa_enrolment(uow, actor, MfaCode(code=code))

    return call


@scenario("accounts.touch_session")
def _(w: World) -> Call:
    session = w.signed_in(w.user_with_password())
    later = datetime.now(UTC) + accounts.TOUCH_EVERY + timedelta(seconds=5)

    def call(uow: Any, actor: Actor) -> Any:
        uow.inner.now = lambda: later  # a minute on: the visit is worth a write
        return accounts.touch_session(uow, session)

    return call


@scenario("accounts.end_session", A.SIGNED_OUT)
def _(w: World) -> Call:
    session = w.signed_in(w.user_with_password())
    return lambda uow, actor: accounts.end_session(uow, session)


@scenario("accounts.sign_out_everywhere", A.SIGNED_OUT_EVERYWHERE)
def _(w: World) -> Call:
    now = datetime.now(UTC)
    with w.uow() as uow:  # every member has a browser signed in
        for user in w.users.values():
            uow.add(
                WebSession(
                    id=uuid4(),
                    clinic_id=user.clinic_id,
                    user_id=user.id,
                    token_hash=uuid4().hex,
                    csrf_token=uuid4().hex,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
        uow.commit()
    return lambda uow, actor: accounts.sign_out_everywhere(uow, actor)


@scenario("accounts.update_security_settings", A.SECURITY_SETTINGS_CHANGED)
def _(w: World) -> Call:
    cmd = UpdateSecuritySettings(mfa_required=False, idle_timeout_minutes=20)
    return lambda uow, actor: accounts.update_security_settings(uow, actor, cmd, expected_version=1)


@scenario("accounts.grant_emergency_access", A.EMERGENCY_ACCESS_GRANTED)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd())
    cmd = RequestEmergencyAccess(reason="Patient collapsed in the waiting room")
    return lambda uow, actor: accounts.grant_emergency_access(uow, actor, p.id, cmd)


@scenario("care_team.add_care_team_member", A.CARE_TEAM_MEMBER_ADDED)
def _(w: World) -> Call:
    p, _e, _s = w.charted()  # the clinician is the episode's clinician: on the team
    cmd = AddCareTeamMember(user_id=w.users[Role.STUDENT].id, reason="Supervised placement")
    return lambda uow, actor: care_team.add_care_team_member(uow, actor, p.id, cmd)


@scenario("templates.add_clinic_snippet", A.NOTE_SNIPPET_ADDED)
def _(w: World) -> Call:
    cmd = AddNoteSnippet(section="plan", title="Home exercise", text="Chin tucks 3x10 daily.")
    return lambda uow, actor: templates.add_clinic_snippet(uow, actor, cmd)


@scenario("templates.add_my_snippet", A.NOTE_SNIPPET_ADDED)
def _(w: World) -> Call:
    cmd = AddNoteSnippet(section="subjective", title="Desk", text="Worse after desk work.")
    return lambda uow, actor: templates.add_my_snippet(uow, actor, cmd)


@scenario("templates.set_favourites", A.FAVOURITES_SET)
def _(w: World) -> Call:
    cmd = SetFavourites(muscles=["upper_trapezius", "levator_scapulae"], needles=["0.25x30"])
    return lambda uow, actor: templates.set_favourites(uow, actor, cmd)


@scenario("research.export_research", A.RESEARCH_EXPORTED)
def _(w: World) -> Call:
    w.charted()
    return lambda uow, actor: research.export_research(uow, actor, ExportResearch(k=2))


# -- import from another system (issue 17 item 2) -----------------------------------------


def _imported_episode(w: World) -> Any:
    p = importing.import_patient(
        w.uow(),
        w.clinic.as_owner,
        ImportPatient(**patient_cmd().model_dump(), source="csv", external_id=f"ext-{uuid4().hex}"),
    )
    return episodes.open_episode(w.uow(), w.clinic.as_owner, episode_cmd(p.id))


def _import_session_cmd(w: World, episode: Any, *, signed: bool = True) -> ImportSession:
    body = session_cmd(episode.id).model_dump(exclude={"episode_id", "clinician_id"})
    started = body["started_at"]
    return ImportSession(
        **body,
        episode_id=episode.id,
        clinician_id=w.clinic.clinician.id,
        source="csv",
        external_id=f"ext-{uuid4().hex}",
        signed_by=w.clinic.clinician.id if signed else None,
        signed_at=started + timedelta(hours=1) if signed else None,
    )


@scenario("importing.import_patient", A.PATIENT_IMPORTED)
def _(w: World) -> Call:
    cmd = ImportPatient(
        **patient_cmd().model_dump(), source="csv", external_id=f"ext-{uuid4().hex}"
    )
    return lambda uow, actor: importing.import_patient(uow, actor, cmd)


@scenario("importing.import_session", A.SESSION_IMPORTED)
def _(w: World) -> Call:
    cmd = _import_session_cmd(w, _imported_episode(w))
    return lambda uow, actor: importing.import_session(uow, actor, cmd)


@scenario("importing.import_amendment", A.SESSION_AMENDED)
def _(w: World) -> Call:
    episode = _imported_episode(w)
    cmd = _import_session_cmd(w, episode)
    note = importing.import_session(w.uow(), w.clinic.as_owner, cmd)
    amend = ImportAmendment(
        session_id=note.id,
        author_id=w.clinic.clinician.id,
        written_at=cmd.signed_at + timedelta(days=1),  # type: ignore[operator]
        reason="Typo",
        text="Left side, not right.",
    )
    return lambda uow, actor: importing.import_amendment(uow, actor, amend)


# -- questionnaires from home (issue 16) ------------------------------------------------

_BASE = "http://clinic.test"


def _questionnaire_sent(
    w: World,
    *,
    days_ago: float = 0,
    email: str | None = "pat@patient.test",
    instrument_ids: tuple[str, ...] = ("ndi",),
) -> tuple[Any, Any]:
    """A patient with an open episode who was sent NDI `days_ago` days ago: the assigned
    result and the link's token (as the e-mail carries it)."""
    c = w.clinic
    p = patients.register_patient(w.uow(), c.as_clinician, patient_cmd(email=email))
    ep = episodes.open_episode(w.uow(), c.as_clinician, episode_cmd(p.id))
    then = datetime.now(UTC) - timedelta(days=days_ago)
    done = questionnaires.assign_questionnaires(
        w.uow(lambda: then),
        c.as_clinician,
        AssignQuestionnaires(
            episode_id=ep.id, instrument_ids=list(instrument_ids), send=True, base_url=_BASE
        ),
    )
    with w.engine.connect() as conn:
        url = conn.execute(
            sa.select(t.outbox_messages.c.link_url).where(t.outbox_messages.c.id == done.message.id)
        ).scalar_one()
    return done, str(url).rsplit("/", 1)[-1]


@scenario("questionnaires.set_questionnaire_plan", A.QUESTIONNAIRE_PLAN_SET)
def _(w: World) -> Call:
    cmd = SetQuestionnairePlan(condition="neck_pain", instruments={"ndi": ["intake"]})
    return lambda uow, actor: questionnaires.set_questionnaire_plan(uow, actor, cmd)


@scenario(
    "questionnaires.assign_questionnaires",
    A.QUESTIONNAIRES_ASSIGNED,
    A.QUESTIONNAIRE_LINK_ISSUED,
)
def _(w: World) -> Call:
    p = patients.register_patient(w.uow(), w.clinic.as_clinician, patient_cmd(email="x@p.test"))
    ep = episodes.open_episode(w.uow(), w.clinic.as_clinician, episode_cmd(p.id))
    cmd = AssignQuestionnaires(
        episode_id=ep.id, instrument_ids=["ndi", "nprs"], send=True, base_url=_BASE
    )
    return lambda uow, actor: questionnaires.assign_questionnaires(uow, actor, cmd)


@scenario("questionnaires.send_questionnaire_link", A.QUESTIONNAIRE_LINK_ISSUED)
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    cmd = SendQuestionnaireLink(patient_id=done.assignments[0].patient_id, base_url=_BASE)
    return lambda uow, actor: questionnaires.send_questionnaire_link(uow, actor, cmd)


@scenario("questionnaires.revoke_questionnaire_link", A.QUESTIONNAIRE_LINK_REVOKED)
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    return lambda uow, actor: questionnaires.revoke_questionnaire_link(uow, actor, done.link.id)


@scenario("questionnaires.cancel_questionnaire", A.QUESTIONNAIRE_CANCELLED)
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    a = done.assignments[0].id
    return lambda uow, actor: questionnaires.cancel_questionnaire(uow, actor, a)


@scenario("questionnaires.queue_reminder", A.QUESTIONNAIRE_REMINDER_QUEUED)
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w, days_ago=4)
    link = done.link
    return lambda uow, actor: questionnaires.queue_reminder(uow, link.clinic_id, link.id, _BASE)


@scenario("questionnaires.open_questionnaires", A.QUESTIONNAIRE_OPENED)
def _(w: World) -> Call:
    _done, token = _questionnaire_sent(w)
    return lambda uow, actor: questionnaires.open_questionnaires(uow, token)


@scenario("questionnaires.save_questionnaire_answers", A.QUESTIONNAIRE_ANSWER_SAVED)
def _(w: World) -> Call:
    done, token = _questionnaire_sent(w)
    cmd = SaveQuestionnaireAnswers(assignment_id=done.assignments[0].id, answers={"item1": 3})
    return lambda uow, actor: questionnaires.save_questionnaire_answers(uow, token, cmd)


@scenario("questionnaires.submit_questionnaire", A.QUESTIONNAIRE_SUBMITTED)
def _(w: World) -> Call:
    done, token = _questionnaire_sent(w)
    a = done.assignments[0].id
    answers = {f"item{i}": 1 for i in range(1, 11)}
    questionnaires.save_questionnaire_answers(
        w.uow(), token, SaveQuestionnaireAnswers(assignment_id=a, answers=answers)
    )
    return lambda uow, actor: questionnaires.submit_questionnaire(uow, token, a)


@scenario("home_reports.home_forms")
def _(w: World) -> Call:
    _done, token = _questionnaire_sent(w, instrument_ids=("analgesic_use", "psfs"))
    return lambda uow, actor: home_reports.home_forms(uow, token)


@scenario("home_reports.report_analgesic_use", A.MEDICATION_REPORTED)
def _(w: World) -> Call:
    done, token = _questionnaire_sent(w, instrument_ids=("analgesic_use",))
    cmd = ReportAnalgesicUse(
        assignment_id=done.assignments[0].id,
        days={},
        other_drug="Ibuprofen",
        other_class="nsaid",
        other_days=2,
    )
    return lambda uow, actor: home_reports.report_analgesic_use(uow, token, cmd)


@scenario("home_reports.report_return_to_activity", A.QUESTIONNAIRE_SUBMITTED)
def _(w: World) -> Call:
    done, token = _questionnaire_sent(w, instrument_ids=("return_to_activity",))
    cmd = ReportReturnToActivity(assignment_id=done.assignments[0].id, activity="work", returned=0)
    return lambda uow, actor: home_reports.report_return_to_activity(uow, token, cmd)


@scenario("home_reports.report_psfs", A.QUESTIONNAIRE_SUBMITTED)
def _(w: World) -> Call:
    done, token = _questionnaire_sent(w, instrument_ids=("psfs",))
    cmd = ReportPsfs(
        assignment_id=done.assignments[0].id,
        ratings={"item1": 4},
        activities={"activity1": "Driving"},
    )
    return lambda uow, actor: home_reports.report_psfs(uow, token, cmd)


@scenario("questionnaires.request_new_link", A.QUESTIONNAIRE_LINK_REQUESTED)
def _(w: World) -> Call:
    _done, token = _questionnaire_sent(w, days_ago=15)  # expired
    return lambda uow, actor: questionnaires.request_new_link(uow, token, _BASE)


@scenario("patient_record.open_own_record", A.PATIENT_RECORD_VIEWED)
def _(w: World) -> Call:
    _done, token = _questionnaire_sent(w)
    return lambda uow, actor: patient_record.open_own_record(uow, token)


@scenario("patient_record.withdraw_own_consent", A.CONSENT_WITHDRAWN_BY_PATIENT)
def _(w: World) -> Call:
    done, token = _questionnaire_sent(w)
    given = consent.record_consent(
        w.uow(), w.clinic.as_clinician, consent_cmd(done.assignments[0].patient_id)
    )
    return lambda uow, actor: patient_record.withdraw_own_consent(uow, token, given.id)


@scenario("patient_record.start_kiosk", A.KIOSK_STARTED)
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    patient_id = done.assignments[0].patient_id
    return lambda uow, actor: patient_record.start_kiosk(uow, actor, patient_id)


@scenario(
    "questionnaires.send_due_questionnaires",
    A.QUESTIONNAIRES_ASSIGNED,
    A.QUESTIONNAIRE_LINK_ISSUED,
)
def _(w: World) -> Call:
    c = w.clinic
    questionnaires.set_questionnaire_plan(
        w.uow(),
        c.as_owner,
        SetQuestionnairePlan(
            condition="neck_pain", instruments={"ndi": ["during_care"]}, every_n_days=1
        ),
    )
    p = patients.register_patient(w.uow(), c.as_clinician, patient_cmd(email="due@p.test"))
    ep = episodes.open_episode(w.uow(), c.as_clinician, episode_cmd(p.id))
    return lambda uow, actor: questionnaires.send_due_questionnaires(
        uow, ep.clinic_id, ep.id, _BASE
    )


@scenario("outbox.claim_message")
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    m = done.message
    return lambda uow, actor: outbox.claim_message(uow, m.clinic_id, m.id)


@scenario("outbox.mark_sent", A.MESSAGE_SENT)
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    claimed = outbox.claim_message(w.uow(), done.message.clinic_id, done.message.id)
    return lambda uow, actor: outbox.mark_sent(uow, claimed.clinic_id, claimed)


@scenario("outbox.mark_failed", label="retried later")
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    claimed = outbox.claim_message(w.uow(), done.message.clinic_id, done.message.id)
    return lambda uow, actor: outbox.mark_failed(uow, claimed.clinic_id, claimed, "421 busy")


@scenario("outbox.mark_failed", A.MESSAGE_FAILED, label="given up")
def _(w: World) -> Call:
    done, _token = _questionnaire_sent(w)
    m = done.message
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(t.outbox_messages).where(t.outbox_messages.c.id == m.id).values(attempts=7)
        )
    claimed = outbox.claim_message(w.uow(), m.clinic_id, m.id)
    return lambda uow, actor: outbox.mark_failed(uow, claimed.clinic_id, claimed, "550 no user")


# -- what the registry promises ---------------------------------------------------------


def test_every_registered_action_has_a_scenario_for_each_event_it_declares() -> None:
    covered: dict[str, set[AuditAction]] = {name: set() for name in REGISTRY}
    for s in SCENARIOS:
        assert s.action in REGISTRY, f"scenario for an unregistered action: {s.action}"
        covered[s.action] |= s.expects
    missing = sorted(name for name in REGISTRY if not any(s.action == name for s in SCENARIOS))
    assert not missing, f"add a scenario for: {missing}"
    for name, declared in REGISTRY.items():
        assert covered[name] == set(declared.events), (
            f"{name}: scenarios exercise {sorted(covered[name])}, "
            f"it declares {sorted(declared.events)}"
        )


def _permitted(declared: Declared) -> Role:
    """A role holding the action's permission (the clinician's, when it does)."""
    if declared.permission is None:
        return Role.CLINICIAN
    order = (Role.CLINICIAN, Role.OWNER, Role.STUDENT, Role.ASSISTANT, Role.AUDITOR)
    return next(r for r in order if allows(r, declared.permission))


def _audit_rows(engine: sa.Engine) -> dict[UUID, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_events.c.id, t.audit_events.c.action))
        return {row.id: str(row.action) for row in rows}


def _row_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in t.metadata.sorted_tables
        }


EVENT_ONLY = {
    "research.export_research": "a disclosure: the export is the act; it changes no record",
    "patient_record.open_own_record": (
        "a patient opening their own record through their link: an audited read"
    ),
}
"""Actions whose audit event is all they write, and why."""


@pytest.mark.parametrize("case", SCENARIOS, ids=lambda s: s.id)
def test_an_action_writes_exactly_its_declared_audit_events_once_in_its_transaction(
    engine: sa.Engine, case: Scenario
) -> None:
    declared = REGISTRY[case.action]
    world = make_world(engine)
    call = case.prepare(world)
    before = _audit_rows(engine)
    uow = Recording(SqlUnitOfWork(engine))

    call(_as_interface(uow), world.actor(_permitted(declared)))

    assert len(uow.commits) == 1, f"{case.action} committed {len(uow.commits)} times"
    committed = uow.commits[0]
    events = [e for e in committed if isinstance(e, AuditEvent)]
    assert sorted(e.action for e in events) == sorted(case.expects)  # each exactly once
    assert set(case.expects) <= declared.events
    new = {id: action for id, action in _audit_rows(engine).items() if id not in before}
    # What the database gained is exactly the events of that one transaction.
    assert new == {e.id: str(e.action) for e in events}
    if events and case.action not in ("accounts.sign_in", "accounts.verify_code", *EVENT_ONLY):
        # The records the action changed went into the same commit as its event (a
        # refused sign-in changes nothing but the login log, written on the same
        # transaction's connection).
        assert any(not isinstance(e, AuditEvent) for e in committed)


PERMISSIONED = sorted(name for name, d in REGISTRY.items() if d.permission is not None)


@pytest.mark.parametrize("name", PERMISSIONED)
def test_an_action_refuses_an_actor_without_its_permission_writing_nothing(
    engine: sa.Engine, name: str
) -> None:
    """Each role without the permission is refused, and only the refusal is written (its
    `access.denied` event); an actor of another clinic is refused and nothing at all is
    written; then the very same call succeeds for a role that holds the permission, so
    the refusals were about the permission and nothing else."""
    declared = REGISTRY[name]
    permission = declared.permission
    assert permission is not None
    world = make_world(engine)
    case = next(s for s in SCENARIOS if s.action == name)
    call = case.prepare(world)
    clinic_id = world.clinic.owner.clinic_id

    for role in [r for r in Role if not allows(r, permission)]:
        actor = world.actor(role)
        before, audit_before = _row_counts(engine), _audit_rows(engine)
        with pytest.raises(PermissionDenied):
            call(SqlUnitOfWork(engine), actor)
        after = _row_counts(engine)
        assert after == {**before, "audit_events": before["audit_events"] + 1}, role
        new = [id for id in _audit_rows(engine) if id not in audit_before]
        with engine.connect() as conn:
            row = conn.execute(sa.select(t.audit_events).where(t.audit_events.c.id == new[0])).one()
        assert row.action == AuditAction.ACCESS_DENIED, role
        assert row.entity_type == permission.value[:32], role
        assert (row.actor_user_id, row.clinic_id) == (actor.user_id, clinic_id), role

    before = _row_counts(engine)
    with pytest.raises(PermissionDenied):
        call(SqlUnitOfWork(engine), world.intruder)
    assert _row_counts(engine) == before, "another clinic's actor"

    call(SqlUnitOfWork(engine), world.actor(_permitted(declared)))
    assert _row_counts(engine) != before
