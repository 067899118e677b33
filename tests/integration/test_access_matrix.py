"""The access matrix, generated from the app's own OpenAPI document: every API operation ×
every role × the caller's own clinic / another clinic / no credentials, each checked
against the one permission table (`domain.permissions.GRANTS`).

Each operation declares its permission once (`x-permission`, see `web.context.requires`).
An operation added later is picked up automatically; one that declares no permission, or
whose path parameter or request body this test cannot build, fails loudly."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions import (
    adverse_events,
    consent,
    episodes,
    patients,
    questionnaires,
    screening,
    sessions,
)
from needlepoint.actions.accounts import begin_mfa_enrolment, confirm_mfa_enrolment
from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.tables import api_tokens, mfa_secrets, users
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.passwords import hash_api_token, hash_password
from needlepoint.adapters.totp import code_at
from needlepoint.domain.commands import (
    AssignQuestionnaires,
    MfaCode,
    RecordAdverseEvent,
    RegisterUser,
    SignSession,
)
from needlepoint.domain.entities import Consent, Episode, Patient, Session, User
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import RecordLocked
from needlepoint.domain.permissions import GRANTS, Permission
from needlepoint.importing.csv_reader import LAYOUT_BY_NAME
from needlepoint.web.app import create_app
from needlepoint.web.context import PERMISSION_KEY, SAFE_METHODS
from tests.conftest import ClinicFixture, make_clinic
from tests.factories import (
    consent_body,
    consent_cmd,
    episode_cmd,
    patient_cmd,
    screening_body,
    screening_cmd,
    session_cmd,
)

OTHER_NAME = "Elsewhereperson"  # every patient of the other clinic: must never show up
SECRET = "test-secret-key-" + "x" * 32


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    app = create_app(sa.create_engine("sqlite://"), secret_key=SECRET)
    doc = app.openapi()
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith("/api/v1/")
    ]


OPERATIONS = _operations()


def test_every_api_operation_declares_its_permission() -> None:
    missing = [f"{m} {p}" for m, p, op in OPERATIONS if PERMISSION_KEY not in op]
    assert not missing, (
        "these API operations declare no permission; add "
        f"openapi_extra=requires(Permission.…) to their route: {missing}"
    )
    unknown = [op[PERMISSION_KEY] for _, _, op in OPERATIONS if PERMISSION_KEY in op]
    assert set(unknown) <= {p.value for p in Permission}


@dataclass
class Records:
    """One clinic's records a request can name."""

    clinic: ClinicFixture
    patient: Patient
    episode: Episode
    draft: Session
    signed: Session
    token_id: uuid.UUID
    consent: Consent
    adverse_event_id: uuid.UUID  # recorded after the session, on the signed note
    assignment_id: uuid.UUID  # a questionnaire the patient has not answered yet

    def ids(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient.id,
            "episode_id": self.episode.id,
            "user_id": self.clinic.clinician.id,
            "token_id": self.token_id,
            "consent_id": self.consent.id,
            "adverse_event_id": self.adverse_event_id,
            "assignment_id": self.assignment_id,
            **REFERENCE_DATA,
        }


REFERENCE_DATA = {
    "muscle_id": "sternocleidomastoid",
    "template_id": "dry_needling",
    "version": "1.0",
    "condition": "neck_pain",
}
"""Path parameters naming shared reference data, not a record of one clinic."""


def make_records(c: ClinicFixture, family_name: str) -> Records:
    _ENGINES[c.owner.clinic_id] = c.engine
    patient = patients.register_patient(c.uow(), c.as_owner, patient_cmd(family_name=family_name))
    episode = episodes.open_episode(c.uow(), c.as_owner, episode_cmd(patient.id))
    screening.record_screening(c.uow(), c.as_owner, screening_cmd(patient.id))
    given = consent.record_consent(c.uow(), c.as_owner, consent_cmd(patient.id))
    draft = sessions.record_session(c.uow(), c.as_owner, session_cmd(episode.id))
    other = sessions.record_session(c.uow(), c.as_owner, session_cmd(episode.id))
    signed = sessions.sign_session(
        c.uow(), c.as_owner, SignSession(session_id=other.id, expected_version=other.version)
    )
    late = adverse_events.record_adverse_event(
        c.uow(),
        c.as_owner,
        RecordAdverseEvent(session_id=signed.id, **LATE_EVENT),
    )
    asked = questionnaires.assign_questionnaires(
        c.uow(),
        c.as_owner,
        AssignQuestionnaires(episode_id=episode.id, instrument_ids=["nprs"], send=False),
    )
    return Records(
        c,
        patient,
        episode,
        draft,
        signed,
        token_of(c.clinician),
        given,
        late.id,
        asked.assignments[0].id,
    )


