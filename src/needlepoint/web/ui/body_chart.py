"""The body chart: the polygons of react-body-highlighter (MIT, see
`static/LICENSE-body-chart.txt`, converted by `scripts/build_body_chart.py`), each region
linked to the catalogue muscles whose `chart` keys name it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from needlepoint.domain.catalogue import Muscle, muscles

NAMES = {
    "upper-back": "Upper back",
    "lower-back": "Lower back",
    "back-deltoids": "Deltoid (posterior)",
    "front-deltoids": "Deltoid (anterior)",
    "abs": "Abdominals",
    "adductor": "Adductors",
    "abductors": "Abductors",
    "left-soleus": "Soleus",
    "right-soleus": "Soleus",
    "knees": "Knee",
}
MARK = re.compile(r"^\[chart (front|back) (\d{1,3}(?:\.\d+)?),(\d{1,3}(?:\.\d+)?)\]\n?")


@dataclass(frozen=True, slots=True)
class Region:
    key: str
    side: str
    points: str
    label: str


@cache
def regions() -> dict[str, list[Region]]:
    """The regions of each view ("front", "back")."""
    raw = resources.files("needlepoint.web").joinpath("static", "body-chart.json").read_text()
    data = json.loads(raw)
    out: dict[str, list[Region]] = {}
    for view, items in data["views"].items():
        out[view] = [
            Region(
                r["key"],
                r["side"],
                r["points"],
                f"{region_name(r['key'])}, {r['side']} ({view})",
            )
            for r in items
        ]
    return out


def region_name(key: str) -> str:
    return NAMES.get(key, key.replace("-", " ").capitalize())


@cache
def muscles_by_region() -> dict[str, list[Muscle]]:
    """Chart key → the catalogue muscles in that region, by name."""
    out: dict[str, list[Muscle]] = {}
    for m in sorted(muscles().muscles, key=lambda m: m.name):
        for key in m.chart:
            out.setdefault(key, []).append(m)
    return out


def split_mark(notes: str | None) -> tuple[str | None, str]:
    """A site's trigger point mark on the chart ("back:34.2,40.1") and the rest of its notes.
    The mark is kept as the first line of the site's notes: `[chart back 34.2,40.1]`."""
    if not notes:
        return None, ""
    m = MARK.match(notes)
    if m is None:
        return None, notes
    return f"{m.group(1)}:{m.group(2)},{m.group(3)}", notes[m.end() :]


def join_mark(mark: str, notes: str) -> str | None:
    """The notes to store for a site with this mark (see `split_mark`)."""
    m = re.fullmatch(r"(front|back):(\d{1,3}(?:\.\d+)?),(\d{1,3}(?:\.\d+)?)", mark.strip())
    prefix = f"[chart {m.group(1)} {m.group(2)},{m.group(3)}]\n" if m else ""
    text = (prefix + notes.strip()).strip()
    return text or None
