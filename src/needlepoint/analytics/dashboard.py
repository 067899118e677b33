"""The benefits dashboard: every analysis of the clinic in one result, and its cache.

`compute` runs the whole dashboard over a loaded dataset; the fitted models (mixed models
and the prognosis model) can be passed back in to be reused. `Dashboards` keeps each
clinic's latest snapshot in a server process and refreshes it in the background when the
clinic's analytics version (kept in the database by the write path) moves."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.analytics_marks import Mark, read_mark
from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.spreadsheets import csv_text
from needlepoint.analytics import charts
from needlepoint.analytics import dataset as datasets
from needlepoint.analytics.after_care import AfterCare, after_care
from needlepoint.analytics.evidence import CONTEXT_NOTE, PooledEffect, pooled_effects
from needlepoint.analytics.medication import MedicationRow, medication
from needlepoint.analytics.practitioners import PractitionerModel
from needlepoint.analytics.practitioners import fit as fit_practitioners
from needlepoint.analytics.prognosis import Prognosis, PrognosisModel
from needlepoint.analytics.recovery import Recovery, recovery
from needlepoint.analytics.responders import (
    COUNTED,
    CRITERIA,
    MEASURED,
    NOT_MEASURED,
    PROGNOSIS_SESSION,
    ResponderRow,
    ThresholdNote,
    Workspace,
    responder_table,
    thresholds_of,
    wilson,
)
from needlepoint.analytics.safety import Safety, safety
from needlepoint.domain.benefits import benefits
from needlepoint.domain.enums import Role
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
    status: str  # "measured" or "not measured" (the benefit itself)
    criterion: str
    overall: ResponderRow
    # The published thresholds the count applies, each with its source.
    thresholds: list[ThresholdNote]
    # Where the benefit itself is not measured but a stand-in is counted: that count, said
    # as what it is (never as the benefit's result); None otherwise.
    proxy: str | None
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
    # Outcome scores analysed, and how many of them patients submitted from home
    # (questionnaires, issue 16): the provenance of the figures above.
    measurements: int = 0
    patient_reported: int = 0
    # What patients report after discharge (follow-ups; `analytics.after_care`).
    after_care: AfterCare | None = None


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


_PROXY_WORDS = {
    "muscle_relaxation": (
        "Proxy: fewer muscles with an active trigger point in {k} of {n} episodes with a "
        "first and a later needled-session record. Trigger-point status is not muscle "
        "relaxation."
    ),
    "drug_free_management": (
        "Proxy: analgesic drug-days per week fell in {k} of {n} episodes with analgesic use "
        "and a later log entry. Fewer drug-days is not drug-free."
    ),
    "faster_recovery": (
        "NPRS responder threshold reached by session {session} in {k} of {n} episodes. No "
        "comparator: whether recovery was faster is not judged."
    ),
}


def _proxy(benefit: str, row: ResponderRow) -> str | None:
    """A proxy benefit's count in words (None where the benefit is measured, or nothing
    was counted)."""
    if COUNTED[benefit][0] == MEASURED or row.responders is None:
        return None
    return _PROXY_WORDS[benefit].format(k=row.responders, n=row.complete, session=PROGNOSIS_SESSION)


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
    later = after_care(ws, ws.snapshot.as_of or datetime.now(UTC).date())
    lap("after care")
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
                status=MEASURED if row.status == MEASURED else NOT_MEASURED,
                criterion=CRITERIA[b.id],
                overall=row,
                thresholds=thresholds_of(b.id),
                proxy=_proxy(b.id, row),
                contrasts=_contrasts(ws, b.id),
                evidence_level=b.evidence.level,
                evidence_note=b.evidence.note,
                pooled=list(ev.pooled),
                pooled_summary=ev.summary,
            )
        )
    episodes, sessions, patients, measured, from_home = ws.one(
        "SELECT (SELECT count(*) FROM episodes), (SELECT count(*) FROM sessions), "
        "(SELECT count(DISTINCT patient_id) FROM episodes), (SELECT count(*) FROM measurements), "
        "(SELECT coalesce(sum(patient_reported), 0) FROM measurements)"
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
            measurements=int(measured),
            patient_reported=int(from_home),
            after_care=later,
        ),
        fitted,
    )


# --- each clinic's snapshot, refreshed in the background ---------------------------------


def draw_charts(d: Dashboard) -> dict[str, Any]:
    """The dashboard's charts (PNG `data:` URIs), drawn with the snapshot they show."""
    return {
        "caterpillar": [charts.caterpillar(m) for m in d.practitioners],
        "funnel": [charts.funnel(m) for m in d.practitioners],
        "recovery": [charts.recovery_curves(c) for c in d.recovery.comparisons],
        "calibration": charts.calibration_plot(d.prognosis.validation),
    }


@dataclass(frozen=True, slots=True)
class Computed:
    """One computed state of a clinic's analytics. A view shows one of these whole (the
    figures, the fitted models and the charts), never parts of two."""

    mark: Mark  # the clinic's analytics version its records were read at
    as_of: datetime  # when its records were read (UTC)
    dashboard: Dashboard
    fitted: Fitted
    images: dict[str, Any]
    took_s: float  # reading and computing, in the background


