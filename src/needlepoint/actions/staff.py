"""The account lifecycle: what an owner does to the clinic's accounts (deactivate and
reactivate, reset a password, reset a second factor, issue an enrolment code, lift
sign-in delays, revoke API tokens: `clinics.revoke_api_token`) and what each user does
to their own (change the password, re-issue recovery codes, create and revoke their own
API tokens, set a new password with an owner's reset code).

Every change is one audited action. Whatever may mean a credential was exposed (a
deactivation, a password or second-factor reset) revokes the account's web sessions and
API tokens in the same transaction. Owners hand codes to users out of band: the code is
shown once, stored only as its hash, valid for `CODE_LIFETIME`, and any earlier unused
code of the same purpose is voided."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from needlepoint.actions.accounts import (
    _confirmed_mfa,
    add_recovery_codes,
    code_refusal,
    log_attempt,
    owner_issued_code,
    password_wait,
    revoke_credentials,
    security_settings,
)
from needlepoint.actions.clinics import check_password, token_lifetime
from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.adapters.db.logins import LoginAttempt, code_holder, record_attempt
from needlepoint.adapters.passwords import (
    hash_api_token,
    hash_one_time_code,
    hash_password,
    new_api_token,
    new_one_time_code,
    verify_password,
)
from needlepoint.adapters.totp import accepted_counter
from needlepoint.domain.commands import (
    ChangePassword,
    CompletePasswordReset,
    CreateApiToken,
    MfaCode,
    UpdateStaffMember,
)
from needlepoint.domain.entities import (
    AccountCode,
    ApiToken,
    MfaSecret,
    RecoveryCode,
    User,
    WebSession,
)
from needlepoint.domain.enums import AccountCodePurpose, AuditAction, Role
from needlepoint.domain.errors import InvalidInput, NotFound, RecordLocked
from needlepoint.domain.permissions import Permission
from needlepoint.domain.versions import check_version
from needlepoint.ports import ConnectedUnitOfWork, UnitOfWork

CODE_LIFETIME = timedelta(days=3)


def _public(user: User) -> User:
    """The user without the password hash, for digests that outlive the credential."""
    return replace(user, password_hash=None)


def _member(uow: UnitOfWork, actor: Actor, user_id: UUID, *, not_self: str | None) -> User:
    """The account `user_id` of the actor's clinic (NotFound otherwise); `not_self`: the
    refusal when an owner aims the change at their own account."""
    user = load(uow, User, user_id, actor, field="user_id")
    if not_self is not None and user.id == actor.user_id:
        raise InvalidInput(not_self, field="user_id")
    return user


def _issue_code(
    uow: UnitOfWork, actor: Actor, user: User, purpose: AccountCodePurpose
) -> tuple[AccountCode, str]:
    """Stage a new one-time code for `user` (voiding the earlier unused ones of the same
    purpose); returns it with its plain text (shown once)."""
    now = uow.now()
    for old in uow.list_by(AccountCode, user.clinic_id, user_id=user.id, purpose=purpose):
        if old.used_at is None:
            uow.replace(old, replace(old, used_at=now))
    plain = new_one_time_code()
    code = AccountCode(
        id=uow.new_id(),
        clinic_id=user.clinic_id,
        user_id=user.id,
        purpose=purpose,
        code_hash=hash_one_time_code(plain),
        issued_by=actor.user_id,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    uow.add(code)
    return code, plain


def _changed(uow: UnitOfWork, user: User, **changes: object) -> User:
    after = replace(user, **changes, version=user.version + 1)  # type: ignore[arg-type]
    uow.replace(user, after)
    return after


# -- what an owner does to the clinic's accounts --------------------------------------


@action(Permission.MANAGE_ACCOUNTS, AuditAction.USER_DEACTIVATED)
def deactivate_user(uow: UnitOfWork, actor: Actor, user_id: UUID) -> User:
    """Deactivate an account (owner): it can no longer sign in, its web sessions and API
    tokens are revoked at once. Its records stay, attributed to it. An owner cannot
    deactivate their own account, nor the clinic's last active owner."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(uow, actor, user_id, not_self="you cannot deactivate your own account")
        if not user.is_active:
            uow.commit()
            return user
        if user.role is Role.OWNER:
            owners = uow.list_by(User, actor.clinic_id, role=Role.OWNER, is_active=True)
            if len(owners) <= 1:
                raise InvalidInput("the clinic's last owner cannot be deactivated", field="user_id")
        after = _changed(uow, user, is_active=False)
        revoke_credentials(uow, user)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.USER_DEACTIVATED,
            after,
            before=[_public(user)],
            after=[_public(after)],
        )
        uow.commit()
    return after