LATE_EVENT: dict[str, Any] = {
    "kind": "bruising",
    "severity": "mild",
    "onset_at": "2026-02-04T08:00:00+00:00",  # the morning after the factories' session
    "description": "Bruise the next morning",
}


def token_of(user: User) -> uuid.UUID:
    """The id of a new API token of `user` (issued at the console)."""
    engine = _ENGINES[user.clinic_id]
    plain = issue_operator_token(SqlUnitOfWork(engine), user, "records", source="test")
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(api_tokens.c.id).where(api_tokens.c.token_hash == hash_api_token(plain))
        ).scalar_one()
    return uuid.UUID(str(found))


_ENGINES: dict[uuid.UUID, sa.Engine] = {}
"""Each clinic's engine, for body builders that only get a user."""


def add_every_role(c: ClinicFixture) -> dict[Role, User]:
    users = {Role.OWNER: c.owner, Role.CLINICIAN: c.clinician, Role.ASSISTANT: c.assistant}
    for role in Role:
        if role not in users:
            users[role] = register_user(
                c.uow(),
                c.as_owner,
                RegisterUser(
                    email=f"{role.value}-{c.owner.email}", full_name=f"A {role}", role=role
                ),
            )
    return users


def _schema_name(op: dict[str, Any]) -> str | None:
    body = op.get("requestBody")
    if body is None:
        return None
    ref = body["content"]["application/json"]["schema"].get("$ref", "")
    return str(ref.rsplit("/", 1)[-1])


def build_request(
    method: str, path: str, op: dict[str, Any], recs: Records, user: User
) -> tuple[str, dict[str, Any] | None, dict[str, str], bool]:
    """(url, json body, headers, whether the request names a record of `recs`' clinic),
    as `user` would send it."""
    late = path.endswith(("/amendments", "/adverse-events"))  # on a signed note
    session = recs.signed if late else recs.draft
    ids = {**recs.ids(), "session_id": session.id}
    versions = {"patient_id": recs.patient.version, "episode_id": recs.episode.version}
    versions["session_id"] = session.version
    versions["consent_id"] = recs.consent.version
    url, headers, names_record, version = path, {}, False, 1
    query: dict[str, Any] = {}
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        if where == "path" and name == "own_token_id":
            # the caller's own token; of another clinic's user when naming that clinic
            own = user.clinic_id == recs.clinic.owner.clinic_id
            url = url.replace(
                "{" + name + "}", str(token_of(user if own else recs.clinic.clinician))
            )
            names_record = True
        elif (
            where == "path"
            and name == "user_id"
            and method not in SAFE_METHODS
            and ("/tokens/" not in path)
        ):  # the account lifecycle: a throwaway account (deactivating a caller would end
            # the rest of the matrix)
            url = url.replace("{" + name + "}", str(_throwaway(recs.clinic).id))
            names_record = True
        elif where == "path":
            assert name in ids, f"{method} {path}: no record for path parameter {name!r}"
            url = url.replace("{" + name + "}", str(ids[name]))
            names_record = names_record or name not in REFERENCE_DATA
            version = versions.get(name, version)
        elif where == "header" and name.lower() == "if-match":
            headers["If-Match"] = f'"{version}"'
        elif where == "query" and name in QUERY_EXAMPLES:
            if param.get("required"):
                query[name] = QUERY_EXAMPLES[name]
        else:
            assert not param.get("required"), f"{method} {path}: required {name!r} unknown"
    schema = _schema_name(op)
    body: dict[str, Any] | None = None
    if schema is not None:
        assert schema in BODIES, f"{method} {path}: add an example body for {schema}"
        body, refers = BODIES[schema](recs, user)
        names_record = names_record or refers
    if query:
        url += "?" + urlencode(query)
    return url, body, headers, names_record


QUERY_EXAMPLES: dict[str, Any] = {
    "baseline_nprs": 6,
    "age": 45,
    "sex": "female",
    "condition": "neck_pain",
}
"""Values for required query parameters (the prognosis asks for a new patient's baseline)."""


