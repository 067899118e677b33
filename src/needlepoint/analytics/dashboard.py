"""The benefits dashboard: every analysis of the clinic in one result, and its cache.

`compute` runs the whole dashboard over a loaded dataset; the fitted models (mixed models
and the prognosis model) can be passed back in to be reused. `clinic_dashboard` keeps the
latest result per clinic in memory and recomputes when the clinic's audit trail shows a
new write (every write records an audit event)."""

from __future__ import annotations

import csv
import io
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import audit_events
from needlepoint.analytics import dataset as datasets
from needlepoint.analytics.evidence import CONTEXT_NOTE, PooledEffect, pooled_effects
from needlepoint.analytics.medication import MedicationRow, medication
from needlepoint.analytics.practitioners import PractitionerModel
from needlepoint.analytics.practitioners import fit as fit_practitioners
from needlepoint.analytics.prognosis import Prognosis, PrognosisModel
from needlepoint.analytics.recovery import Recovery, recovery
from needlepoint.analytics.responders import (
    CRITERIA,
    ResponderRow,
    Workspace,
    responder_table,
    wilson,
)
from needlepoint.analytics.safety import Safety, safety
from needlepoint.domain.benefits import benefits
from needlepoint.domain.permissions import Permission
from needlepoint.queries.reader import Reader


@dataclass(frozen=True, slots=True)
class Contrast:
    """One group's rate beside another's (e.g. combined care vs needling alone)."""

    label: str
    complete: int
    responders: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class BenefitTile:
    id: str
    name: str
    status: str  # "measured" or "not measured"
    criterion: str
    overall: ResponderRow
    contrasts: list[Contrast]
    evidence_level: str
    evidence_note: str
    pooled: list[PooledEffect]
    pooled_summary: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    episodes: int
    sessions: int
    patients: int
    tiles: list[BenefitTile]
    responders: list[ResponderRow]
    practitioners: list[PractitionerModel]
    recovery: Recovery
    medication: list[MedicationRow]
    safety: Safety
    prognosis: PrognosisModel
    evidence_note: str
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Fitted:
    """The fitted models, reusable while the data have not changed."""

    practitioners: list[PractitionerModel]
    prognosis: Prognosis


def _contrasts(ws: Workspace, benefit: str) -> list[Contrast]:
    """Complementary care: combined care beside needling alone (pain responders)."""
    if benefit != "complementary_care":
        return []
    out = []
    for label, where in (
        ("needling with exercise or manual therapy", "f.exercise OR f.manual_therapy"),
        ("needling without them", "NOT (f.exercise OR f.manual_therapy)"),
    ):
        complete, responders = ws.one(f"""
SELECT count(*) FILTER (WHERE o.complete), count(*) FILTER (WHERE o.complete AND o.responder)
FROM episode_facts f JOIN episode_outcomes o
  ON o.episode_id = f.episode_id AND o.benefit = 'pain_relief'
WHERE {where}
""")
        lo, hi = wilson(int(responders), int(complete))
        rate = responders / complete if complete else None
        out.append(Contrast(label, int(complete), int(responders), rate, lo, hi))
    return out


def compute(
    data: datasets.Dataset | datasets.Snapshot, fitted: Fitted | None = None
) -> tuple[Dashboard, Fitted]:
    """The whole dashboard for a loaded dataset or its snapshot (fitting the models unless
    given). Everything derived is computed afresh in a workspace of its own."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    ws = Workspace(data)
    ws.materialise()
    lap("episode facts")
    table = responder_table(ws)
    lap("responder table")
    if fitted is None:
        fitted = Fitted(
            practitioners=[fit_practitioners(ws, "nprs"), fit_practitioners(ws, "function")],
            prognosis=Prognosis(ws),
        )
        lap("model fitting")
    rec = recovery(ws)
    lap("recovery curves")
    meds = medication(ws)
    adverse = safety(ws)
    lap("medication and safety")
    evidence = pooled_effects()
    overall = {r.benefit: r for r in table if r.dimension == "overall"}
    tiles = []
    for b in benefits():
        row = overall[b.id]
        ev = evidence[b.id]
        tiles.append(
            BenefitTile(
                id=b.id,
                name=b.name,
                status="not measured" if row.complete == 0 else "measured",
                criterion=CRITERIA[b.id],
                overall=row,
                contrasts=_contrasts(ws, b.id),
                evidence_level=b.evidence.level,
                evidence_note=b.evidence.note,
                pooled=list(ev.pooled),
                pooled_summary=ev.summary,
            )
        )
    episodes, sessions, patients = ws.one(
        "SELECT (SELECT count(*) FROM episodes), (SELECT count(*) FROM sessions), "
        "(SELECT count(DISTINCT patient_id) FROM episodes)"
    )
    lap("tiles")
    ws.con.close()  # the derived tables go with the workspace's cursor
    return (
        Dashboard(
            episodes=int(episodes),
            sessions=int(sessions),
            patients=int(patients),
            tiles=tiles,
            responders=table,
            practitioners=fitted.practitioners,
            recovery=rec,
            medication=meds,
            safety=adverse,
            prognosis=fitted.prognosis.model,
            evidence_note=CONTEXT_NOTE,
            timings_s=timings,
        ),
        fitted,
    )


# --- the per-clinic cache -----------------------------------------------------------------

_lock = threading.Lock()
_cache: dict[tuple[str, UUID], tuple[Any, Dashboard, Fitted]] = {}


def _fingerprint(reader: Reader) -> Any:
    """The clinic's latest audit event: any write changes it."""
    row = reader.conn.execute(
        sa.select(audit_events.c.occurred_at, audit_events.c.id)
        .where(audit_events.c.clinic_id == reader.clinic_id)
        .order_by(audit_events.c.occurred_at.desc(), audit_events.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else tuple(row)


def clinic_dashboard(reader: Reader) -> tuple[Dashboard, Fitted]:
    """The reader's clinic's dashboard, computed at most once per state of its records."""
    reader.require(Permission.READ_CLINICAL)
    key = (reader.conn.engine.url.render_as_string(hide_password=True), reader.clinic_id)
    mark = _fingerprint(reader)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == mark:
            return hit[1], hit[2]
    result = compute(datasets.load(reader))
    with _lock:
        _cache[key] = (mark, *result)
    return result


CSV_COLUMNS = [f for f in ResponderRow.__dataclass_fields__]


def responders_csv(rows: list[ResponderRow]) -> str:
    """The responder table as CSV: one row per benefit × dimension × level."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(r).items()})
    return out.getvalue()
