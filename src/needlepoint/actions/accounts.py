"""Accounts: signing in (password, then TOTP when enrolled or required), progressive
sign-in delays and the second-factor lock (`domain.throttle`), web sessions and signing
out, MFA enrolment (with an owner's enrolment code once the clinic requires it), the
clinic's security policy, and emergency (break-glass) access to a patient's record.

Every authentication attempt is logged twice: in `login_attempts` (address, reason; also
for unknown accounts, which belong to no clinic) and, when the account exists, as an
audit event of its clinic with the same request id."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from needlepoint.actions.context import Actor, audit, authorize, load, notify
from needlepoint.actions.registry import action
from needlepoint.adapters.db.logins import (
    Account,
    LoginAttempt,
    accounts_by_email,
    address_failures,
    code_failures,
    password_failures,
    record_attempt,
)
from needlepoint.adapters.passwords import hash_api_token, hash_one_time_code, verify_password
from needlepoint.adapters.totp import (
    accepted_counter,
    hash_recovery_code,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
)
from needlepoint.domain import throttle
from needlepoint.domain.commands import (
    BeginMfaEnrolment,
    ConfirmMfaEnrolment,
    MfaCode,
    RequestEmergencyAccess,
    UpdateSecuritySettings,
)
from needlepoint.domain.entities import (
    AccountCode,
    ApiToken,
    EmergencyAccess,
    MfaSecret,
    Patient,
    RecoveryCode,
    SecuritySettings,
    User,
    WebSession,
)
from needlepoint.domain.enums import AccountCodePurpose, AuditAction, Role
from needlepoint.domain.errors import InvalidInput, RecordLocked, StaleVersion
from needlepoint.domain.permissions import Permission
from needlepoint.ports import ConnectedUnitOfWork, UnitOfWork

ACCOUNT_FAILURE_LIMIT = throttle.ACCOUNT_AT_ADDRESS.free  # free failures: account+address
ADDRESS_FAILURE_LIMIT = throttle.ADDRESS.free  # free failures from one address
TOUCH_EVERY = timedelta(seconds=60)  # how stale `last_seen_at` may get (saves writes)


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    NEEDS_CODE = "needs_code"  # password accepted; enter the authenticator code
    NEEDS_ENROLMENT = "needs_enrolment"  # the clinic requires MFA; enrol now
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class SignIn:
    """The result of a sign-in step; `token` is the new session's cookie value."""

    outcome: Outcome
    session: WebSession | None = None
    token: str | None = None
    locked: bool = False  # refused because this account+address or address must wait
    retry_after: int | None = None  # seconds until the next attempt may go ahead


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The result of a second-factor step: `token` is the completed session's new cookie
    value; otherwise `refused` says why (`bad_code`, `throttled`, `mfa_locked`)."""

    token: str | None
    refused: str | None = None
    retry_after: int | None = None


def security_settings(uow: UnitOfWork, clinic_id: UUID) -> SecuritySettings:
    """The clinic's policy (the defaults until the owner changes it)."""
    found = uow.get(SecuritySettings, clinic_id, clinic_id)
    return found or SecuritySettings(id=clinic_id, clinic_id=clinic_id)


def session_expiry(session: WebSession, settings: SecuritySettings, now: datetime) -> str | None:
    """Why a web session is no longer valid at `now`, or None."""
    if session.revoked_at is not None:
        return "signed out"
    if now >= session.expires_at:
        return "absolute lifetime reached"
    if now - session.last_seen_at >= timedelta(minutes=settings.idle_timeout_minutes):
        return "inactive too long"
    return None


def _confirmed_mfa(uow: UnitOfWork, user: User) -> MfaSecret | None:
    found = uow.list_by(MfaSecret, user.clinic_id, user_id=user.id)
    return found[0] if found and found[0].confirmed_at is not None else None


