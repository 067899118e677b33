"""Issue 14, accounts: second-factor guessing counted apart and locked, enrolment that
the password alone cannot do, API tokens that expire and die with sign-out-everywhere
and deactivation, and the account lifecycle (deactivate, reactivate, change password,
owner-initiated reset, reset MFA, new recovery codes), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from needlepoint.actions import accounts
from needlepoint.actions.clinics import register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.passwords import hash_password
from needlepoint.adapters.totp import code_at
from needlepoint.domain import throttle
from needlepoint.domain.commands import MfaCode, RegisterUser
from needlepoint.domain.entities import User, WebSession
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.web.context import SESSION_COOKIE
from tests.conftest import Api, ClinicFixture, make_clinic
from tests.integration.test_accounts import (
    PASSWORD,
    browser,
    csrf_of,
    enrol_in_browser,
    enrolment_code,
    events,
    new_user,
    operator_token,
    require_mfa,
    sign_in,
)


def enrolled(c: ClinicFixture, user: User) -> tuple[str, list[str]]:
    """Set up `user`'s authenticator; returns (its key, the recovery codes)."""
    me = Actor(user.id, user.clinic_id, source="test")
    secret, _ = accounts.begin_mfa_enrolment(SqlUnitOfWork(c.engine), me)
    codes = accounts.confirm_mfa_enrolment(
        SqlUnitOfWork(c.engine), me, MfaCode(code=code_at(secret, datetime.now(UTC)))
    )
    return secret, codes


def next_code(secret: str) -> str:
    """A code valid now that no earlier step used (the next time step's)."""
    return code_at(secret, datetime.now(UTC) + timedelta(seconds=30))


def pending(c: ClinicFixture, user: User, address: str) -> WebSession:
    done = accounts.sign_in(
        SqlUnitOfWork(c.engine), user.email, PASSWORD, address=address, request_id=None
    )
    assert done.outcome is accounts.Outcome.NEEDS_CODE
    assert done.session is not None
    return done.session


def try_code(c: ClinicFixture, session: WebSession, code: str, address: str) -> str:
    check = accounts.verify_code(
        SqlUnitOfWork(c.engine), session, MfaCode(code=code), address=address, request_id=None
    )
    return "signed_in" if check.token else str(check.refused)


def age_codes(engine: sa.Engine, user: User, by: timedelta) -> None:
    la = t.login_attempts
    with engine.begin() as conn:
        rows = conn.execute(sa.select(la.c.id, la.c.occurred_at).where(la.c.user_id == user.id))
        for row in rows.all():
            conn.execute(
                sa.update(la).where(la.c.id == row.id).values(occurred_at=row.occurred_at - by)
            )


# -- the second factor -------------------------------------------------------------------


def test_a_correct_password_does_not_forgive_wrong_codes_and_the_second_factor_locks(
    api: Api,
) -> None:
    c = api.clinic
    user = new_user(c)
    secret, _codes = enrolled(c, user)
    results = []
    for i in range(throttle.MFA_LOCK_AFTER):
        address = f"198.51.100.{i}"  # a new address and a fresh password each time
        results.append(try_code(c, pending(c, user, address), "000000", address))
        if results[-1] == "bad_code" and i + 1 >= throttle.SECOND_FACTOR.free:
            # the next try would have to wait: it does, refused without being counted
            assert try_code(c, pending(c, user, address), "111111", address) == "throttled"
            age_codes(c.engine, user, timedelta(hours=1))
    assert results[:-1] == ["bad_code"] * (throttle.MFA_LOCK_AFTER - 1)
    assert results[-1] == "mfa_locked"
    # Locked: even the right code is refused, from anywhere, after a correct password;
    # the first factor is not locked (the password still works to reach this step).
    session = pending(c, user, "203.0.113.1")
    assert try_code(c, session, next_code(secret), "203.0.113.1") == "mfa_locked"
    with c.engine.connect() as conn:
        revoked = conn.execute(
            sa.select(t.web_sessions.c.revoked_at).where(t.web_sessions.c.id == session.id)
        ).scalar_one()
    assert revoked is not None  # the pending session of a locked second factor ends

    url = f"/api/v1/users/{user.id}/sign-in-unlock"
    assert api.client.post(url, headers=api.headers("owner")).status_code == 200
    assert try_code(c, pending(c, user, "203.0.113.2"), next_code(secret), "x") == "signed_in"