def _json(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json", exclude_none=True))


def _first_code(recs: Records, user: User) -> tuple[dict[str, Any], bool]:
    """A valid first authenticator code: `user` starts enrolment, the test's "device"
    computes the code."""
    try:
        secret, _ = begin_mfa_enrolment(SqlUnitOfWork(recs.clinic.engine), actor_of(user))
    except RecordLocked:  # already on: this request is not expected to succeed anyway
        return {"code": "000000"}, False
    return {"code": code_at(secret, datetime.now(UTC))}, False


def _throwaway(c: ClinicFixture) -> User:
    return register_user(
        c.uow(),
        c.as_owner,
        RegisterUser(
            email=f"temp-{uuid.uuid4().hex[:10]}@test.example",
            full_name="Temporary",
            role=Role.CLINICIAN,
        ),
    )


MATRIX_PASSWORD = "matrix pass phrase"


def _with_password(user: User) -> None:
    with _ENGINES[user.clinic_id].begin() as conn:
        conn.execute(
            sa.update(users)
            .where(users.c.id == user.id)
            .values(password_hash=hash_password(MATRIX_PASSWORD))
        )


def _new_token(recs: Records, user: User) -> tuple[dict[str, Any], bool]:
    _with_password(user)
    return {"label": "matrix", "password": MATRIX_PASSWORD}, False


def _new_password(recs: Records, user: User) -> tuple[dict[str, Any], bool]:
    _with_password(user)
    return {"current_password": MATRIX_PASSWORD, "new_password": "another pass phrase"}, False


def _current_code(recs: Records, user: User) -> tuple[dict[str, Any], bool]:
    """A current authenticator code of `user`, enrolled first if need be."""
    engine = recs.clinic.engine
    try:
        secret, _ = begin_mfa_enrolment(SqlUnitOfWork(engine), actor_of(user))
        code = MfaCode(code=code_at(secret, datetime.now(UTC)))
        confirm_mfa_enrolment(SqlUnitOfWork(engine), actor_of(user), code)
    except RecordLocked:
        with engine.connect() as conn:
            secret = conn.execute(
                sa.select(mfa_secrets.c.secret).where(mfa_secrets.c.user_id == user.id)
            ).scalar_one()
    return {"code": code_at(secret, datetime.now(UTC) + timedelta(seconds=30))}, False


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.clinic_id, source="test")


BODIES: dict[str, Any] = {
    "RegisterPatient": lambda r, u: (_json(patient_cmd()), False),
    "PatientChanges": lambda r, u: ({"phone": "+1 555 0100"}, False),
    "OpenEpisode": lambda r, u: (_json(episode_cmd(r.patient.id)), True),
    "Discharge": lambda r, u: ({"closed_on": "2026-03-01", "discharge_reason": "goals met"}, False),
    "RecordSession": lambda r, u: (_json(session_cmd(r.episode.id)), True),
    "SessionNote": lambda r, u: (
        {k: v for k, v in _json(session_cmd(r.episode.id)).items() if k != "episode_id"},
        False,
    ),
    "AmendmentText": lambda r, u: ({"reason": "typo", "text": "left, not right"}, False),
    "AdverseEventReport": lambda r, u: (LATE_EVENT, False),
    "FollowUpIn": lambda r, u: (
        {"kind": "resolution", "text": "Resolved", "occurred_at": "2026-02-06T10:00:00+00:00"},
        False,
    ),
    "RecordMeasurement": lambda r, u: (
        {"patient_id": str(r.patient.id), "instrument_id": "nprs", "answers": {"item1": 3}},
        True,
    ),
    "RecordMedicationUse": lambda r, u: (
        {
            "patient_id": str(r.patient.id),
            "drug": "ibuprofen",
            "drug_class": "nsaid",
            "days_per_week": 2,
            "recorded_on": "2026-02-10",
        },
        True,
    ),
    "RegisterUser": lambda r, u: (
        {"email": f"new-{r.draft.id}@test.example", "full_name": "New Hire", "role": "assistant"},
        False,
    ),
    "MfaCode": _first_code,
    "ConfirmMfaEnrolment": _first_code,
    "BeginMfaEnrolment": lambda r, u: ({}, False),
    "ExportResearch": lambda r, u: ({"k": 2, "dates": "year"}, False),
    "CreateApiToken": _new_token,
    "ChangePassword": _new_password,
    "ReissueRecoveryCodes": _current_code,
    "UpdateSecuritySettings": lambda r, u: (
        {"mfa_required": False, "idle_timeout_minutes": 20},
        False,
    ),
    "RequestEmergencyAccess": lambda r, u: ({"reason": "collapsed in the waiting room"}, False),
    "AddCareTeamMember": lambda r, u: (
        {"user_id": str(r.clinic.clinician.id), "reason": "covering the Tuesday clinic"},
        True,
    ),
    "ScreeningAnswers": lambda r, u: (screening_body(), False),
    # an export with no patients: the import runs (owner) or is refused (everyone else)
    "ImportRequest": lambda r, u: (
        {
            "files": {
                name: ",".join(layout.required) + "\n"
                for name, layout in LAYOUT_BY_NAME.items()
                if layout.required_file
            }
        },
        False,
    ),
    "ScreeningForm": lambda r, u: (screening_body(), False),
    "ConsentIn": lambda r, u: (consent_body(), False),
    "ConsentWithdrawal": lambda r, u: ({}, False),
    "ClinicSettingsIn": lambda r, u: ({"screening_valid_days": 60}, False),
    "PlanIn": lambda r, u: ({"instruments": {"ndi": ["intake", "discharge"]}}, False),
    "QuestionnaireRequest": lambda r, u: ({"instrument_ids": ["ndi"], "send": False}, False),
    "TrainingForm": lambda r, u: (
        {
            "provider": "Course Co",
            "course": "DN 1",
            "hours_in_person": 27,
            "completed_on": "2025-01-01",
            "exam_passed": True,
        },
        False,
    ),
}


