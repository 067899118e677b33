"""The checkpoint log (adapters/checkpoints.py): signed, linked lines, appended only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from needlepoint.adapters.checkpoints import (
    FIRST,
    CheckpointError,
    append_checkpoint,
    generate_key,
    key_id,
    latest_checkpoint,
    load_private_key,
    load_public_key,
    public_key_path,
    read_checkpoints,
)


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return generate_key(tmp_path / "k" / "audit.key")[0]


def test_checkpoints_round_trip_in_order_each_linked_to_the_one_before(
    key: Path, tmp_path: Path
) -> None:
    private = load_private_key(key)
    log = tmp_path / "log" / "np.ckpt"
    a, b = uuid4(), uuid4()
    first = append_checkpoint(
        log, private, {a: (3, "1" * 64)}, events=3, now=datetime(2026, 11, 27, 2, 15, tzinfo=UTC)
    )
    second = append_checkpoint(log, private, {a: (5, "2" * 64), b: (1, "3" * 64)}, events=6)
    read = read_checkpoints(log, load_public_key(public_key_path(key)))
    assert [c.line for c in read] == [1, 2]
    assert read[0].chains == {a: (3, "1" * 64)}
    assert read[0].written_at == datetime(2026, 11, 27, 2, 15, tzinfo=UTC)
    assert read[1].chains == {a: (5, "2" * 64), b: (1, "3" * 64)}
    assert read[1].events == 6
    assert (read[0].digest, read[1].digest) == (first.digest, second.digest)
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert lines[0]["previous"] == FIRST
    assert lines[1]["previous"] == first.digest
    assert lines[1]["key_id"] == key_id(private.public_key())
    assert (log.stat().st_mode & 0o777) == 0o600


def test_a_missing_log_holds_no_checkpoint(key: Path, tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "none.ckpt", load_public_key(key)) is None


@pytest.mark.parametrize(
    "garbage",
    [b"not json\n", b"{}\n", b'{"signature": "!!"}\n', b"[1, 2]\n"],
)
def test_a_line_that_is_not_a_signed_checkpoint_is_named(
    key: Path, tmp_path: Path, garbage: bytes
) -> None:
    log = tmp_path / "np.ckpt"
    append_checkpoint(log, load_private_key(key), {uuid4(): (1, "1" * 64)}, events=1)
    log.write_bytes(log.read_bytes() + garbage)
    with pytest.raises(CheckpointError, match="line 2"):
        read_checkpoints(log, load_public_key(key))


def test_a_signed_line_with_an_unknown_format_is_refused(key: Path, tmp_path: Path) -> None:
    """Even correctly signed, a line must be a checkpoint of this format."""
    import base64

    private = load_private_key(key)
    payload = {"format": "other/9", "previous": FIRST}
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    payload["signature"] = base64.b64encode(private.sign(body)).decode()
    log = tmp_path / "np.ckpt"
    log.write_bytes(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS) + b"\n")
    with pytest.raises(CheckpointError, match="unknown format"):
        read_checkpoints(log, private.public_key())


def test_keys_that_are_not_ed25519_or_not_keys_are_refused(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1())
    (tmp_path / "ec.key").write_bytes(
        ec.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "ec.pub").write_bytes(
        ec.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "junk.key").write_text("hello")
    with pytest.raises(CheckpointError, match="not an Ed25519"):
        load_private_key(tmp_path / "ec.key")
    with pytest.raises(CheckpointError, match="not an Ed25519"):
        load_public_key(tmp_path / "ec.pub")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_private_key(tmp_path / "junk.key")
    with pytest.raises(CheckpointError, match="not a checkpoint public key"):
        load_public_key(tmp_path / "junk.key")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_public_key(tmp_path / "missing.pub")


def test_the_public_key_of_a_private_key_file_is_its_own(key: Path) -> None:
    assert key_id(load_public_key(key)) == key_id(load_public_key(public_key_path(key)))
