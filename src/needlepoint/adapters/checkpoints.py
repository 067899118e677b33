"""Signed checkpoints of the audit trail, kept outside the database.

Whoever can write the database can rewrite a hash chain from its first event, cut its
end off, or delete a clinic's chain: the chain alone then still verifies. A checkpoint
records, for every clinic, the place and hash of the chain's newest event (and the time),
signed with an Ed25519 key that the web server never holds; `needlepoint audit verify`
checks the database against the newest checkpoint, so that such a rewrite shows.

The checkpoint log is a text file, one JSON checkpoint per line, appended to (never
rewritten; created 0600). Each line names the SHA-256 of the line before it, so a line
removed or changed in the middle breaks the log; each line is signed, so a forged line
needs the private key. Keep the log where the database's administrators cannot write
(another account, a WORM bucket, `chattr +a`) and the private key with the operator.

    {"chains": {"<clinic id>": {"hash": "…", "seq": 42}}, "events": 42,
     "format": "needlepoint-audit-checkpoint/1", "key_id": "…", "previous": "…",
     "signature": "<base64 Ed25519 over the line without its signature>",
     "written_at": "2026-11-27T02:15:00Z"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

FORMAT = "needlepoint-audit-checkpoint/1"
FIRST = "0" * 64
"""The `previous` of a log's first checkpoint."""


class CheckpointError(Exception):
    """A key or checkpoint log that cannot be used or trusted; the message says why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One verified line of a checkpoint log."""

    line: int
    written_at: datetime
    chains: dict[UUID, tuple[int, str]]
    """Each clinic's chain head when the checkpoint was written: (seq, hash)."""
    events: int
    digest: str
    """SHA-256 of the line as written: the next line's `previous`."""


# -- keys ------------------------------------------------------------------------------------


def public_key_path(key: Path) -> Path:
    """Where `generate_key` puts the public half of `key`."""
    return key.with_name(key.name + ".pub")


def generate_key(path: Path) -> tuple[Path, Path]:
    """A new Ed25519 key: the private key at `path` (PEM, created 0600, never over an
    existing file) and the public key beside it (`<path>.pub`). Returns both paths."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CheckpointError(f"{path} exists already: not overwriting a key") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    pub = public_key_path(path)
    pub.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path, pub


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in `path` (PEM, as `generate_key` writes it)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint signing key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The verifying key in `path`: a public key PEM (or the private key, whose public
    half is taken)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint key {path}: {exc}") from exc
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a key (the first 16 hex digits of its SHA-256)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- the log ---------------------------------------------------------------------------------


def _signed_bytes(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in payload.items() if k != "signature"}, option=_SORTED)


_SORTED = orjson.OPT_SORT_KEYS


def read_checkpoints(log: Path, public: Ed25519PublicKey) -> list[Checkpoint]:
    """Every checkpoint in the log, each one's signature and link to the line before it
    checked; raises `CheckpointError` naming the first line that does not verify."""
    try:
        lines = log.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint log {log}: {exc}") from exc
    found: list[Checkpoint] = []
    previous = FIRST
    for number, line in enumerate(lines, start=1):
        where = f"checkpoint log {log}, line {number}"
        try:
            payload = orjson.loads(line)
            signature = base64.b64decode(payload["signature"], validate=True)
            public.verify(signature, _signed_bytes(payload))
        except InvalidSignature as exc:
            raise CheckpointError(
                f"{where}: the signature does not verify with this key (altered or forged)"
            ) from exc
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
            raise CheckpointError(f"{where}: not a signed checkpoint") from exc
        try:
            if payload["format"] != FORMAT:
                raise CheckpointError(f"{where}: unknown format {payload['format']!r}")
            if payload["previous"] != previous:
                raise CheckpointError(
                    f"{where}: does not follow the line before it (a checkpoint was removed "
                    "or changed)"
                )
            chains = {
                UUID(clinic): (int(head["seq"]), str(head["hash"]))
                for clinic, head in payload["chains"].items()
            }
            checkpoint = Checkpoint(
                line=number,
                written_at=datetime.fromisoformat(payload["written_at"]),
                chains=chains,
                events=int(payload["events"]),
                digest=hashlib.sha256(line).hexdigest(),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{where}: not a checkpoint ({exc})") from exc
        found.append(checkpoint)
        previous = checkpoint.digest
    return found


def latest_checkpoint(log: Path, public: Ed25519PublicKey) -> Checkpoint | None:
    """The newest checkpoint of a verified log (None for an empty or missing log)."""
    checkpoints = read_checkpoints(log, public)
    return checkpoints[-1] if checkpoints else None


def append_checkpoint(
    log: Path,
    key: Ed25519PrivateKey,
    chains: Mapping[UUID, tuple[int, str]],
    *,
    events: int,
    now: datetime | None = None,
) -> Checkpoint:
    """Sign the chain heads and append them to the log (created 0600; the lines already
    there are verified first, and the new one links to the last)."""
    existing = read_checkpoints(log, key.public_key())
    written_at = (now or datetime.now(UTC)).astimezone(UTC)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "written_at": written_at.isoformat().replace("+00:00", "Z"),
        "previous": existing[-1].digest if existing else FIRST,
        "key_id": key_id(key.public_key()),
        "events": events,
        "chains": {
            str(clinic): {"seq": seq, "hash": head}
            for clinic, (seq, head) in sorted(chains.items(), key=lambda kv: str(kv[0]))
        },
    }
    payload["signature"] = base64.b64encode(key.sign(_signed_bytes(payload))).decode()
    line = orjson.dumps(payload, option=_SORTED)
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return Checkpoint(
        line=len(existing) + 1,
        written_at=written_at,
        chains={c: (s, h) for c, (s, h) in chains.items()},
        events=events,
        digest=hashlib.sha256(line).hexdigest(),
    )