@dataclass
class World:
    client: TestClient
    own: Records
    other: Records
    tokens: dict[Role, str]
    users: dict[Role, User]
    markers: list[str]

    def fresh(self, which: str, method: str) -> Records:
        """Writes change state (a note signed once cannot be signed again): fresh records."""
        base = self.own if which == "own" else self.other
        if method in SAFE_METHODS:
            return base
        return make_records(base.clinic, base.patient.family_name)


@pytest.fixture
def world(engine: sa.Engine) -> World:
    own_clinic, other_clinic = make_clinic(engine), make_clinic(engine, "Other Clinic")
    users = add_every_role(own_clinic)
    tokens = {
        role: issue_operator_token(SqlUnitOfWork(engine), user, "matrix", source="test")
        for role, user in users.items()
    }
    other = make_records(other_clinic, OTHER_NAME)
    _invited(other)  # the other clinic's outbox holds an invitation to OTHER_EMAIL
    markers = [OTHER_NAME, other.patient.mrn, other_clinic.owner.email, OTHER_EMAIL]
    markers.append(other_clinic.clinician.email)
    client = TestClient(create_app(engine, secret_key=SECRET))
    own = make_records(own_clinic, "Ownperson")
    return World(client, own, other, tokens, users, markers)


OTHER_EMAIL = "elsewhere@patient.test"


def _invited(recs: Records) -> str:
    """An invitation e-mailed to the records' patient (given the address OTHER_EMAIL):
    the link's token, as the e-mail will carry it."""
    from needlepoint.actions.questionnaires import assign_questionnaires
    from needlepoint.adapters.db.tables import outbox_messages
    from needlepoint.domain.commands import AssignQuestionnaires, UpdatePatient

    c = recs.clinic
    p = patients.update_patient(
        c.uow(),
        c.as_owner,
        UpdatePatient(
            patient_id=recs.patient.id,
            expected_version=recs.patient.version,
            email=OTHER_EMAIL
            if recs.patient.family_name == OTHER_NAME
            else f"{recs.patient.mrn.lower()}@patient.test",
        ),
    )
    done = assign_questionnaires(
        c.uow(),
        c.as_owner,
        AssignQuestionnaires(
            episode_id=recs.episode.id,
            instrument_ids=["nprs"],
            send=True,
            base_url="http://testserver",
        ),
    )
    assert done.message is not None
    assert p.email
    with c.engine.connect() as conn:
        url = conn.execute(
            sa.select(outbox_messages.c.link_url).where(outbox_messages.c.id == done.message.id)
        ).scalar_one()
    return str(url).rsplit("/", 1)[-1]


def test_a_patients_link_opens_only_that_patients_questionnaires(world: World) -> None:
    """The patient role, by link: patient A's link shows A's questionnaire, never the
    other clinic's patient nor another patient of the same clinic, and cannot answer
    another patient's questionnaire; no staff page or API answers to it."""
    import re

    own = world.own
    second = make_records(own.clinic, "Secondperson")
    token_a = _invited(own)
    _invited(second)
    page = world.client.get(f"/q/{token_a}")
    assert page.status_code == 200
    assert "Numeric Pain Rating Scale" in page.text
    for marker in [*world.markers, "Secondperson", second.patient.mrn, "Ownperson"]:
        assert marker not in page.text
    with own.clinic.engine.connect() as conn:
        from needlepoint.adapters.db.tables import questionnaire_assignments as qa

        theirs = conn.execute(
            sa.select(qa.c.id).where(qa.c.patient_id == second.patient.id)
        ).scalar_one()
    before = world.client.get(f"/q/{token_a}").text
    posted = world.client.post(
        f"/q/{token_a}",
        data={"assignment": str(theirs), "item1": "3", "send": "1"},
        follow_redirects=False,
    )
    assert posted.status_code == 303  # not theirs to answer: back to their own page
    assert re.sub(r'value="[^"]+"', "", world.client.get(f"/q/{token_a}").text) == re.sub(
        r'value="[^"]+"', "", before
    )
    with own.clinic.engine.connect() as conn:
        assert (
            conn.execute(sa.select(qa.c.completed_at).where(qa.c.id == theirs)).scalar_one() is None
        )
    # The link is no credential anywhere else.
    assert (
        world.client.get(
            "/api/v1/outbox", headers={"Authorization": f"Bearer {token_a}"}
        ).status_code
        == 401
    )
    assert world.client.get("/outbox", follow_redirects=False).status_code == 303