def _log(
    uow: ConnectedUnitOfWork,
    email: str,
    address: str,
    reason: str,
    *,
    user: User | None,
    action: AuditAction | None,
    request_id: str | None,
) -> None:
    record_attempt(
        uow.connection,
        LoginAttempt(
            occurred_at=uow.now(),
            email=email,
            address=address,
            succeeded=reason in ("signed_in", "password_accepted"),
            reason=reason,
            clinic_id=user.clinic_id if user else None,
            user_id=user.id if user else None,
            request_id=request_id,
        ),
    )
    if user is not None and action is not None:
        actor = Actor(user.id, user.clinic_id, source="web", request_id=request_id)
        audit(uow, actor, user.clinic_id, action, user)


def password_wait(uow: ConnectedUnitOfWork, email: str, address: str) -> timedelta:
    """How long a password attempt for `email` from `address` must still wait (zero: go
    ahead): progressive delays per account+address and per address, never a lock-out
    of the account everywhere (`domain.throttle`)."""
    now, conn = uow.now(), uow.connection
    count, last = password_failures(conn, email, address, now - throttle.ACCOUNT_AT_ADDRESS.window)
    here = throttle.wait(count, last, now, throttle.ACCOUNT_AT_ADDRESS)
    count, last = address_failures(conn, address, now - throttle.ADDRESS.window)
    anywhere = throttle.wait(count, last, now, throttle.ADDRESS)
    return max(here, anywhere)


def code_refusal(uow: ConnectedUnitOfWork, user: User) -> tuple[str, timedelta] | None:
    """Why the account's second factor may not be tried now, or None: locked after
    `throttle.MFA_LOCK_AFTER` failures (until a full sign-in or an owner's unlock), or
    waiting out the delay after the last failure. Failures count from any address, and
    a correct password does not restart the count."""
    count, last = code_failures(uow.connection, user.id)
    if count >= throttle.MFA_LOCK_AFTER:
        return "mfa_locked", timedelta(0)
    remaining = throttle.wait(count, last, uow.now(), throttle.SECOND_FACTOR)
    return ("throttled", remaining) if remaining > timedelta(0) else None


def log_attempt(
    uow: ConnectedUnitOfWork, user: User, address: str, reason: str, request_id: str | None
) -> None:
    """Log an authentication attempt of a signed-in user re-proving who they are (a new
    API token, a password change): it counts towards the same delays as sign-in."""
    record_attempt(
        uow.connection,
        LoginAttempt(
            occurred_at=uow.now(),
            email=user.email,
            address=address,
            succeeded=False,
            reason=reason,
            clinic_id=user.clinic_id,
            user_id=user.id,
            request_id=request_id,
        ),
    )


def _matching(candidates: list[Account], password: str) -> Account | None:
    """The account whose password this is (each clinic may have an account with the same
    email); the hash is computed even when there is no account (no timing hint)."""
    if not candidates:
        verify_password(password, None)
        return None
    for account in candidates:
        if verify_password(password, account.password_hash):
            return account
    return None


