"""The encrypted backup format and sealed secrets, without a database: whatever is
changed in a backup file — a byte anywhere, its parts reordered, dropped, repeated, cut
off or extended — is refused, and so is another key or passphrase."""

from __future__ import annotations

import io
import json
import secrets
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlepoint.adapters import sealing
from needlepoint.adapters.db import backup as bk
from needlepoint.adapters.db.backup import BackupError, BackupKey

KEY = BackupKey(key=b"k" * 32)
OTHER_KEY = BackupKey(key=b"o" * 32)
_LEN = struct.Struct(">I")


def encrypt(data: bytes, key: BackupKey = KEY) -> bytes:
    out = io.BytesIO()
    bk.encrypt_stream(io.BytesIO(data), out, key, "sqlite")
    return out.getvalue()


def decrypt(blob: bytes, key: BackupKey = KEY) -> bytes:
    out = io.BytesIO()
    bk.decrypt_stream(io.BytesIO(blob), out, key)
    return out.getvalue()


def split(blob: bytes) -> tuple[bytes, list[bytes]]:
    """The file's header part and its encrypted parts (each with its length prefix)."""
    start = len(bk.MAGIC)
    (hlen,) = _LEN.unpack(blob[start : start + 4])
    pos = start + 4 + hlen
    head, parts = blob[:pos], []
    while pos < len(blob):
        (n,) = _LEN.unpack(blob[pos : pos + 4])
        parts.append(blob[pos : pos + 4 + n])
        pos += 4 + n
    return head, parts


PAYLOAD = secrets.token_bytes(bk.CHUNK * 2 + 12345)  # three parts


def test_a_backup_round_trips_in_several_parts() -> None:
    blob = encrypt(PAYLOAD)
    assert len(split(blob)[1]) == 3
    assert decrypt(blob) == PAYLOAD
    assert PAYLOAD[:4096] not in blob


@pytest.mark.parametrize("size", [0, 1, bk.CHUNK - 1, bk.CHUNK, bk.CHUNK + 1])
def test_every_size_round_trips_including_empty_and_exact_parts(size: int) -> None:
    data = secrets.token_bytes(size)
    assert decrypt(encrypt(data)) == data


def test_a_passphrase_backup_opens_only_with_its_passphrase() -> None:
    blob = encrypt(b"clinic", BackupKey(passphrase="correct horse battery"))
    assert decrypt(blob, BackupKey(passphrase="correct horse battery")) == b"clinic"
    with pytest.raises(BackupError, match="could not be authenticated"):
        decrypt(blob, BackupKey(passphrase="correct horse batterY"))
    with pytest.raises(BackupError, match="passphrase"):
        decrypt(blob, KEY)


def test_another_key_is_named_by_its_id_and_refused() -> None:
    with pytest.raises(BackupError, match="another key"):
        decrypt(encrypt(b"clinic"), OTHER_KEY)


def _reordered(blob: bytes) -> bytes:
    head, parts = split(blob)
    return head + parts[1] + parts[0] + parts[2]


def _middle_dropped(blob: bytes) -> bytes:
    head, parts = split(blob)
    return head + parts[0] + parts[2]


def _last_dropped(blob: bytes) -> bytes:
    head, parts = split(blob)
    return head + parts[0] + parts[1]


def _repeated(blob: bytes) -> bytes:
    head, parts = split(blob)
    return head + parts[0] + parts[0] + parts[1] + parts[2]


def _last_repeated(blob: bytes) -> bytes:
    return blob + split(blob)[1][-1]


def _header_rewritten(blob: bytes) -> bytes:
    start = len(bk.MAGIC)
    (hlen,) = _LEN.unpack(blob[start : start + 4])
    header = json.loads(blob[start + 4 : start + 4 + hlen])
    header["created_at"] = "2020-01-01T00:00:00+00:00"
    raw = json.dumps(header, sort_keys=True).encode()
    return bk.MAGIC + _LEN.pack(len(raw)) + raw + blob[start + 4 + hlen :]


def _parts_from_another_backup(blob: bytes) -> bytes:
    head, _ = split(blob)
    return head + b"".join(split(encrypt(PAYLOAD))[1])


TAMPERS = {
    "parts reordered": _reordered,
    "a middle part dropped": _middle_dropped,
    "the last part dropped": _last_dropped,
    "a part repeated": _repeated,
    "the last part appended again": _last_repeated,
    "bytes appended": lambda b: b + b"\x00",
    "cut in the middle of a part": lambda b: b[: len(b) // 2],
    "cut inside the header": lambda b: b[: len(bk.MAGIC) + 10],
    "the header's time rewritten": _header_rewritten,
    "parts of another backup under this header": _parts_from_another_backup,
    "a length prefix enlarged": lambda b: (
        split(b)[0] + _LEN.pack(bk.CHUNK + 17) + split(b)[1][0][4:] + b"".join(split(b)[1][1:])
    ),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_a_tampered_backup_is_refused(name: str) -> None:
    with pytest.raises(BackupError):
        decrypt(TAMPERS[name](encrypt(PAYLOAD)))


SMALL = encrypt(b"a small clinic database " * 100)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(SMALL) - 1), bit=st.integers(0, 7))
def test_any_bit_flipped_anywhere_is_refused(position: int, bit: int) -> None:
    changed = bytearray(SMALL)
    changed[position] ^= 1 << bit
    with pytest.raises(BackupError):
        decrypt(bytes(changed))


def test_a_file_that_is_not_a_backup_has_no_header(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(BackupError, match="not a Needlepoint backup"):
        decrypt(b"SQLite format 3\x00" + b"\x00" * 100)


# -- sealed secrets --------------------------------------------------------------------------


def test_a_sealed_secret_opens_only_with_its_key_and_column() -> None:
    mine = sealing.Sealer([b"m" * 32])
    sealed = mine.seal("JBSWY3DPEHPK3PXP", "mfa_secrets.secret")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert sealing.is_sealed(sealed)
    assert mine.open(sealed, "mfa_secrets.secret") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(sealing.SealingError, match="not configured"):
        sealing.Sealer([b"x" * 32]).open(sealed, "mfa_secrets.secret")
    with pytest.raises(sealing.SealingError, match="altered"):
        mine.open(sealed, "another.column")
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(sealing.SealingError, match="altered"):
        mine.open(flipped, "mfa_secrets.secret")
    with pytest.raises(sealing.SealingError, match="not sealed"):
        mine.open("JBSWY3DPEHPK3PXP", "mfa_secrets.secret")


def test_a_rotated_key_still_opens_what_the_old_key_sealed() -> None:
    old, new = b"o" * 32, b"n" * 32
    sealed = sealing.Sealer([old]).seal("secret", "c")
    rotated = sealing.Sealer([new, old])
    assert rotated.open(sealed, "c") == "secret"
    assert rotated.seal("secret", "c").split(":")[2] == sealing.key_id(new)


@pytest.mark.parametrize("text", ["", "short", "a" * 50, "!!!notbase64!!!"])
def test_a_malformed_key_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(sealing.SealingError):
        sealing.parse_key(text)
