"""Accounts and sessions, as a clinic experiences them: the password policy, signing in
with a second factor, lock-outs that survive a restart, session time-outs, signing out
everywhere, read-only API tokens, and emergency (break-glass) access."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.accounts import ACCOUNT_FAILURE_LIMIT, ADDRESS_FAILURE_LIMIT
from needlepoint.actions.clinics import issue_operator_token, register_clinic, register_user
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.totp import code_at
from needlepoint.domain.commands import RegisterClinic, RegisterUser
from needlepoint.domain.entities import User
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.domain.errors import InvalidInput
from needlepoint.web.app import create_app
from needlepoint.web.context import SESSION_COOKIE
from tests.conftest import Api, ClinicFixture
from tests.integration.test_api import PATIENT, new_patient

PASSWORD = "plum-orchard-violin"
SECRET = "k" * 40


def a_user(c: ClinicFixture, role: Role = Role.CLINICIAN) -> str:
    """A new user of the clinic with a password; returns the email."""
    return new_user(c, role).email


def new_user(c: ClinicFixture, role: Role = Role.CLINICIAN) -> User:
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@test.example"
    return register_user(
        c.uow(),
        c.as_owner,
        RegisterUser(email=email, full_name="Signing In", role=role, password=PASSWORD),
    )


def browser(engine: sa.Engine, address: str | None = None, **app: Any) -> TestClient:
    """A browser; each test that fails sign-ins uses its own address, so the per-address
    limit of one test does not lock out another."""
    where = (address or f"10.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 40000)
    return TestClient(
        create_app(engine, secret_key=SECRET, **app), base_url="https://testserver", client=where
    )


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found[1]


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf": token},
        follow_redirects=False,
    )


def events(engine: sa.Engine, clinic_id: uuid.UUID, action: AuditAction) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(t.audit_events.c.clinic_id == clinic_id, t.audit_events.c.action == action)
        ).scalar_one()


def age_attempts(engine: sa.Engine, email: str, by: timedelta) -> None:
    """Move the sign-in log of `email` back in time (as if `by` had passed)."""
    la = t.login_attempts
    with engine.begin() as conn:
        rows = conn.execute(sa.select(la.c.id, la.c.occurred_at).where(la.c.email == email)).all()
        for row in rows:
            conn.execute(
                sa.update(la).where(la.c.id == row.id).values(occurred_at=row.occurred_at - by)
            )


# -- passwords ---------------------------------------------------------------------------


def test_short_and_common_passwords_are_refused_long_passphrases_accepted(
    clinic: ClinicFixture,
) -> None:
    for bad in ("password123", "iloveyou", "Sunshine1"):
        with pytest.raises(InvalidInput) as err:
            register_user(
                clinic.uow(),
                clinic.as_owner,
                RegisterUser(
                    email=f"{uuid.uuid4().hex}@t.example", full_name="X", role=Role.CLINICIAN,
                    password=bad,
                ),
            )  # fmt: skip
        assert err.value.field == "password"
    with pytest.raises(InvalidInput):
        register_clinic(
            SqlUnitOfWork(clinic.engine),
            RegisterClinic(
                name="C", owner_email=f"{uuid.uuid4().hex}@t.example", owner_name="O",
                owner_password="qwertyuiop",
            ),
        )  # fmt: skip
    passphrase = "a long passphrase with spaces, ümlauts and punctuation! " * 2  # 112 chars
    register_user(
        clinic.uow(),
        clinic.as_owner,
        RegisterUser(
            email=f"{uuid.uuid4().hex}@t.example", full_name="X", role=Role.CLINICIAN,
            password=passphrase,
        ),
    )  # fmt: skip


# -- web sessions ------------------------------------------------------------------------


def test_the_session_cookie_is_httponly_samesite_secure_and_holds_only_an_id(
    clinic: ClinicFixture,
) -> None:
    email = a_user(clinic)
    client = browser(clinic.engine, secure_cookies=True)
    r = sign_in(client, email)
    assert r.status_code == 303
    assert r.headers["location"] == "/patients"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)  # 256 random bits, nothing else
    with clinic.engine.connect() as conn:
        stored = conn.execute(sa.select(t.web_sessions.c.token_hash)).scalars().all()
    assert value not in stored  # only its hash is kept


def test_forms_without_the_csrf_token_are_refused(clinic: ClinicFixture) -> None:
    email = a_user(clinic)
    client = browser(clinic.engine)
    client.get("/login")
    r = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 400
    assert sign_in(client, email).status_code == 303
    client.post("/logout", data={"csrf": "forged"})
    assert client.get("/patients", follow_redirects=False).status_code == 200  # still in
    token = csrf_of(client.get("/patients").text)
    client.post("/logout", data={"csrf": token})
    assert client.get("/patients", follow_redirects=False).status_code == 303


def test_signing_out_everywhere_ends_every_browser_of_the_user(clinic: ClinicFixture) -> None:
    email = a_user(clinic)
    laptop, tablet = browser(clinic.engine), browser(clinic.engine)
    sign_in(laptop, email)
    sign_in(tablet, email)
    token = csrf_of(laptop.get("/patients").text)
    laptop.post("/logout/everywhere", data={"csrf": token})
    assert tablet.get("/patients", follow_redirects=False).status_code == 303
    assert laptop.get("/patients", follow_redirects=False).status_code == 303


def test_idle_and_absolute_time_outs_end_a_session(clinic: ClinicFixture) -> None:
    email = a_user(clinic)
    client = browser(clinic.engine)
    sign_in(client, email)
    assert client.get("/patients", follow_redirects=False).status_code == 200
    stale = datetime.now(UTC) - timedelta(minutes=31)  # default idle time-out: 30 minutes
    with clinic.engine.begin() as conn:
        conn.execute(sa.update(t.web_sessions).values(last_seen_at=stale))
    assert client.get("/patients", follow_redirects=False).status_code == 303
    sign_in(client, email)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with clinic.engine.begin() as conn:
        conn.execute(
            sa.update(t.web_sessions)
            .where(t.web_sessions.c.revoked_at.is_(None))
            .values(expires_at=past)
        )
    assert client.get("/patients", follow_redirects=False).status_code == 303


# -- lock-out ----------------------------------------------------------------------------


def test_wrong_passwords_pause_that_address_not_the_account_even_after_a_restart(
    clinic: ClinicFixture,
) -> None:
    email = a_user(clinic)
    here = "10.9.8.7"
    client = browser(clinic.engine, here)
    for _ in range(ACCOUNT_FAILURE_LIMIT):
        assert sign_in(client, email, "wrong-password-1").status_code == 401
    restarted = browser(clinic.engine, here)  # a new process: the count lives in the database
    paused = sign_in(restarted, email)  # even the right password waits, from this address
    assert paused.status_code == 429
    assert "paused" in paused.text
    assert 1 <= int(paused.headers["retry-after"]) <= 30
    # The account's owner, elsewhere, is not locked out by someone else's guesses.
    assert sign_in(browser(clinic.engine), email).status_code == 303
    clinic_id = clinic.owner.clinic_id
    assert events(clinic.engine, clinic_id, AuditAction.LOGIN_FAILED) == ACCOUNT_FAILURE_LIMIT + 1
    with clinic.engine.connect() as conn:
        reasons = conn.execute(
            sa.select(t.login_attempts.c.reason, t.login_attempts.c.address).where(
                t.login_attempts.c.email == email
            )
        ).all()
    assert [r.reason for r in reasons].count("bad_password") == ACCOUNT_FAILURE_LIMIT
    assert "throttled" in [r.reason for r in reasons]
    # The delay runs out (the refused attempt did not extend it); then the password works.
    age_attempts(clinic.engine, email, timedelta(seconds=31))
    assert sign_in(browser(clinic.engine, here), email).status_code == 303


def test_each_further_wrong_password_doubles_the_wait_at_that_address(
    clinic: ClinicFixture,
) -> None:
    email = a_user(clinic)
    here = "10.9.8.6"
    waits = []
    client = browser(clinic.engine, here)
    for _ in range(ACCOUNT_FAILURE_LIMIT):  # the free failures
        assert sign_in(client, email, "wrong-password-2").status_code != 429
    for _ in range(4):
        r = sign_in(client, email, "wrong-password-2")
        assert r.status_code == 429  # delayed by the last failure
        waits.append(int(r.headers["retry-after"]))
        age_attempts(clinic.engine, email, timedelta(minutes=20))  # the delay has passed
        assert sign_in(client, email, "wrong-password-2").status_code != 429  # one more
    assert waits == sorted(waits)
    assert waits[-1] > waits[0] * 4  # 30 s, 1 min, 2 min, 4 min


def test_an_owner_lifts_the_delays_of_an_account(api: Api) -> None:
    user = new_user(api.clinic)
    here = "10.9.8.5"
    for _ in range(ACCOUNT_FAILURE_LIMIT):
        sign_in(browser(api.clinic.engine, here), user.email, "wrong-password-3")
    assert sign_in(browser(api.clinic.engine, here), user.email).status_code == 429
    url = f"/api/v1/users/{user.id}/sign-in-unlock"
    assert api.client.post(url, headers=api.headers("clinician")).status_code == 403
    assert api.client.post(url, headers=api.headers("owner")).status_code == 200
    assert sign_in(browser(api.clinic.engine, here), user.email).status_code == 303
    assert events(api.clinic.engine, user.clinic_id, AuditAction.SIGN_IN_UNLOCKED) == 1


def test_many_failures_from_one_address_pause_sign_in_from_it(clinic: ClinicFixture) -> None:
    client = browser(clinic.engine)
    for i in range(ADDRESS_FAILURE_LIMIT):
        sign_in(client, f"nobody-{i}-{uuid.uuid4().hex[:6]}@test.example", "guess-guess")
    assert sign_in(client, a_user(clinic)).status_code == 429
    assert sign_in(browser(clinic.engine), a_user(clinic)).status_code == 303  # elsewhere: fine


def test_successful_sign_ins_are_audited(clinic: ClinicFixture) -> None:
    sign_in(browser(clinic.engine), a_user(clinic))
    assert events(clinic.engine, clinic.owner.clinic_id, AuditAction.LOGIN_SUCCEEDED) == 1


# -- two-factor sign-in ------------------------------------------------------------------


def require_mfa(api: Api) -> None:
    r = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": True},
        headers=api.headers("owner", **{"If-Match": '"1"'}),
    )
    assert r.status_code == 200, r.text
    assert r.json()["mfa_required"] is True


def enrolment_code(api: Api, user: User) -> str:
    r = api.client.post(f"/api/v1/users/{user.id}/mfa-enrolment-code", headers=api.headers("owner"))
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def enrol_in_browser(api: Api, client: TestClient, enrolment: str) -> Any:
    """Enter the owner's enrolment code, scan the key, confirm with a first code."""
    page = client.get("/login/enrol").text
    started = client.post(
        "/login/enrol/start", data={"enrolment_code": enrolment, "csrf": csrf_of(page)}
    )
    assert started.status_code == 200, started.text
    secret = re.search(r'id="secret">([A-Z2-7]+)<', started.text)
    assert secret
    return client.post(
        "/login/enrol",
        data={
            "code": code_at(secret[1], datetime.now(UTC)),
            "enrolment_code": enrolment,
            "csrf": csrf_of(started.text),
        },
    )