@action(
    None,
    AuditAction.LOGIN_FAILED,
    AuditAction.LOGIN_PASSWORD_ACCEPTED,
    AuditAction.LOGIN_SUCCEEDED,
    unauthenticated="authenticates: nobody is signed in yet",
)
def sign_in(
    uow: ConnectedUnitOfWork, email: str, password: str, *, address: str, request_id: str | None
) -> SignIn:
    """Check a password, slowed down per account+address and per address (progressive
    delays, persisted in the sign-in log; nobody is locked out of their account by
    someone else's guesses); on success open a web session, pending the second factor
    when the user enrolled one or the clinic requires it."""
    email = email.strip().lower()  # the password is used exactly as typed
    # The password is checked before the write transaction: the hash is slow on purpose
    # (argon2), and SQLite has one write lock for the whole clinic. The transaction then
    # confirms the hash it was checked against is still the account's.
    with uow.engine.connect() as conn:
        candidates = accounts_by_email(conn, email)
    matched = _matching(candidates, password)
    with uow:
        waiting = password_wait(uow, email, address)
        target = matched or (candidates[0] if len(candidates) == 1 else None)
        user = uow.get(User, target.user_id, target.clinic_id) if target else None
        if waiting > timedelta(0):
            reason = "throttled"
        elif matched is None or user is None or user.password_hash != matched.password_hash:
            reason = "bad_password" if candidates else "unknown_account"
        elif not user.is_active:
            reason = "inactive_account"
        else:
            reason = "ok"
        if reason != "ok" or user is None:
            _log(
                uow,
                email,
                address,
                reason,
                user=user,
                action=AuditAction.LOGIN_FAILED,
                request_id=request_id,
            )
            uow.commit()
            if waiting > timedelta(0):
                return SignIn(
                    Outcome.REFUSED, locked=True, retry_after=throttle.retry_seconds(waiting)
                )
            return SignIn(Outcome.REFUSED)
        settings = security_settings(uow, user.clinic_id)
        if _confirmed_mfa(uow, user) is not None:
            outcome = Outcome.NEEDS_CODE
        elif settings.mfa_required:
            outcome = Outcome.NEEDS_ENROLMENT
        else:
            outcome = Outcome.SIGNED_IN
        session, token = _open_session(uow, user, settings, address, outcome)
        done = outcome is Outcome.SIGNED_IN
        _log(
            uow,
            email,
            address,
            "signed_in" if done else "password_accepted",
            user=user,
            action=AuditAction.LOGIN_SUCCEEDED if done else AuditAction.LOGIN_PASSWORD_ACCEPTED,
            request_id=request_id,
        )
        uow.commit()
    return SignIn(outcome, session, token)


def _open_session(
    uow: UnitOfWork, user: User, settings: SecuritySettings, address: str, outcome: Outcome
) -> tuple[WebSession, str]:
    now = uow.now()
    token = secrets.token_urlsafe(32)
    session = WebSession(
        id=uow.new_id(),
        clinic_id=user.clinic_id,
        user_id=user.id,
        token_hash=hash_api_token(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.absolute_timeout_hours),
        address=address[:64],
        mfa_pending=outcome is not Outcome.SIGNED_IN,
    )
    uow.add(session)
    return session, token


@action(
    None,
    AuditAction.LOGIN_FAILED,
    AuditAction.LOGIN_SUCCEEDED,
    AuditAction.MFA_RECOVERY_CODE_USED,
    unauthenticated="authenticates: nobody is signed in yet",
)
def verify_code(
    uow: ConnectedUnitOfWork,
    session: WebSession,
    cmd: MfaCode,
    *,
    address: str,
    request_id: str | None,
) -> CodeCheck:
    """Complete a pending sign-in with an authenticator code or a one-time recovery code;
    on success the session gets a new cookie value (the id is renewed once fully signed
    in). Wrong codes count on the account's second factor, from any address, and are
    not forgiven by a correct password: after a few, each next try waits longer; after
    `throttle.MFA_LOCK_AFTER` the second factor locks (the pending session is revoked)
    until an owner unlocks it."""
    with uow:
        user = uow.get(User, session.user_id, session.clinic_id)
        current = uow.get(WebSession, session.id, session.clinic_id)
        secret = _confirmed_mfa(uow, user) if user else None
        if user is None or current is None or secret is None or not current.mfa_pending:
            raise InvalidInput("no sign-in is waiting for a code", field="code")
        now = uow.now()
        refusal = code_refusal(uow, user)
        reason = refusal[0] if refusal else None
        used: RecoveryCode | None = None
        if reason is None:
            step = accepted_counter(secret.secret, cmd.code, now, secret.last_counter)
            if step is not None:
                uow.replace(secret, replace(secret, last_counter=step, version=secret.version + 1))
            else:
                used = _recovery_code(uow, user, cmd.code)
                if used is not None:
                    uow.replace(used, replace(used, used_at=now))
            reason = "signed_in" if step is not None or used is not None else "bad_code"
        ok = reason == "signed_in"
        token = None
        if ok:
            token = _renew(uow, current)
        elif reason == "mfa_locked":
            uow.replace(current, replace(current, revoked_at=now))
        action = AuditAction.LOGIN_SUCCEEDED if ok else AuditAction.LOGIN_FAILED
        _log(uow, user.email, address, reason, user=user, action=action, request_id=request_id)
        if used is not None:
            actor = Actor(user.id, user.clinic_id, source="web", request_id=request_id)
            audit(uow, actor, user.clinic_id, AuditAction.MFA_RECOVERY_CODE_USED, used)
        uow.commit()
    if token is not None:
        return CodeCheck(token)
    if reason == "bad_code":  # this failure may itself have started a delay or the lock
        with uow.engine.connect() as conn:
            count, _last = code_failures(conn, user.id)
        if count >= throttle.MFA_LOCK_AFTER:
            return CodeCheck(None, "mfa_locked")
        return CodeCheck(None, "bad_code")
    wait = refusal[1] if refusal else timedelta(0)
    return CodeCheck(None, reason, throttle.retry_seconds(wait) if wait else None)


