"""The on-demand crash test (`scripts/crash_test.py`) still runs: two kills on SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "crash_test.py"


def test_the_crash_test_loses_no_acknowledged_write_across_two_kills() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--db", "sqlite", "--kills", "2", "--max-seconds", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kills 2," in done.stdout
    assert "lost 0" in done.stdout