def test_a_clinic_requiring_mfa_makes_users_enrol_then_sign_in_with_a_code(api: Api) -> None:
    require_mfa(api)
    user = new_user(api.clinic)
    email = user.email
    client = browser(api.clinic.engine)
    r = sign_in(client, email)
    assert r.headers["location"] == "/login/enrol"
    assert client.get("/patients", follow_redirects=False).status_code == 303  # not yet
    done = enrol_in_browser(api, client, enrolment_code(api, user))
    codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", done.text)
    assert len(codes) == 10
    assert client.get("/patients", follow_redirects=False).status_code == 200

    later = browser(api.clinic.engine)  # next sign-in: password, then the code
    assert sign_in(later, email).headers["location"] == "/login/code"
    page = later.get("/login/code").text
    wrong = later.post("/login/code", data={"code": "000000", "csrf": csrf_of(page)})
    assert wrong.status_code == 401
    pending_id = later.cookies.get(SESSION_COOKIE)
    used = later.post("/login/code", data={"code": codes[0], "csrf": csrf_of(page)})
    assert used.status_code == 200
    assert later.get("/patients", follow_redirects=False).status_code == 200
    assert later.cookies.get(SESSION_COOKIE) != pending_id  # a new id once signed in
    fixated = browser(api.clinic.engine)
    fixated.cookies.set(SESSION_COOKIE, str(pending_id))
    assert fixated.get("/patients", follow_redirects=False).status_code == 303

    again = browser(api.clinic.engine)  # a recovery code works only once
    sign_in(again, email)
    page = again.get("/login/code").text
    reused = again.post("/login/code", data={"code": codes[0], "csrf": csrf_of(page)})
    assert reused.status_code == 401
    clinic_id = api.clinic.owner.clinic_id
    assert events(api.clinic.engine, clinic_id, AuditAction.MFA_ENROLLED) == 1
    assert events(api.clinic.engine, clinic_id, AuditAction.MFA_RECOVERY_CODE_USED) == 1


