"""The body chart: the polygons of react-body-highlighter (MIT, see
`static/LICENSE-body-chart.txt`, converted by `scripts/build_body_chart.py`), each region
linked to the catalogue muscles whose `chart` keys name it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from needlepoint.domain.catalogue import Muscle, muscles
from needlepoint.web.ui.forms import templates

NAMES = {
    "upper-back": "Upper back",
    "lower-back": "Lower back",
    "back-deltoids": "Deltoid (posterior)",
    "front-deltoids": "Deltoid (anterior)",
    "abs": "Abdominals",
    "adductor": "Adductors (inner thigh)",
    # upstream names the front view's inner-thigh polygon "abductors": it is the adductors
    "abductors": "Adductors (inner thigh)",
    "left-soleus": "Soleus and heel",
    "right-soleus": "Soleus and heel",
    "foot-sole": "Sole of the foot",
    "knees": "Knee",
}
FOOT_SOLE = "foot-sole"
"""Drawn under the heels of the back view: the foot's intrinsic muscles."""
MARK = re.compile(r"^\[chart (front|back) (\d{1,3}(?:\.\d+)?),(\d{1,3}(?:\.\d+)?)\]\n?")


@dataclass(frozen=True, slots=True)
class Region:
    key: str
    side: str
    points: str
    label: str
    view_box: str = "0 0 100 200"


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
                data.get("view_boxes", {}).get(view, "0 0 100 200"),
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
        for key in chart_keys(m):
            out.setdefault(key, []).append(m)
    return out


def chart_keys(m: Muscle) -> list[str]:
    """The chart regions a muscle is listed under: its catalogue keys, and the sole of the
    foot for the foot's intrinsic muscles (not under the calf alone)."""
    return [*m.chart, FOOT_SOLE] if m.region == "foot" else list(m.chart)


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


AREA_REGIONS: dict[str, tuple[str, ...]] = {
    "upper_limb": ("biceps", "triceps", "forearm", "front-deltoids", "back-deltoids"),
    "lower_limb": (
        "quadriceps",
        "abductors",
        "adductor",
        "hamstring",
        "knees",
        "calves",
        "left-soleus",
        "right-soleus",
        FOOT_SOLE,
    ),
    "trunk": ("chest", "abs", "obliques", "upper-back", "lower-back", "trapezius"),
    "head": ("head",),
    "neck": ("neck",),
}
"""The chart regions of each screening area (`upper_limb:left` → the left arm's regions)."""


def avoided(answers: dict[str, Any] | None) -> dict[str, str]:
    """The regions a screening's findings put out of bounds, as "key:side" → why (greyed on
    the body chart): a limb with lymphoedema (never needled) and the areas excluded for
    infected or inflamed tissue or varicose veins."""
    if not answers:
        return {}
    found: list[tuple[str, str]] = [
        (a, "lymphoedema: never needle this limb") for a in answers.get("lymphoedema_areas") or []
    ]
    for lx in answers.get("local_exclusions") or []:
        why = str(lx.get("reason", "")).replace("_", " ")
        found.append((str(lx.get("area", "")), f"{why}: do not needle here"))
    out: dict[str, str] = {}
    for area, why in found:
        part, _, side = area.partition(":")
        for key in AREA_REGIONS.get(part, ()):
            for s in (side,) if side else ("left", "right", "midline"):
                out.setdefault(f"{key}:{s}", why)
    return out


# Pages that draw the chart (the note, the patient's chart card) grey these regions.
templates.env.globals["avoided_regions"] = avoided
templates.env.globals["chart_regions"] = regions