@dataclass(frozen=True, slots=True)
class View:
    """What an analytics view shows: the newest finished snapshot, and whether the records
    have changed since it was taken."""

    computed: Computed | None  # None: the first snapshot is still being prepared
    refreshing: bool  # a newer snapshot is being computed (the records changed since)
    refresh_started: datetime | None = None  # when the running refresh was asked for
    failure: str | None = None  # the last refresh failed: why (the figures are older)

    @property
    def as_of(self) -> datetime | None:
        return None if self.computed is None else self.computed.as_of


Build = Callable[[datasets.Dataset], tuple[Dashboard, Fitted, dict[str, Any]]]


def build(data: datasets.Dataset) -> tuple[Dashboard, Fitted, dict[str, Any]]:
    """Everything a snapshot holds, from the loaded records."""
    dashboard, fitted = compute(data)
    return dashboard, fitted, draw_charts(dashboard)


@dataclass
class _Clinic:
    computed: Computed | None = None
    running: bool = False
    refresh_started: datetime | None = None
    failure: str | None = None
    failed_mark: Mark = None
    failed_at: float = 0.0


_REFRESHES = threading.BoundedSemaphore(1)
"""One refresh at a time per process (each takes about a core for seconds)."""

log = logging.getLogger(__name__)


class Dashboards:
    """The analytics snapshots of a server process, one per clinic, refreshed in the
    background.

    `view` never computes: it reads the clinic's analytics version (one primary-key read,
    see `adapters.db.analytics_marks`) and returns the snapshot it has, starting a refresh
    in a thread of its own when the version moved (at most one per clinic; one runs at a
    time per process). The version lives in the database, so every process sees the same
    invalidation; a write that does not change what the analytics read (a chart view's
    audit event, a sign-in) does not move it. The refresh reads the records in one
    transaction (PostgreSQL: REPEATABLE READ; SQLite: one read transaction), so a snapshot
    never mixes two states of the records, then computes off the connection."""

    def __init__(self, build: Build = build, *, retry_failed_after_s: float = 60.0) -> None:
        self._build = build
        self._retry_after = retry_failed_after_s
        self._lock = threading.Condition()
        self._clinics: dict[tuple[str, UUID], _Clinic] = {}

    def view(self, reader: Reader) -> View:
        """The reader's clinic's analytics as they stand (see the class)."""
        reader.require(Permission.READ_CLINICAL)
        engine = reader.conn.engine
        key = (engine.url.render_as_string(hide_password=True), reader.clinic_id)
        mark = read_mark(reader.conn, reader.clinic_id)
        with self._lock:
            c = self._clinics.setdefault(key, _Clinic())
            if c.computed is not None and c.computed.mark == mark:
                return View(c.computed, refreshing=False)
            if not c.running:
                retry = (
                    c.failure is None
                    or c.failed_mark != mark
                    or time.monotonic() - c.failed_at >= self._retry_after
                )
                if retry:
                    c.running = True
                    c.refresh_started = datetime.now(UTC)
                    threading.Thread(
                        target=self._refresh,
                        args=(key, engine, reader.clinic_id, reader.role, reader.user_id),
                        name="analytics-refresh",
                        daemon=True,
                    ).start()
            return View(
                c.computed,
                refreshing=c.running,
                refresh_started=c.refresh_started if c.running else None,
                failure=c.failure,
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Until no refresh is running (tests, benchmarks); False if `timeout` passed."""
        with self._lock:
            return self._lock.wait_for(
                lambda: not any(c.running for c in self._clinics.values()), timeout
            )

    def _refresh(
        self, key: tuple[str, UUID], engine: sa.Engine, clinic: UUID, role: Role, user: UUID
    ) -> None:
        computed: Computed | None = None
        failure: str | None = None
        mark: Mark = None
        try:
            with _REFRESHES:
                started = time.perf_counter()
                as_of = datetime.now(UTC)
                with engine.connect() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execution_options(isolation_level="REPEATABLE READ")
                    scope_to_clinic(conn, clinic)
                    mark = read_mark(conn, clinic)
                    data = datasets.load(Reader(conn, clinic, role, user, source="analytics"))
                    conn.rollback()  # read only
                dashboard, fitted, images = self._build(data)
                computed = Computed(
                    mark, as_of, dashboard, fitted, images, time.perf_counter() - started
                )
        except Exception as exc:  # reported on the page and in the log
            log.exception("analytics refresh of clinic %s failed", clinic)
            failure = f"{type(exc).__name__}: {exc}"[:300]
        with self._lock:
            c = self._clinics[key]
            c.running, c.refresh_started = False, None
            if computed is not None:
                c.computed, c.failure = computed, None
            else:
                c.failure, c.failed_mark, c.failed_at = failure, mark, time.monotonic()
            self._lock.notify_all()


_kept_lock = threading.Lock()


def dashboards_of(holder: Any) -> Dashboards:
    """The `Dashboards` kept on `holder` (the web app's `app.state`): one per app, shared
    by its pages and its API; created at first use."""
    with _kept_lock:
        kept = getattr(holder, "analytics_dashboards", None)
        if not isinstance(kept, Dashboards):
            kept = Dashboards()
            holder.analytics_dashboards = kept
        return kept


CSV_COLUMNS = [f for f in ResponderRow.__dataclass_fields__]


def responders_csv(rows: list[ResponderRow]) -> str:
    """The responder table as CSV: one row per benefit × dimension × level (a level can
    be a practitioner's name: text cells are escaped against formula injection)."""
    return csv_text(CSV_COLUMNS, ([getattr(r, k) for k in CSV_COLUMNS] for r in rows))