def test_a_patients_link_opens_only_that_patients_progress_and_consent(world: World) -> None:
    """The patient role's own pages (progress, consent, withdrawal): only the link's own
    patient's, never another patient's consent; the link opens no clinician page."""
    own = world.own
    second = make_records(own.clinic, "Secondperson")
    token_a = _invited(own)
    _invited(second)
    for path in (f"/q/{token_a}/progress", f"/q/{token_a}/consent"):
        page = world.client.get(path)
        assert page.status_code == 200
        for marker in [*world.markers, "Secondperson", second.patient.mrn]:
            assert marker not in page.text
        assert str(second.consent.id) not in page.text
    assert str(own.consent.id) in world.client.get(f"/q/{token_a}/consent").text
    # Another patient's consent is not the link's to withdraw.
    world.client.post(
        f"/q/{token_a}/consent/withdraw",
        data={"consent": str(second.consent.id), "confirm": "yes"},
    )
    with own.clinic.engine.connect() as conn:
        from needlepoint.adapters.db.tables import consents

        assert (
            conn.execute(
                sa.select(consents.c.withdrawn_at).where(consents.c.id == second.consent.id)
            ).scalar_one()
            is None
        )
    # No clinician page or API answers to the link.
    for path in (f"/patients/{own.patient.id}", "/analytics/completion", "/analytics"):
        assert world.client.get(path, follow_redirects=False).status_code == 303
    assert (
        world.client.get(
            "/api/v1/analytics/completion", headers={"Authorization": f"Bearer {token_a}"}
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("method", "path", "op"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_access_matrix(world: World, method: str, path: str, op: dict[str, Any]) -> None:
    permission = Permission(op[PERMISSION_KEY])
    failures: list[str] = []
    url, body, headers, _ = build_request(method, path, op, world.own, world.users[Role.OWNER])
    anonymous = world.client.request(method, url, json=body, headers=headers)
    if anonymous.status_code != 401:
        failures.append(f"no credentials → {anonymous.status_code}, expected 401")
    for role, where in itertools.product(Role, ("own", "other")):
        recs = world.fresh(where, method)
        url, body, headers, names_record = build_request(method, path, op, recs, world.users[role])
        if where == "other" and not names_record:
            continue  # nothing of another clinic to name; the leak check below still runs
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
        r = world.client.request(method, url, json=body, headers=headers)
        allowed = role in GRANTS[permission]
        if not allowed:
            expected = "403"
            ok = r.status_code == 403
        elif where == "other":
            expected = "404"
            ok = r.status_code == 404
        else:
            expected = "2xx"
            ok = 200 <= r.status_code < 300
        if not ok:
            failures.append(f"{role} / {where} clinic → {r.status_code}, expected {expected}")
        leaked = [m for m in world.markers if m in r.text]
        if leaked:
            failures.append(f"{role} / {where} clinic: response shows {leaked}")
    assert not failures, f"{method} {path} needs {permission}:\n" + "\n".join(failures)


def test_a_read_only_token_cannot_write(world: World, engine: sa.Engine) -> None:
    owner = world.own.clinic.owner
    token = issue_operator_token(SqlUnitOfWork(engine), owner, "reader", source="test")
    with engine.begin() as conn:  # the owner's token narrowed to reading
        conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.token_hash == hash_api_token(token))
            .values(scopes="read")
        )
    for method, path, op in OPERATIONS:
        recs = world.fresh("own", method)
        url, body, headers, _ = build_request(method, path, op, recs, owner)
        headers["Authorization"] = f"Bearer {token}"
        r = world.client.request(method, url, json=body, headers=headers)
        if method in SAFE_METHODS:
            # 2xx: the analytics answer 202 while their first snapshot is prepared
            assert 200 <= r.status_code < 300, (method, path, r.text)
        else:
            assert r.status_code == 403, (method, path, r.text)
            assert "scope" in r.json()["detail"]
