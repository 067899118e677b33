"""Convert the body-chart polygons of the `react-body-highlighter` npm package (MIT,
Copyright (c) 2020 GV79 / Giavinh Lam) into `web/static/body-chart.json`. Run once when
the upstream data changes; the result is committed, so running the product needs no
Node, npm or build step.

    cd /tmp && npm pack react-body-highlighter@2.0.5 htmx.org@2.0.11
    python scripts/build_body_chart.py /tmp/react-body-highlighter-2.0.5.tgz
    python scripts/build_body_chart.py --added-only   # only the regions drawn here

Each polygon becomes one region: its muscle key (the `chart` keys of `muscles.yaml`), the
view (front = anterior, back = posterior), the patient's side it lies on (from the
polygon's centre: the anterior view is a mirror of the patient, the posterior view is
not) and its points in the package's 100 x 200 coordinate system."""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/needlepoint/web/static"
BLOCK = re.compile(r"muscle:\s*MuscleType\.([A-Z_]+),\s*svgPoints:\s*\[(.*?)\]", re.S)
CONST = re.compile(r"([A-Z_]+):\s*'([a-z-]+)'")
MIDLINE_TOLERANCE = 2.5
VIEW_BOXES = {"front": "0 0 100 200", "back": "0 0 100 236"}
"""The upstream posterior figure reaches y = 220 (the heels); the soles are drawn below."""
SOLE_LEFT = "27.00,223.00 35.00,223.00 36.00,229.00 34.00,235.00 28.00,235.00 26.00,229.00"
SOLE_RIGHT = "65.00,223.00 73.00,223.00 74.00,229.00 72.00,235.00 66.00,235.00 64.00,229.00"
ADDED = {
    "back": [
        # Finer regions the upstream data lacks: the sole of each foot, below the heels
        # (the foot intrinsics are needled from under the foot). Drawn here, not upstream.
        {"key": "foot-sole", "side": "left", "points": SOLE_LEFT},
        {"key": "foot-sole", "side": "right", "points": SOLE_RIGHT},
    ]
}


def _side(view: str, points: list[tuple[float, float]]) -> str:
    cx = sum(x for x, _ in points) / len(points)
    if abs(cx - 50) < MIDLINE_TOLERANCE:
        return "midline"
    viewer_right = cx > 50
    # Facing us (front), the patient's left is on our right; from behind it is on our left.
    return (
        ("left" if viewer_right else "right")
        if view == "front"
        else ("right" if viewer_right else "left")
    )


def _regions(source: str, names: dict[str, str], view: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for const, body in BLOCK.findall(source):
        for raw in re.findall(r"'([^']*)'", body):
            nums = [float(n) for n in raw.split()]
            pts = list(zip(nums[0::2], nums[1::2], strict=True))
            out.append(
                {
                    "key": names[const],
                    "side": _side(view, pts),
                    "points": " ".join(f"{x:.2f},{y:.2f}" for x, y in pts),
                }
            )
    return out


def add_regions(data: dict[str, object]) -> None:
    """Add the regions drawn here (replacing an earlier copy) and each view's box."""
    views = data["views"]
    assert isinstance(views, dict)
    for view, extra in ADDED.items():
        keys = {r["key"] for r in extra}
        views[view] = [r for r in views[view] if r["key"] not in keys] + extra
    data.pop("view_box", None)
    data["view_boxes"] = VIEW_BOXES


def main(tarball: str) -> None:
    with tarfile.open(tarball) as tar:

        def read(name: str) -> str:
            member = tar.extractfile(f"package/{name}")
            assert member is not None, name
            return member.read().decode("utf-8")

        meta = json.loads(read("package.json"))
        assets = read("src/assets/index.ts")
        names = dict(CONST.findall(read("src/component/metadata.ts")))
        licence = read("LICENSE")
    front_src, back_src = assets.split("export const posteriorData", 1)
    data = {
        "source": f"{meta['name']}@{meta['version']} (npm), src/assets/index.ts",
        "licence": "MIT; see LICENSE-body-chart.txt",
        "view_boxes": VIEW_BOXES,
        "views": {
            "front": _regions(front_src, names, "front"),
            "back": _regions(back_src, names, "back"),
        },
    }
    add_regions(data)
    (OUT / "body-chart.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (OUT / "LICENSE-body-chart.txt").write_text(
        "The body-chart polygons in body-chart.json are converted from the data of the\n"
        f"npm package {meta['name']} {meta['version']} ({meta.get('homepage', '')}),\n"
        "by scripts/build_body_chart.py, under the following licence.\n\n" + licence,
        encoding="utf-8",
    )
    n = sum(len(v) for v in data["views"].values())  # type: ignore[attr-defined]
    print(f"wrote {n} regions to {OUT / 'body-chart.json'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--added-only"]:  # refresh the drawn regions of the committed file
        path = OUT / "body-chart.json"
        current = json.loads(path.read_text(encoding="utf-8"))
        add_regions(current)
        path.write_text(json.dumps(current, indent=1) + "\n", encoding="utf-8")
    else:
        main(sys.argv[1])
