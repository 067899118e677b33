"""Password and API-token hashing (argon2 through pwdlib; SHA-256 for random tokens), and
the password policy."""

from __future__ import annotations

import gzip
import hashlib
import io
import secrets
from functools import cache
from importlib import resources

from pwdlib import PasswordHash


@cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    """An argon2 hash of `password`."""
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when `password` matches; always False for accounts without a password."""
    if not password_hash:
        _hasher().hash(password)  # same cost either way: no timing hint that the account exists
        return False
    return _hasher().verify(password, password_hash)


def new_api_token() -> str:
    """A fresh bearer token (shown once, stored only as its hash)."""
    return "np_" + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    """The stored form of a bearer token. Tokens are random, so a fast hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_one_time_code() -> str:
    """A one-time code an owner hands to a user (enrolment, password reset): 80 random
    bits as four groups of five letters and digits, easy to read out."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def hash_one_time_code(code: str) -> str:
    """The stored form of a one-time code (random, so a fast hash suffices); spaces,
    dashes and case do not matter."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(("needlepoint-code:" + normal).encode()).hexdigest()


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128  # NIST SP 800-63B: allow at least 64


@cache
def common_passwords() -> frozenset[str]:
    """The 20,000 most common passwords (lower-cased), shipped as package data.

    The list is Django's `common-passwords.txt.gz` (BSD-3-Clause, see
    `adapters/data/common-passwords.LICENSE`), itself made by Royce Williams from leaked
    password corpora: https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce"""
    data = resources.files("needlepoint.adapters").joinpath("data/common-passwords.txt.gz")
    with gzip.open(io.BytesIO(data.read_bytes()), "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why `password` may not be used, or None. NIST SP 800-63B / ASVS V2.1: length 8
    to 128 (every character counts, spaces included: nothing is stripped; no
    composition rules, no forced rotation), not one of the common passwords, and not
    the account's email (or the part before its @)."""
    if email:
        typed = password.strip().lower()
        address = email.strip().lower()
        if typed in (address, address.split("@", 1)[0]):
            return "a password may not be your email address"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"use at most {MAX_PASSWORD_LENGTH} characters"
    if password.lower() in common_passwords() or password.strip().lower() in common_passwords():
        return "this password is one of the most common ones; choose another"
    return None