def _renew(uow: UnitOfWork, pending: WebSession) -> str:
    """Finish a pending session under a new id and CSRF token (no session fixation)."""
    token = secrets.token_urlsafe(32)
    done = replace(
        pending,
        token_hash=hash_api_token(token),
        csrf_token=secrets.token_urlsafe(32),
        mfa_pending=False,
        last_seen_at=uow.now(),
    )
    uow.replace(pending, done)
    return token


@action(None, AuditAction.LOGIN_SUCCEEDED, unauthenticated="authenticates: nobody is signed in yet")
def complete_enrolled_sign_in(
    uow: ConnectedUnitOfWork, session: WebSession, *, address: str, request_id: str | None
) -> str | None:
    """After a pending user enrolled their second factor (`confirm_mfa_enrolment`, which
    checked its first code): finish the sign-in under a new session id."""
    with uow:
        user = uow.get(User, session.user_id, session.clinic_id)
        current = uow.get(WebSession, session.id, session.clinic_id)
        if user is None or current is None or not current.mfa_pending:
            return None
        if _confirmed_mfa(uow, user) is None:
            return None
        token = _renew(uow, current)
        _log(
            uow,
            user.email,
            address,
            "signed_in",
            user=user,
            action=AuditAction.LOGIN_SUCCEEDED,
            request_id=request_id,
        )
        uow.commit()
    return token


def _recovery_code(uow: UnitOfWork, user: User, code: str) -> RecoveryCode | None:
    wanted = hash_recovery_code(code)
    for rc in uow.list_by(RecoveryCode, user.clinic_id, user_id=user.id):
        if rc.used_at is None and secrets.compare_digest(rc.code_hash, wanted):
            return rc
    return None


def owner_issued_code(
    uow: UnitOfWork, user: User, purpose: AccountCodePurpose, plain: str | None, *, field: str
) -> AccountCode:
    """The unused, unexpired one-time code of `purpose` an owner issued to `user` whose
    plain text is `plain`; InvalidInput naming `field` otherwise."""
    if plain:
        wanted = hash_one_time_code(plain)
        now = uow.now()
        for code in uow.list_by(AccountCode, user.clinic_id, user_id=user.id, purpose=purpose):
            if (
                code.used_at is None
                and now < code.expires_at
                and secrets.compare_digest(code.code_hash, wanted)
            ):
                return code
    if purpose is AccountCodePurpose.MFA_ENROLMENT:
        message = (
            "your clinic requires two-factor sign-in: enter the enrolment code an owner "
            "gave you (ask an owner for a new one if it expired)"
        )
    else:
        message = "this reset code is not valid (wrong, used or expired); ask an owner"
    raise InvalidInput(message, field=field)


