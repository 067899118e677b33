"""Document benchmark: server time of the printable documents for one patient with
`--sessions` signed sessions (built as in `bench/pages.py`: 3 needling sites and an NPRS
each, ROM every 10th session, NDI every 30th): the progress report's print view (HTML
with its plots as PNG) and PDF, and the last signed note's PDF. Reported, not asserted;
no goal is set yet (a document is asked for once, not on every visit).

    .venv/bin/python bench/documents.py [--sessions 40] [--repeat 10] [--pg URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.web.app import create_app
from pages import build_patient, session_cookie, timed_get  # bench/pages.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--pg", help="a PostgreSQL URL instead of a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        email, _patient_id, episode_id = build_patient(engine, args.sessions)
        with engine.connect() as conn:
            last = conn.execute(
                sa.select(t.sessions.c.id)
                .where(t.sessions.c.episode_id == episode_id)
                .order_by(t.sessions.c.started_at.desc())
                .limit(1)
            ).scalar_one()
        app = create_app(engine, secret_key="d" * 40, rate_limit=None)
        cookie = session_cookie(app, email)
        print(f"{args.sessions} signed sessions ({engine.dialect.name})")
        for name, path in (
            ("report (print view)", f"/episodes/{episode_id}/report"),
            ("report (PDF)", f"/episodes/{episode_id}/report/pdf"),
            ("signed note (PDF)", f"/sessions/{last}/pdf"),
        ):
            times = timed_get(app, path, cookie, args.repeat)
            print(
                f"{name:20s} median {statistics.median(times):7.1f} ms   "
                f"max {max(times):7.1f} ms   min {min(times):7.1f} ms"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