def test_the_web_page_says_when_the_second_factor_must_wait_or_is_locked(api: Api) -> None:
    c = api.clinic
    user = new_user(c)
    enrolled(c, user)
    client = browser(c.engine)
    assert sign_in(client, user.email).headers["location"] == "/login/code"
    page = client.get("/login/code").text
    statuses = [
        client.post("/login/code", data={"code": "000000", "csrf": csrf_of(page)}).status_code
        for _ in range(throttle.SECOND_FACTOR.free)
    ]
    assert statuses == [401] * throttle.SECOND_FACTOR.free
    waiting = client.post("/login/code", data={"code": "000000", "csrf": csrf_of(page)})
    assert waiting.status_code == 429
    assert "try again in" in waiting.text
    assert int(waiting.headers["retry-after"]) >= 1


# -- enrolment once MFA is required ------------------------------------------------------


def test_once_mfa_is_required_the_password_alone_cannot_enrol_a_device(api: Api) -> None:
    require_mfa(api)
    c = api.clinic
    user = new_user(c)
    client = browser(c.engine)
    assert sign_in(client, user.email).headers["location"] == "/login/enrol"
    page = client.get("/login/enrol")
    assert 'id="secret"' not in page.text  # no key before the owner's code
    for wrong in ("", "aaaaa-bbbbb-ccccc-ddddd"):
        r = client.post(
            "/login/enrol/start", data={"enrolment_code": wrong, "csrf": csrf_of(page.text)}
        )
        assert r.status_code in (400, 422)
        assert 'id="secret"' not in r.text
    # Over the API too: a token of the account does not enrol without the code.
    theirs = operator_token(c, user)
    r = api.client.post("/api/v1/account/mfa", headers=theirs)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "enrolment_code"
    # Another user's code is not this user's.
    other = new_user(c)
    r = api.client.post(
        "/api/v1/account/mfa", json={"enrolment_code": enrolment_code(api, other)}, headers=theirs
    )
    assert r.status_code == 422

    code = enrolment_code(api, user)
    done = enrol_in_browser(api, client, code)
    assert done.status_code == 200
    assert client.get("/patients", follow_redirects=False).status_code == 200
    # The code worked once: after a reset of the factor it does not work again.
    api.client.post(f"/api/v1/users/{user.id}/mfa-reset", headers=api.headers("owner"))
    again = browser(c.engine)
    sign_in(again, user.email)
    page = again.get("/login/enrol").text
    r = again.post("/login/enrol/start", data={"enrolment_code": code, "csrf": csrf_of(page)})
    assert r.status_code == 400
    assert events(c.engine, user.clinic_id, AuditAction.MFA_ENROLMENT_CODE_ISSUED) == 2


# -- API tokens --------------------------------------------------------------------------


