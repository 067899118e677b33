"""What a signature covers (`domain.audit.signed_note`): the note and all recorded in it,
in an order that does not depend on how the rows were read back, and every change to any
of them changes the digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from needlepoint.domain.audit import digest, signed_note
from needlepoint.domain.entities import Amendment, Entity

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def a_record(note: UUID, text: str) -> Amendment:
    return Amendment(
        id=uuid4(),
        clinic_id=uuid4(),
        session_id=note,
        author_id=uuid4(),
        reason="r",
        text=text,
        created_at=AT,
    )


NOTE = a_record(uuid4(), "the note")


@given(st.lists(st.text(max_size=8), min_size=1, max_size=6), st.randoms())
def test_the_digest_does_not_depend_on_the_order_rows_come_back_in(
    texts: list[str], rnd: object
) -> None:
    children: list[Entity] = [a_record(NOTE.id, t) for t in texts]
    shuffled = list(children)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert digest(signed_note(NOTE, children)) == digest(signed_note(NOTE, shuffled))
    assert signed_note(NOTE, shuffled)[0] is NOTE


@given(st.lists(st.text(max_size=8), min_size=1, max_size=6), st.data())
def test_changing_removing_or_adding_any_record_changes_the_digest(
    texts: list[str], data: st.DataObject
) -> None:
    children: list[Entity] = [a_record(NOTE.id, t) for t in texts]
    signed = digest(signed_note(NOTE, children))
    i = data.draw(st.integers(0, len(children) - 1))
    changed = list(children)
    changed[i] = replace(children[i], text=texts[i] + "!")
    assert digest(signed_note(NOTE, changed)) != signed
    assert digest(signed_note(NOTE, children[:i] + children[i + 1 :])) != signed
    assert digest(signed_note(NOTE, [*children, a_record(NOTE.id, "more")])) != signed
    assert digest(signed_note(replace(NOTE, text="edited"), children)) != signed


def test_a_note_with_nothing_recorded_in_it_has_the_digest_of_the_note_alone() -> None:
    assert digest(signed_note(NOTE, [])) == digest([NOTE])
