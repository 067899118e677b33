"""The server's own time zone, the default of a new clinic's time zone: the `TZ`
environment variable, else /etc/timezone, else the zone /etc/localtime links to; UTC
when none names a zone the tz database knows."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from needlepoint.domain.clinic_time import DEFAULT_ZONE, is_zone_name

_MARKER = "zoneinfo/"


def server_zone_name(
    environ: dict[str, str] | None = None,
    etc: Path = Path("/etc"),
) -> str:
    """The IANA name of the server's zone (`DEFAULT_ZONE` when unknown)."""
    env = os.environ if environ is None else environ
    candidates: list[str] = []
    tz = env.get("TZ", "").strip().removeprefix(":")
    if tz:
        candidates.append(tz)
    with contextlib.suppress(OSError):
        candidates.append((etc / "timezone").read_text(encoding="utf-8").strip())
    try:
        target = os.readlink(etc / "localtime")
        if _MARKER in target:
            candidates.append(target.split(_MARKER, 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name.startswith("Etc/") and name[4:] in {"UTC", "UCT", "Zulu", "Universal"}:
            return DEFAULT_ZONE
        if is_zone_name(name):
            return name
    return DEFAULT_ZONE