@action(Permission.MANAGE_ACCOUNTS, AuditAction.USER_UPDATED)
def update_staff_member(uow: UnitOfWork, actor: Actor, cmd: UpdateStaffMember) -> User:
    """Change a colleague's name, role or licence (owner). An owner does not change their
    own role, and the clinic keeps at least one active owner. A role change revokes the
    account's sessions and API tokens (they carried the old role's rights)."""
    changes = cmd.model_dump(exclude={"user_id", "expected_version"}, exclude_unset=True)
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(uow, actor, cmd.user_id, not_self=None)
        check_version(user, cmd.expected_version)
        new_role = changes.get("role", user.role)
        if new_role is not user.role:
            if user.id == actor.user_id:
                raise InvalidInput("you cannot change your own role", field="role")
            if user.role is Role.OWNER:
                owners = uow.list_by(User, actor.clinic_id, role=Role.OWNER, is_active=True)
                if len(owners) <= 1:
                    raise InvalidInput("the clinic needs at least one owner", field="role")
        after = _changed(uow, user, **changes)
        if new_role is not user.role:
            revoke_credentials(uow, user)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.USER_UPDATED,
            after,
            before=[_public(user)],
            after=[_public(after)],
        )
        uow.commit()
    return after


@action(Permission.MANAGE_ACCOUNTS, AuditAction.USER_REACTIVATED)
def reactivate_user(uow: UnitOfWork, actor: Actor, user_id: UUID) -> User:
    """Let a deactivated account sign in again (owner). Its old sessions and tokens stay
    revoked: the user signs in afresh."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(uow, actor, user_id, not_self=None)
        if user.is_active:
            uow.commit()
            return user
        after = _changed(uow, user, is_active=True)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.USER_REACTIVATED,
            after,
            before=[_public(user)],
            after=[_public(after)],
        )
        uow.commit()
    return after


@action(Permission.MANAGE_ACCOUNTS, AuditAction.PASSWORD_RESET_ISSUED)
def reset_password(uow: UnitOfWork, actor: Actor, user_id: UUID) -> tuple[User, str]:
    """Owner-initiated password reset: the account's password stops working at once, its
    sessions and tokens are revoked, and a one-time reset code (returned, shown once) lets
    the user choose a new password (`complete_password_reset`). Owners change their own
    password instead."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(
            uow, actor, user_id, not_self="change your own password instead of resetting it"
        )
        after = _changed(uow, user, password_hash=None)
        revoke_credentials(uow, user)
        code, plain = _issue_code(uow, actor, user, AccountCodePurpose.PASSWORD_RESET)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.PASSWORD_RESET_ISSUED,
            after,
            after=[_public(after), code],
        )
        uow.commit()
    return after, plain


@action(Permission.MANAGE_ACCOUNTS, AuditAction.MFA_RESET)
def reset_mfa(uow: UnitOfWork, actor: Actor, user_id: UUID) -> tuple[User, str]:
    """Remove an account's second factor (a lost phone): its authenticator key and
    recovery codes are deleted, its sessions and tokens revoked, its second-factor lock
    lifted, and an enrolment code returned (shown once) for setting up a new device."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(uow, actor, user_id, not_self=None)
        removed: list[MfaSecret | RecoveryCode] = []
        removed += uow.list_by(MfaSecret, user.clinic_id, user_id=user.id)
        removed += uow.list_by(RecoveryCode, user.clinic_id, user_id=user.id)
        for record in removed:
            uow.delete(record)
        after = _changed(uow, user, sign_in_reset_at=uow.now())
        revoke_credentials(uow, user)
        code, plain = _issue_code(uow, actor, user, AccountCodePurpose.MFA_ENROLMENT)
        audit(
            uow,
            actor,
            actor.clinic_id,
            AuditAction.MFA_RESET,
            after,
            before=[r for r in removed if isinstance(r, MfaSecret)],
            after=[_public(after), code],
        )
        uow.commit()
    return after, plain


@action(Permission.MANAGE_ACCOUNTS, AuditAction.MFA_ENROLMENT_CODE_ISSUED)
def issue_enrolment_code(uow: UnitOfWork, actor: Actor, user_id: UUID) -> tuple[AccountCode, str]:
    """A one-time code (returned, shown once) with which the user sets up two-factor
    sign-in once the clinic requires it. An owner may issue one to themselves."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(uow, actor, user_id, not_self=None)
        if _confirmed_mfa(uow, user) is not None:
            raise RecordLocked(
                "two-factor sign-in is already set up for this account; reset it first"
            )
        code, plain = _issue_code(uow, actor, user, AccountCodePurpose.MFA_ENROLMENT)
        audit(
            uow, actor, actor.clinic_id, AuditAction.MFA_ENROLMENT_CODE_ISSUED, code, after=[code]
        )
        uow.commit()
    return code, plain


