"""A refused sign, shown where the clinician will look: a summary at the top of the note
(below the draft's save status, never above a "Draft saved" line) listing each problem
with a link to the place concerned, and each field concerned marked invalid
(`aria-invalid`, styled) at its site (issue 15)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from needlepoint.domain.catalogue import muscles

_WHERE = {
    "started_at": ("f-started_at", "Session started"),
    "subjective": ("f-subjective", "Subjective"),
    "objective": ("f-objective", "Objective"),
    "assessment": ("f-assessment", "Assessment"),
    "plan": ("f-plan", "Plan"),
    "nprs": ("f-nprs", "Pain (NPRS)"),
    "rom": ("f-rom", "Range of motion"),
}
_SITE = re.compile(r"^sites\.(\d+)(?:\.(.+))?$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a sign was refused: where (words and link), the form field's name (to
    mark it invalid), and the message."""

    where: str | None
    href: str | None
    field_name: str | None
    message: str


def sign_problems(
    errors: Mapping[str, Sequence[str]], sites: Sequence[Mapping[str, str]]
) -> list[Problem]:
    """The note's errors (form keys such as `sites.1.depth_mm`), each located."""
    names = {m.id: m.name for m in muscles().muscles}
    out: list[Problem] = []
    for key, messages in errors.items():
        where: str | None = None
        href: str | None = None
        field_name: str | None = None
        if m := _SITE.match(key):
            i, attr = int(m.group(1)), m.group(2)
            row = sites[i] if i < len(sites) else {}
            muscle = names.get(row.get("muscle_id", ""), row.get("muscle_id", "site"))
            side = row.get("side", "")
            where = f"Site {i + 1}, {muscle}{f' ({side})' if side else ''}"
            href, field_name = f"#site-{i}", f"sites-{i}-{attr}" if attr else None
        elif key in _WHERE:
            anchor, where = _WHERE[key]
            href, field_name = f"#{anchor}", key
        elif key:
            field_name = key.replace(".", "-")
            where = key.split(".", 1)[0].replace("_", " ").capitalize()
        out.extend(Problem(where, href, field_name, message) for message in messages)
    return out