def test_mfa_enrolment_over_the_api_and_a_replayed_code_is_refused(api: Api) -> None:
    begun = api.client.post("/api/v1/account/mfa", headers=api.headers())
    assert begun.status_code == 201
    assert begun.json()["otpauth_uri"].startswith("otpauth://totp/Needlepoint")
    code = code_at(begun.json()["secret"], datetime.now(UTC))
    ok = api.client.post("/api/v1/account/mfa/confirm", json={"code": code}, headers=api.headers())
    assert ok.status_code == 200
    assert len(ok.json()["recovery_codes"]) == 10
    again = api.client.post("/api/v1/account/mfa", headers=api.headers())
    assert again.status_code == 409
    with api.clinic.engine.connect() as conn:
        hashes = conn.execute(sa.select(t.recovery_codes.c.code_hash)).scalars().all()
    assert not set(ok.json()["recovery_codes"]) & set(hashes)  # stored hashed


def test_the_demo_clinic_does_not_require_mfa(api: Api) -> None:
    r = api.client.get("/api/v1/clinic/security", headers=api.headers("owner"))
    assert r.status_code == 200
    assert r.json()["mfa_required"] is False
    assert r.headers["etag"] == '"1"'


# -- API tokens and sessions -------------------------------------------------------------


def operator_token(c: ClinicFixture, user: User) -> dict[str, str]:
    plain = issue_operator_token(SqlUnitOfWork(c.engine), user, "ops", source="test")
    return {"Authorization": f"Bearer {plain}"}