@action(Permission.MANAGE_ACCOUNTS, AuditAction.SIGN_IN_UNLOCKED)
def unlock_sign_in(uow: UnitOfWork, actor: Actor, user_id: UUID) -> User:
    """Lift an account's sign-in delays and its second-factor lock (owner): failures
    before now no longer count for it."""
    with uow:
        authorize(uow, actor, Permission.MANAGE_ACCOUNTS)
        user = _member(uow, actor, user_id, not_self=None)
        after = _changed(uow, user, sign_in_reset_at=uow.now())
        audit(uow, actor, actor.clinic_id, AuditAction.SIGN_IN_UNLOCKED, after)
        uow.commit()
    return after


# -- what each user does to their own account ------------------------------------------


def _prove(
    uow: ConnectedUnitOfWork,
    actor: Actor,
    user: User,
    password: str,
    code: str | None,
    *,
    code_needed: bool,
) -> str | None:
    """Check the account's password (and authenticator code when `code_needed`) inside
    the action's transaction, under the same delays as sign-in. Returns why it failed
    (the reason to log), or None."""
    address = actor.source_address or "unknown"
    if password_wait(uow, user.email, address) > timedelta(0):
        return "throttled"
    if not verify_password(password, user.password_hash):
        return "bad_password"
    if not code_needed:
        return None
    secret = _confirmed_mfa(uow, user)
    if secret is None:
        return "mfa_not_set_up"
    if code_refusal(uow, user) is not None:
        return "mfa_locked"
    step = accepted_counter(secret.secret, code or "", uow.now(), secret.last_counter)
    if step is None:
        return "bad_code"
    uow.replace(secret, replace(secret, last_counter=step, version=secret.version + 1))
    return None


_PROOF_MESSAGES = {
    "throttled": ("password", "too many failed attempts from here: wait a few minutes"),
    "bad_password": ("password", "the password is not right"),
    "mfa_not_set_up": ("code", "your clinic requires two-factor sign-in: set it up first"),
    "mfa_locked": ("code", "two-factor sign-in is paused for this account; ask an owner"),
    "bad_code": ("code", "that authenticator code is not valid now"),
}


def _refuse_proof(
    uow: ConnectedUnitOfWork,
    actor: Actor,
    user: User,
    reason: str,
    *,
    field: str | None = None,
    message: str | None = None,
) -> InvalidInput:
    """Log a failed proof (it counts towards the delays as a failed sign-in does), commit
    that alone, and return the refusal to raise."""
    if reason in ("bad_password", "bad_code"):
        log_attempt(uow, user, actor.source_address or "unknown", reason, actor.request_id)
    uow.commit()
    default_field, default_message = _PROOF_MESSAGES[reason]
    return InvalidInput(message or default_message, field=field or default_field)


@action(Permission.USE_ACCOUNT, AuditAction.API_TOKEN_ISSUED)
def create_api_token(
    uow: ConnectedUnitOfWork, actor: Actor, cmd: CreateApiToken
) -> tuple[ApiToken, str]:
    """A new API token for the acting user themself (nobody mints tokens for someone
    else), proven by their password, and by an authenticator code when they have a
    second factor or the clinic requires one. It expires after the clinic's
    `api_token_days`; the plain token is returned once."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        needs_code = (
            security_settings(uow, user.clinic_id).mfa_required
            or _confirmed_mfa(uow, user) is not None
        )
        failed = _prove(uow, actor, user, cmd.password, cmd.code, code_needed=needs_code)
        if failed is not None:
            raise _refuse_proof(uow, actor, user, failed)
        plain = new_api_token()
        now = uow.now()
        token = ApiToken(
            id=uow.new_id(),
            clinic_id=user.clinic_id,
            user_id=user.id,
            token_hash=hash_api_token(plain),
            label=cmd.label,
            created_at=now,
            scopes="read" if cmd.read_only else "read write",
            expires_at=now + token_lifetime(uow, user.clinic_id),
        )
        uow.add(token)
        audit(uow, actor, actor.clinic_id, AuditAction.API_TOKEN_ISSUED, token, after=[token])
        uow.commit()
    return token, plain


@action(Permission.USE_ACCOUNT, AuditAction.API_TOKEN_REVOKED)
def revoke_own_api_token(uow: UnitOfWork, actor: Actor, token_id: UUID) -> ApiToken:
    """Revoke one of the acting user's own API tokens; it stops working at once."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        token = uow.get(ApiToken, token_id, actor.clinic_id)
        if token is None or token.user_id != user.id:
            raise NotFound(f"no token {token_id} of yours", field="token_id")
        if token.revoked_at is None:
            revoked = replace(token, revoked_at=uow.now())
            uow.replace(token, revoked)
            audit(
                uow,
                actor,
                actor.clinic_id,
                AuditAction.API_TOKEN_REVOKED,
                revoked,
                before=[token],
                after=[revoked],
            )
            token = revoked
        uow.commit()
    return token


