"""Password and API-token hashing (argon2 through pwdlib; SHA-256 for random tokens)."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

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