def test_a_read_only_token_reads_but_every_write_is_forbidden(api: Api) -> None:
    user = new_user(api.clinic)
    r = api.client.post(
        "/api/v1/account/tokens",
        json={"read_only": True, "label": "reporting", "password": PASSWORD},
        headers=operator_token(api.clinic, user),
    )
    assert r.status_code == 201, r.text
    assert r.json()["scopes"] == "read"
    reader = {"Authorization": f"Bearer {r.json()['token']}"}
    assert api.client.get("/api/v1/patients", headers=reader).status_code == 200
    denied = api.client.post("/api/v1/patients", json=PATIENT, headers=reader)
    assert denied.status_code == 403
    assert "write" in denied.json()["detail"]


def test_my_sessions_never_show_the_cookie_or_csrf_token(api: Api) -> None:
    client = browser(api.clinic.engine)
    user = new_user(api.clinic)
    sign_in(client, user.email)
    token = issue_operator_token(SqlUnitOfWork(api.clinic.engine), user, "t")
    mine = api.client.get("/api/v1/account/sessions", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200
    assert len(mine.json()) == 1
    assert set(mine.json()[0]) == {
        "id", "created_at", "last_seen_at", "expires_at", "address", "mfa_pending",
    }  # fmt: skip
    out = api.client.post(
        "/api/v1/account/sign-out-everywhere", headers={"Authorization": f"Bearer {token}"}
    )
    assert out.json() == {"revoked_sessions": 1, "revoked_tokens": 1}
    assert client.get("/patients", follow_redirects=False).status_code == 303


# -- emergency access --------------------------------------------------------------------


def test_emergency_access_needs_a_reason_expires_is_flagged_and_the_owner_is_told(
    api: Api,
) -> None:
    patient = new_patient(api)
    url = f"/api/v1/patients/{patient['id']}/emergency-access"
    assert api.client.post(url, json={"reason": "x"}, headers=api.headers()).status_code == 422
    reason = {"reason": "unconscious, allergy check"}
    assert api.client.post(url, json=reason, headers=api.headers("assistant")).status_code == 403
    r = api.client.post(url, json=reason, headers=api.headers())
    assert r.status_code == 201
    grant = r.json()
    granted = datetime.fromisoformat(grant["granted_at"])
    assert datetime.fromisoformat(grant["expires_at"]) - granted == timedelta(minutes=60)
    with api.clinic.engine.connect() as conn:
        event = conn.execute(
            sa.select(t.audit_events).where(
                t.audit_events.c.action == AuditAction.EMERGENCY_ACCESS_GRANTED,
                t.audit_events.c.entity_id == uuid.UUID(grant["id"]),
            )
        ).one()
    assert str(event.patient_id) == patient["id"]
    assert str(event.actor_user_id) == str(api.clinic.clinician.id)
    told = api.client.get("/api/v1/account/notifications", headers=api.headers("owner")).json()
    assert len(told) == 1
    assert "unconscious" in told[0]["message"]
    assert api.client.get("/api/v1/account/notifications", headers=api.headers()).json() == []
    log = api.client.get("/api/v1/emergency-access", headers=api.headers("owner")).json()
    assert [g["id"] for g in log] == [grant["id"]]
    assert api.client.get("/api/v1/emergency-access", headers=api.headers()).status_code == 403


def test_a_token_label_out_of_bounds_is_a_problem_not_a_crash(api: Api) -> None:
    user = new_user(api.clinic)
    mine = operator_token(api.clinic, user)
    for label in ("", "x" * 201):
        body = {"label": label, "password": PASSWORD}
        r = api.client.post("/api/v1/account/tokens", json=body, headers=mine)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "label"


def test_a_revoked_token_stops_working_at_once_and_the_revocation_is_audited(api: Api) -> None:
    user = new_user(api.clinic)
    issued = api.client.post(
        "/api/v1/account/tokens",
        json={"password": PASSWORD},
        headers=operator_token(api.clinic, user),
    ).json()
    mine = {"Authorization": f"Bearer {issued['token']}"}
    assert api.client.get("/api/v1/me", headers=mine).status_code == 200
    url = f"/api/v1/users/{user.id}/tokens/{issued['id']}"
    assert api.client.delete(url, headers=api.headers("clinician")).status_code == 403
    assert api.client.delete(url, headers=api.headers("owner")).status_code == 204
    assert api.client.get("/api/v1/me", headers=mine).status_code == 401
    with api.clinic.engine.connect() as conn:
        logged = (
            conn.execute(sa.select(t.login_attempts.c.reason).where(t.login_attempts.c.email == ""))
            .scalars()
            .all()
        )
    assert "bad_api_token" in logged
    clinic_id = api.clinic.owner.clinic_id
    assert events(api.clinic.engine, clinic_id, AuditAction.API_TOKEN_REVOKED) == 1


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.PATIENT])
def test_roles_without_patient_access_see_a_refusal_page_not_an_error(
    clinic: ClinicFixture, role: Role
) -> None:
    client = browser(clinic.engine)
    assert sign_in(client, a_user(clinic, role)).status_code == 303
    page = client.get("/patients", follow_redirects=False)
    assert page.status_code == 403
    assert "may not read demographics" in page.text
    assert "Sign out" in page.text