@action(Permission.USE_ACCOUNT, AuditAction.PASSWORD_CHANGED)
def change_password(
    uow: ConnectedUnitOfWork, actor: Actor, cmd: ChangePassword, *, keep_session: UUID | None = None
) -> int:
    """Change the acting user's own password, proven by the current one (under the same
    delays as sign-in). Every other web session of the user is signed out (`keep_session`:
    the browser that made the change stays in); returns how many were. API tokens stay
    (sign out everywhere revokes them too)."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        failed = _prove(uow, actor, user, cmd.current_password, None, code_needed=False)
        if failed is not None:
            message = "the current password is not right" if failed == "bad_password" else None
            raise _refuse_proof(uow, actor, user, failed, field="current_password", message=message)
        check_password(cmd.new_password, field="new_password", email=user.email)
        if cmd.new_password == cmd.current_password:
            raise InvalidInput(
                "choose a password different from the current one", field="new_password"
            )
        after = _changed(uow, user, password_hash=hash_password(cmd.new_password))
        now = uow.now()
        others = [
            s
            for s in uow.list_by(WebSession, user.clinic_id, user_id=user.id)
            if s.revoked_at is None and s.id != keep_session
        ]
        for s in others:
            uow.replace(s, replace(s, revoked_at=now))
        audit(uow, actor, actor.clinic_id, AuditAction.PASSWORD_CHANGED, after)
        uow.commit()
    return len(others)


@action(Permission.USE_ACCOUNT, AuditAction.MFA_RECOVERY_CODES_REISSUED)
def reissue_recovery_codes(uow: ConnectedUnitOfWork, actor: Actor, cmd: MfaCode) -> list[str]:
    """A new set of recovery codes for the acting user, proven by a current authenticator
    code (the existing factor); every unused old code stops working. Returns the new
    codes (shown once)."""
    with uow:
        user = authorize(uow, actor, Permission.USE_ACCOUNT)
        secret = _confirmed_mfa(uow, user)
        if secret is None:
            raise InvalidInput("two-factor sign-in is not set up for this account", field="code")
        if code_refusal(uow, user) is not None:
            raise _refuse_proof(uow, actor, user, "mfa_locked")
        now = uow.now()
        step = accepted_counter(secret.secret, cmd.code, now, secret.last_counter)
        if step is None:
            raise _refuse_proof(uow, actor, user, "bad_code")
        uow.replace(secret, replace(secret, last_counter=step, version=secret.version + 1))
        for old in uow.list_by(RecoveryCode, user.clinic_id, user_id=user.id):
            if old.used_at is None:
                uow.replace(old, replace(old, used_at=now))
        codes = add_recovery_codes(uow, user)
        audit(uow, actor, actor.clinic_id, AuditAction.MFA_RECOVERY_CODES_REISSUED, user)
        uow.commit()
    return codes


@action(
    None,
    AuditAction.PASSWORD_RESET_COMPLETED,
    unauthenticated="the owner's one-time reset code proves who it is",
)
def complete_password_reset(
    uow: ConnectedUnitOfWork, cmd: CompletePasswordReset, *, address: str, request_id: str | None
) -> User:
    """Set a new password with the one-time code an owner issued (`reset_password`).
    The code works once, for its account's email only, until it expires; a wrong one is
    logged like a failed sign-in and counts towards the address's delays."""
    email = cmd.email.strip().lower()
    wanted = hash_one_time_code(cmd.reset_code)
    with uow:
        holder = code_holder(uow.connection, wanted)
        user = uow.get(User, *holder) if holder else None
        waiting = password_wait(uow, email, address) > timedelta(0)
        if user is None or user.email != email or not user.is_active or waiting:
            record_attempt(
                uow.connection,
                LoginAttempt(
                    occurred_at=uow.now(),
                    email=email,
                    address=address,
                    succeeded=False,
                    reason="throttled" if waiting else "bad_password",
                    request_id=request_id,
                ),
            )
            uow.commit()
            raise InvalidInput(
                "this reset code is not valid for this email (wrong, used or expired); "
                "ask an owner for a new one",
                field="reset_code",
            )
        code = owner_issued_code(
            uow, user, AccountCodePurpose.PASSWORD_RESET, cmd.reset_code, field="reset_code"
        )
        check_password(cmd.new_password, field="new_password", email=user.email)
        now = uow.now()
        uow.replace(code, replace(code, used_at=now))
        after = _changed(
            uow, user, password_hash=hash_password(cmd.new_password), sign_in_reset_at=now
        )
        actor = Actor(user.id, user.clinic_id, source="web", request_id=request_id)
        audit(uow, actor, user.clinic_id, AuditAction.PASSWORD_RESET_COMPLETED, after)
        uow.commit()
    return after