@action(Permission.USE_ACCOUNT, unaudited="an unconfirmed secret; audited when confirmed")
def begin_mfa_enrolment(
    uow: UnitOfWork, actor: Actor, cmd: BeginMfaEnrolment | None = None
) -> tuple[str, str]:
    """A new TOTP secret for the acting user: (secret, otpauth URI). It becomes active
    once confirmed with a first code; an active one cannot be replaced this way. Once the
    clinic requires two-factor sign-in, an account without a second factor needs the
    enrolment code an owner issued (the password alone no longer enrols a device)."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        existing = uow.list_by(MfaSecret, user.clinic_id, user_id=user.id)
        if existing and existing[0].confirmed_at is not None:
            raise RecordLocked("two-factor sign-in is already set up for this account")
        if security_settings(uow, user.clinic_id).mfa_required:
            plain = cmd.enrolment_code if cmd else None
            owner_issued_code(
                uow, user, AccountCodePurpose.MFA_ENROLMENT, plain, field="enrolment_code"
            )
        secret = new_secret()
        if existing:
            old = existing[0]
            uow.replace(old, replace(old, secret=secret, version=old.version + 1))
        else:
            uow.add(
                MfaSecret(
                    id=uow.new_id(),
                    clinic_id=user.clinic_id,
                    user_id=user.id,
                    secret=secret,
                    created_at=uow.now(),
                )
            )
        uow.commit()
    return secret, provisioning_uri(secret, user.email)


@action(Permission.USE_ACCOUNT, AuditAction.MFA_ENROLLED)
def confirm_mfa_enrolment(uow: UnitOfWork, actor: Actor, cmd: MfaCode) -> list[str]:
    """Activate the acting user's TOTP secret with a first valid code; returns the
    one-time recovery codes (stored only hashed; shown this once). When the clinic
    requires two-factor sign-in, the owner's enrolment code is checked again and used up."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        found = uow.list_by(MfaSecret, user.clinic_id, user_id=user.id)
        if not found or found[0].confirmed_at is not None:
            raise InvalidInput("start enrolment first", field="code")
        secret, now = found[0], uow.now()
        enrolment: AccountCode | None = None
        if security_settings(uow, user.clinic_id).mfa_required:
            plain = cmd.enrolment_code if isinstance(cmd, ConfirmMfaEnrolment) else None
            enrolment = owner_issued_code(
                uow, user, AccountCodePurpose.MFA_ENROLMENT, plain, field="enrolment_code"
            )
        step = accepted_counter(secret.secret, cmd.code, now, secret.last_counter)
        if step is None:
            raise InvalidInput("that code is not valid now; check the device's clock", field="code")
        if enrolment is not None:
            uow.replace(enrolment, replace(enrolment, used_at=now))
        confirmed = replace(secret, confirmed_at=now, last_counter=step, version=secret.version + 1)
        uow.replace(secret, confirmed)
        codes = add_recovery_codes(uow, user)
        audit(uow, actor, user.clinic_id, AuditAction.MFA_ENROLLED, confirmed)
        uow.commit()
    return codes


def add_recovery_codes(uow: UnitOfWork, user: User) -> list[str]:
    """Stage a new set of one-time recovery codes for `user`; returns them in clear."""
    codes = new_recovery_codes()
    for code in codes:
        uow.add(
            RecoveryCode(
                id=uow.new_id(),
                clinic_id=user.clinic_id,
                user_id=user.id,
                code_hash=hash_recovery_code(code),
                created_at=uow.now(),
            )
        )
    return codes


@action(None, unauthenticated="the session's own cookie", unaudited="last seen time")
def touch_session(uow: UnitOfWork, session: WebSession) -> None:
    """Note activity on a web session (at most once a minute: it costs a write)."""
    with uow:
        now = uow.now()
        current = uow.get(WebSession, session.id, session.clinic_id)
        if current is not None and now - current.last_seen_at >= TOUCH_EVERY:
            uow.replace(current, replace(current, last_seen_at=now))
            uow.commit()


@action(None, AuditAction.SIGNED_OUT, unauthenticated="the session's own cookie signs it out")
def end_session(uow: UnitOfWork, session: WebSession, *, reason: str | None = None) -> None:
    """Revoke one web session: signing out, or an expired one (`reason`, not audited)."""
    with uow:
        current = uow.get(WebSession, session.id, session.clinic_id)
        if current is None or current.revoked_at is not None:
            return
        uow.replace(current, replace(current, revoked_at=uow.now()))
        if reason is None:
            actor = Actor(session.user_id, session.clinic_id, source="web")
            audit(uow, actor, session.clinic_id, AuditAction.SIGNED_OUT, current)
        uow.commit()