def test_only_the_user_creates_their_tokens_with_their_password_and_code(api: Api) -> None:
    c = api.clinic
    user = new_user(c)
    theirs = operator_token(c, user)
    # No more tokens minted by an owner for someone else.
    minted = api.client.post(f"/api/v1/users/{user.id}/tokens", headers=api.headers("owner"))
    assert minted.status_code in (404, 405)
    wrong = api.client.post(
        "/api/v1/account/tokens", json={"password": "not the password"}, headers=theirs
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "password"
    ok = api.client.post("/api/v1/account/tokens", json={"password": PASSWORD}, headers=theirs)
    assert ok.status_code == 201, ok.text
    assert ok.json()["user_id"] == str(user.id)
    created = datetime.fromisoformat(ok.json()["created_at"])
    assert datetime.fromisoformat(ok.json()["expires_at"]) - created == timedelta(days=90)

    secret, _ = enrolled(c, user)  # with a second factor, the code is needed too
    r = api.client.post("/api/v1/account/tokens", json={"password": PASSWORD}, headers=theirs)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "code"
    body = {"password": PASSWORD, "code": next_code(secret)}
    assert api.client.post("/api/v1/account/tokens", json=body, headers=theirs).status_code == 201

    mfa_less = new_user(c)  # once the clinic requires MFA, none without a second factor
    require_mfa(api)
    r = api.client.post(
        "/api/v1/account/tokens",
        json={"password": PASSWORD, "code": "123456"},
        headers=operator_token(c, mfa_less),
    )
    assert r.status_code == 422
    assert "two-factor" in r.json()["detail"]


def test_tokens_expire_after_the_clinics_setting(api: Api) -> None:
    c = api.clinic
    r = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": False, "api_token_days": 7},
        headers=api.headers("owner", **{"If-Match": '"1"'}),
    )
    assert r.status_code == 200, r.text
    assert r.json()["api_token_days"] == 7
    bad = api.client.put(
        "/api/v1/clinic/security",
        json={"mfa_required": False, "api_token_days": 0},
        headers=api.headers("owner", **{"If-Match": '"2"'}),
    )
    assert bad.status_code == 422
    user = new_user(c)
    theirs = operator_token(c, user)
    issued = api.client.post(
        "/api/v1/account/tokens", json={"password": PASSWORD}, headers=theirs
    ).json()
    created = datetime.fromisoformat(issued["created_at"])
    assert datetime.fromisoformat(issued["expires_at"]) - created == timedelta(days=7)
    mine = {"Authorization": f"Bearer {issued['token']}"}
    assert api.client.get("/api/v1/me", headers=mine).status_code == 200
    with c.engine.begin() as conn:  # a week later
        conn.execute(
            sa.update(t.api_tokens)
            .where(t.api_tokens.c.id == uuid.UUID(issued["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert api.client.get("/api/v1/me", headers=mine).status_code == 401
    assert api.client.get("/api/v1/me", headers=theirs).status_code == 200  # others still work


def test_signing_out_everywhere_and_deactivation_revoke_api_tokens(api: Api) -> None:
    c = api.clinic
    user = new_user(c)
    first, second = operator_token(c, user), operator_token(c, user)
    out = api.client.post("/api/v1/account/sign-out-everywhere", headers=first)
    assert out.json()["revoked_tokens"] == 2
    assert api.client.get("/api/v1/me", headers=first).status_code == 401
    assert api.client.get("/api/v1/me", headers=second).status_code == 401

    client = browser(c.engine)
    sign_in(client, user.email)
    third = operator_token(c, user)
    r = api.client.post(f"/api/v1/users/{user.id}/deactivate", headers=api.headers("owner"))
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    assert api.client.get("/api/v1/me", headers=third).status_code == 401
    assert client.get("/patients", follow_redirects=False).status_code == 303
    assert sign_in(browser(c.engine), user.email).status_code == 401
    # Reactivated: signs in afresh; the old token stays revoked.
    r = api.client.post(f"/api/v1/users/{user.id}/reactivate", headers=api.headers("owner"))
    assert r.json()["is_active"] is True
    assert api.client.get("/api/v1/me", headers=third).status_code == 401
    assert sign_in(browser(c.engine), user.email).status_code == 303
    clinic_id = user.clinic_id
    assert events(c.engine, clinic_id, AuditAction.USER_DEACTIVATED) == 1
    assert events(c.engine, clinic_id, AuditAction.USER_REACTIVATED) == 1


def test_an_owner_cannot_deactivate_themself_or_the_last_owner(api: Api) -> None:
    owner = api.clinic.owner
    r = api.client.post(f"/api/v1/users/{owner.id}/deactivate", headers=api.headers("owner"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "user_id"
    assert api.client.get("/api/v1/me", headers=api.headers("owner")).status_code == 200
    other = make_clinic(api.clinic.engine, "Elsewhere")
    r = api.client.post(
        f"/api/v1/users/{other.clinician.id}/deactivate", headers=api.headers("owner")
    )
    assert r.status_code == 404  # another clinic's account does not exist here


# -- passwords ---------------------------------------------------------------------------


def test_changing_the_password_needs_the_current_one_and_signs_out_other_browsers(
    api: Api,
) -> None:
    c = api.clinic
    user = new_user(c)
    laptop, phone = browser(c.engine), browser(c.engine)
    sign_in(laptop, user.email)
    sign_in(phone, user.email)
    page = laptop.get("/account")
    assert page.status_code == 200
    wrong = laptop.post(
        "/account/password",
        data={
            "current_password": "not it at all",
            "new_password": "a fresh passphrase",
            "csrf": csrf_of(page.text),
        },
    )
    assert wrong.status_code == 400
    assert "current password is not right" in wrong.text
    new = " a fresh passphrase "  # spaces are part of it
    done = laptop.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": new, "csrf": csrf_of(page.text)},
    )
    assert done.status_code == 200, done.text
    assert "Password changed" in done.text
    assert laptop.get("/patients", follow_redirects=False).status_code == 200  # this one stays
    assert phone.get("/patients", follow_redirects=False).status_code == 303
    assert sign_in(browser(c.engine), user.email).status_code == 401  # the old one
    assert sign_in(browser(c.engine), user.email, new.strip()).status_code == 401  # as typed
    assert sign_in(browser(c.engine), user.email, new).status_code == 303
    assert events(c.engine, user.clinic_id, AuditAction.PASSWORD_CHANGED) == 1
    # Over the API, naming the field.
    theirs = operator_token(c, user)
    r = api.client.post(
        "/api/v1/account/password",
        json={"current_password": new, "new_password": user.email},
        headers=theirs,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "new_password"


def test_an_owner_reset_ends_the_old_password_and_a_one_time_code_sets_a_new_one(
    api: Api,
) -> None:
    c = api.clinic
    user = new_user(c)
    client = browser(c.engine)
    sign_in(client, user.email)
    r = api.client.post(f"/api/v1/users/{user.id}/password-reset", headers=api.headers("owner"))
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    assert client.get("/patients", follow_redirects=False).status_code == 303  # signed out
    assert sign_in(browser(c.engine), user.email).status_code == 401
    with c.engine.connect() as conn:
        stored = conn.execute(sa.select(t.account_codes.c.code_hash)).scalars().all()
    assert code not in stored  # only its hash

    resetter = browser(c.engine)
    form = resetter.get("/password-reset").text
    wrong = resetter.post(
        "/password-reset",
        data={
            "email": user.email,
            "reset_code": "aaaaa-bbbbb-ccccc-ddddd",
            "new_password": "chosen after reset",
            "csrf": csrf_of(form),
        },
    )
    assert wrong.status_code == 400
    other = new_user(c)  # a code works for its own account's email only

    def reset(email: str, new_password: str, page: str) -> Any:
        data = {"reset_code": code, "new_password": new_password, "csrf": csrf_of(page)}
        return resetter.post("/password-reset", data={**data, "email": email})

    refused = reset(other.email, "chosen after reset", wrong.text)
    assert refused.status_code == 400
    ok = reset(user.email, "chosen after reset", refused.text)
    assert ok.status_code == 200, re.findall(r'role="alert">([^<]*)<', ok.text)
    assert "new password is set" in ok.text
    assert sign_in(browser(c.engine), user.email, "chosen after reset").status_code == 303
    again = reset(user.email, "once more, please", resetter.get("/password-reset").text)
    assert again.status_code == 400  # once only
    assert "not valid" in again.text
    clinic_id = user.clinic_id
    assert events(c.engine, clinic_id, AuditAction.PASSWORD_RESET_ISSUED) == 1
    assert events(c.engine, clinic_id, AuditAction.PASSWORD_RESET_COMPLETED) == 1


def test_new_recovery_codes_replace_the_old_ones(api: Api) -> None:
    c = api.clinic
    user = new_user(c)
    secret, old = enrolled(c, user)
    theirs = operator_token(c, user)
    r = api.client.post(
        "/api/v1/account/mfa/recovery-codes", json={"code": "000000"}, headers=theirs
    )
    assert r.status_code == 422
    r = api.client.post(
        "/api/v1/account/mfa/recovery-codes", json={"code": next_code(secret)}, headers=theirs
    )
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    assert len(new) == 10
    assert not set(new) & set(old)
    assert try_code(c, pending(c, user, "192.0.2.50"), old[0], "192.0.2.50") == "bad_code"
    assert try_code(c, pending(c, user, "192.0.2.51"), new[0], "192.0.2.51") == "signed_in"
    assert events(c.engine, user.clinic_id, AuditAction.MFA_RECOVERY_CODES_REISSUED) == 1


def test_resetting_mfa_removes_the_factor_and_hands_out_an_enrolment_code(api: Api) -> None:
    c = api.clinic
    user = new_user(c)
    enrolled(c, user)
    assert sign_in(browser(c.engine), user.email).headers["location"] == "/login/code"
    r = api.client.post(f"/api/v1/users/{user.id}/mfa-reset", headers=api.headers("owner"))
    assert r.status_code == 200
    assert re.fullmatch(r"[a-z2-9]{5}(-[a-z2-9]{5}){3}", r.json()["code"])
    assert sign_in(browser(c.engine), user.email).headers["location"] == "/patients"
    with c.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(t.recovery_codes.c.user_id == user.id)
        ).scalar_one()
    assert left == 0
    assert events(c.engine, user.clinic_id, AuditAction.MFA_RESET) == 1


# -- email addresses and cookies ---------------------------------------------------------


def test_an_email_used_by_another_clinic_tells_nothing_and_both_sign_in(api: Api) -> None:
    c = api.clinic
    mine = new_user(c)
    other = make_clinic(c.engine, "Neighbour Clinic")
    theirs = register_user(  # the same email in another clinic: accepted, no hint
        SqlUnitOfWork(c.engine),
        other.as_owner,
        RegisterUser(
            email=mine.email.upper(),
            full_name="Namesake",
            role=Role.CLINICIAN,
            password="the neighbour's own passphrase",
        ),
    )
    assert theirs.clinic_id != mine.clinic_id
    dup = api.client.post(
        "/api/v1/users",
        json={"email": mine.email, "full_name": "Twice", "role": "assistant"},
        headers=api.headers("owner"),
    )
    assert dup.status_code == 422  # within one clinic an email is still unique
    assert dup.json()["errors"][0]["field"] == "email"
    client = browser(c.engine)
    assert sign_in(client, mine.email).status_code == 303
    assert "Test Clinic" in client.get("/patients").text
    elsewhere = browser(c.engine)
    assert sign_in(elsewhere, mine.email, "the neighbour's own passphrase").status_code == 303
    assert "Neighbour Clinic" in elsewhere.get("/patients").text


def test_the_session_cookie_ends_with_the_browser_unless_remembered(clinic: ClinicFixture) -> None:
    user = new_user(clinic)
    plain = sign_in(browser(clinic.engine), user.email)
    cookie = next(
        c for c in plain.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    assert "max-age" not in cookie.lower()
    assert "expires" not in cookie.lower()
    client = browser(clinic.engine)
    token = csrf_of(client.get("/login").text)
    kept = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf": token, "remember": "on"},
        follow_redirects=False,
    )
    cookie = next(
        c for c in kept.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    assert "Max-Age=43200" in cookie  # the session's absolute lifetime (12 hours)


# -- the pages ---------------------------------------------------------------------------


def test_the_owner_manages_accounts_on_the_staff_page(api: Api) -> None:
    c = api.clinic
    owner = c.owner
    with c.engine.begin() as conn:  # the fixture's owner has no password: give one
        conn.execute(
            sa.update(t.users)
            .where(t.users.c.id == owner.id)
            .values(password_hash=hash_password(PASSWORD))
        )
    user = new_user(c)
    client = browser(c.engine)
    sign_in(client, owner.email)
    page = client.get("/staff")
    assert page.status_code == 200
    assert user.email in page.text
    reset = client.post(f"/staff/{user.id}/password-reset", data={"csrf": csrf_of(page.text)})
    assert reset.status_code == 200
    code = re.search(r'id="one-time-code">([a-z2-9-]+)<', reset.text)
    assert code
    done = client.post(f"/staff/{user.id}/deactivate", data={"csrf": csrf_of(page.text)})
    assert "deactivated" in done.text
    forged = client.post(f"/staff/{user.id}/reactivate", data={"csrf": "forged"})
    assert forged.status_code == 403
    clinician = browser(c.engine)
    sign_in(clinician, new_user(c).email)
    assert clinician.get("/staff").status_code == 403
    assert clinician.get("/account").status_code == 200


# -- the migration -----------------------------------------------------------------------


def test_upgrading_a_sqlite_database_with_accounts_keeps_every_reference(
    tmp_path: Path,
) -> None:
    """Migration 0011 rebuilds `users` on SQLite (its email becomes unique per clinic):
    the rows referring to users survive, and tokens issued before get an expiry."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0008")
    now = datetime.now(UTC)
    clinic_id, user_id, token_id = (uuid.uuid4() for _ in range(3))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO clinics (id, name, created_at, version, jurisdiction, "
                "credential_policy, screening_valid_days, bill_sides_separately) "
                "VALUES (:id, 'C', :now, 1, 'none', 'warn', 90, 0)"
            ),
            {"id": clinic_id.hex, "now": now.isoformat()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO users (id, clinic_id, email, full_name, role, created_at, "
                "is_active, version) VALUES (:id, :clinic, 'a@b.example', 'A', 'owner', :now, 1, 1)"
            ),
            {"id": user_id.hex, "clinic": clinic_id.hex, "now": now.isoformat()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_tokens (id, clinic_id, user_id, token_hash, label, created_at, "
                "scopes) VALUES (:id, :clinic, :user, 'h', 'old', :now, 'read write')"
            ),
            {
                "id": token_id.hex,
                "clinic": clinic_id.hex,
                "user": user_id.hex,
                "now": now.isoformat(),
            },
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        token = conn.execute(sa.select(t.api_tokens)).one()
        assert conn.execute(sa.select(sa.func.count()).select_from(t.users)).scalar_one() == 1
    assert token.user_id == user_id
    assert token.expires_at is not None
    assert abs(token.expires_at - (now + timedelta(days=90))) < timedelta(seconds=5)
    engine.dispose()