def test_under_care_team_restriction_emergency_access_opens_a_record_for_a_while(
    api: Api,
) -> None:
    from tests.integration.test_api import new_session

    note = new_session(api)  # recorded by the clinician: they are on the care team
    patient_id, episode_id = note["patient_id"], note["episode_id"]
    r = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": False, "care_team_restriction": True},
        headers=api.headers("owner", **{"If-Match": '"1"'}),
    )
    assert r.status_code == 200, r.text
    outsider = new_user(api.clinic)
    theirs = {
        "Authorization": "Bearer "
        + issue_operator_token(SqlUnitOfWork(api.clinic.engine), outsider, "t", source="test")
    }
    reads = [
        f"/api/v1/patients/{patient_id}/timeline",
        f"/api/v1/patients/{patient_id}/episodes",
        f"/api/v1/patients/{patient_id}/measurements",
        f"/api/v1/patients/{patient_id}/medications",
        f"/api/v1/episodes/{episode_id}",
        f"/api/v1/episodes/{episode_id}/sessions",
        f"/api/v1/sessions/{note['id']}",
    ]
    for url in reads:
        assert api.client.get(url, headers=api.headers()).status_code == 200, url
        assert api.client.get(url, headers=api.headers("owner")).status_code == 200, url
        denied = api.client.get(url, headers=theirs)
        assert denied.status_code == 403, url
        assert "emergency access" in denied.json()["detail"]
        assert "Neck pain" not in denied.text  # nothing of the note
    assert api.client.get(f"/api/v1/patients/{patient_id}", headers=theirs).status_code == 200

    page = browser(api.clinic.engine)
    sign_in(page, outsider.email)
    assert page.get(f"/patients/{patient_id}").status_code == 403

    grant = api.client.post(
        f"/api/v1/patients/{patient_id}/emergency-access",
        json={"reason": "on call; patient phoned with chest pain after needling"},
        headers=theirs,
    )
    assert grant.status_code == 201
    for url in reads:
        assert api.client.get(url, headers=theirs).status_code == 200, url
    assert page.get(f"/patients/{patient_id}").status_code == 200

    with api.clinic.engine.begin() as conn:  # the grant runs out
        conn.execute(
            sa.update(t.emergency_accesses).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    assert api.client.get(reads[0], headers=theirs).status_code == 403
