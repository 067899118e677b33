"""Secrets at rest: values the server must read back (TOTP secrets) are sealed with
AES-256-GCM (`cryptography`) under a key kept outside the database, so a copy of the
database or of a backup does not give them away.

A sealed value reads `sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`; the
column it belongs to is the associated data, so a value cannot be moved to another kind
of column. The key id (a keyed digest of the key, not the key) names the key that
sealed it: several keys may be configured, the first seals and any opens (rotation).

The keys are chosen once per process by the wiring (`bootstrap.configure_sealing`, from
the `NEEDLEPOINT_SEALING_KEY` setting or the `sealing.key` file of the data directory);
the column type `adapters.db.types.SealedText` seals and opens through them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SealingError(RuntimeError):
    """A value that cannot be sealed or opened (no key, wrong key, altered value)."""


def new_key_text() -> str:
    """A fresh random key, as the text kept in a key file or a setting."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def parse_key(text: str) -> bytes:
    """A key from its text (base64url of 32 random bytes, padding optional)."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SealingError("a key must be base64url text of 32 random bytes") from exc
    if len(raw) != KEY_BYTES:
        raise SealingError(f"a key must be 32 bytes (this one is {len(raw)})")
    return raw


def key_id(key: bytes, purpose: bytes = b"needlepoint sealing key id") -> str:
    """A short public name of `key` (a keyed digest: it does not reveal the key)."""
    return hmac.new(key, purpose, hashlib.sha256).hexdigest()[:16]


class Sealer:
    """Seals with the first key; opens with whichever key sealed the value."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SealingError("at least one sealing key is needed")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self._current = key_id(keys[0])

    @property
    def current_key_id(self) -> str:
        return self._current

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        box = self._keys[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + box).decode().rstrip("=")
        return f"{PREFIX}{self._current}:{body}"

    def open(self, sealed: str, context: str) -> str:
        if not is_sealed(sealed):
            raise SealingError(f"{context} holds a value that is not sealed")
        kid, _, body = sealed[len(PREFIX) :].partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise SealingError(
                f"{context} was sealed with key {kid}, which is not configured "
                f"(configured: {', '.join(self._keys)})"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealingError(f"{context} holds a sealed value that was altered") from exc


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


_sealer: Sealer | None = None


def configure(keys: list[bytes], *, replace: bool = False) -> Sealer:
    """Choose this process's sealing keys (the first configuration wins unless
    `replace`): a process serves one deployment."""
    global _sealer
    if _sealer is None or replace:
        _sealer = Sealer(keys)
    return _sealer


def is_configured() -> bool:
    return _sealer is not None


def current() -> Sealer:
    """This process's sealer; an error naming the setting when none was configured."""
    if _sealer is None:
        raise SealingError(
            "no sealing key configured (NEEDLEPOINT_SEALING_KEY, or the data directory's "
            "sealing.key made on first use by `needlepoint` commands)"
        )
    return _sealer
