"""docs/instruments.md documents every instrument's item order as the library defines it,
so a researcher's batch file and the clinic's chart agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from needlepoint.domain import instruments

DOC = (Path(__file__).parents[2] / "docs" / "instruments.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("instrument_id", sorted(instruments.library()))
def test_the_item_order_of_every_instrument_is_documented(instrument_id: str) -> None:
    inst = instruments.get(instrument_id)
    section = DOC.split(f"### `{instrument_id}` ", 1)[1].split("\n### ", 1)[0]
    listed = [line for line in section.splitlines() if line.startswith("- `item")]
    expected = [
        f"- `{n}`: {label}" for n, label in zip(inst.item_names, inst.item_labels, strict=True)
    ]
    assert listed == expected


def test_every_batch_instrument_is_named_in_the_batch_section() -> None:
    batch = DOC.split("## Batch scoring for researchers", 1)[1]
    for inst in instruments.library().values():
        if inst.batch:
            assert f"`{inst.id}`" in batch
