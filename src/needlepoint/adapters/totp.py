"""Time-based one-time passwords (RFC 6238, through pyotp) and MFA recovery codes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp

ISSUER = "Needlepoint"
STEP_SECONDS = 30
RECOVERY_CODES = 10


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The `otpauth://` URI an authenticator app imports (usually shown as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def code_at(secret: str, when: datetime) -> str:
    """The code an authenticator shows at `when` (for tests and the demo)."""
    return pyotp.TOTP(secret).at(when)


def accepted_counter(
    secret: str, code: str, when: datetime, last_counter: int | None
) -> int | None:
    """The time step of `code` when it is valid at `when` (one step of clock drift either
    way) and newer than `last_counter`; None otherwise. Returning the step lets the
    caller refuse a replay of the same code."""
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(when.timestamp()) // STEP_SECONDS
    for step in (now_step - 1, now_step, now_step + 1):
        if secrets.compare_digest(totp.generate_otp(step), code) and (
            last_counter is None or step > last_counter
        ):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """One-time recovery codes, shown once: 10 codes of 80 random bits each."""
    return [
        "-".join(secrets.token_hex(5)[i : i + 5] for i in (0, 5)) for _ in range(RECOVERY_CODES)
    ]


def hash_recovery_code(code: str) -> str:
    """The stored form of a recovery code (random, so a fast hash suffices)."""
    return hashlib.sha256(code.strip().lower().replace(" ", "").encode()).hexdigest()