@action(Permission.USE_ACCOUNT, AuditAction.SIGNED_OUT_EVERYWHERE)
def sign_out_everywhere(uow: UnitOfWork, actor: Actor) -> tuple[int, int]:
    """Revoke every web session and every API token of the acting user; returns how many
    (sessions, tokens) were still open."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        sessions, tokens = revoke_credentials(uow, user)
        audit(uow, actor, user.clinic_id, AuditAction.SIGNED_OUT_EVERYWHERE, user)
        uow.commit()
    return sessions, tokens


def revoke_credentials(
    uow: UnitOfWork, user: User, *, keep_session: UUID | None = None
) -> tuple[int, int]:
    """Stage the revocation of `user`'s open web sessions (but `keep_session`) and API
    tokens; returns how many of each."""
    now = uow.now()
    open_sessions = [
        s
        for s in uow.list_by(WebSession, user.clinic_id, user_id=user.id)
        if s.revoked_at is None and s.id != keep_session
    ]
    for s in open_sessions:
        uow.replace(s, replace(s, revoked_at=now))
    open_tokens = [
        t for t in uow.list_by(ApiToken, user.clinic_id, user_id=user.id) if t.revoked_at is None
    ]
    for t in open_tokens:
        uow.replace(t, replace(t, revoked_at=now))
    return len(open_sessions), len(open_tokens)


@action(Permission.MANAGE_SECURITY, AuditAction.SECURITY_SETTINGS_CHANGED)
def update_security_settings(
    uow: UnitOfWork, actor: Actor, cmd: UpdateSecuritySettings, *, expected_version: int
) -> SecuritySettings:
    """Change the clinic's security policy (owner only)."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_SECURITY)
        current = uow.get(SecuritySettings, actor.clinic_id, actor.clinic_id)
        before = current or SecuritySettings(id=actor.clinic_id, clinic_id=actor.clinic_id)
        if before.version != expected_version:
            raise StaleVersion(
                f"the settings are at version {before.version}; reload them", field="If-Match"
            )
        after = replace(before, **cmd.model_dump(), version=before.version + 1)
        if current is None:
            uow.add(after)
        else:
            uow.replace(current, after)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.SECURITY_SETTINGS_CHANGED,
            after,
            before=[before],
            after=[after],
        )
        uow.commit()
    return after


@action(Permission.EMERGENCY_ACCESS, AuditAction.EMERGENCY_ACCESS_GRANTED)
def grant_emergency_access(
    uow: UnitOfWork, actor: Actor, patient_id: UUID, cmd: RequestEmergencyAccess
) -> EmergencyAccess:
    """Break the glass: a licensed clinician opens a patient's record outside their
    normal access, for a limited time, giving a reason. The audit event names the
    patient, and every owner of the clinic gets a notification to review it."""
    with uow:
        user = authorize(uow, actor, Permission.EMERGENCY_ACCESS)
        patient = load(uow, Patient, patient_id, actor, field="patient_id")
        settings = security_settings(uow, actor.clinic_id)
        now = uow.now()
        grant = EmergencyAccess(
            id=uow.new_id(),
            clinic_id=actor.clinic_id,
            user_id=user.id,
            patient_id=patient.id,
            reason=cmd.reason,
            granted_at=now,
            expires_at=now + timedelta(minutes=settings.emergency_access_minutes),
        )
        uow.add(grant)
        for owner in uow.list_by(User, actor.clinic_id, role=Role.OWNER, is_active=True):
            notify(
                uow,
                actor.clinic_id,
                owner.id,
                "emergency_access",
                grant.id,
                f"{user.full_name} used emergency access to patient {patient.mrn} "
                f"until {grant.expires_at:%Y-%m-%d %H:%M} UTC: {cmd.reason}",
            )
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.EMERGENCY_ACCESS_GRANTED,
            grant,
            after=[grant],
            patient_id=patient.id,
        )
        uow.commit()
    return grant
