"""Load one clinic's records into Arrow tables, then into the snapshot every analysis reads.

SQLAlchemy Core selects (the same on SQLite and PostgreSQL) are fetched and turned into
Arrow columns (`load`); `Snapshot` copies them into native DuckDB tables in memory, which
the analyses query. Nothing is downloaded: DuckDB's sqlite/postgres extensions are never
used (they are not in the duckdb wheel and would be fetched at first use). Ids are loaded
as text (32 hex digits on SQLite, the dashed form on PostgreSQL: consistent within one
snapshot), enumerations as their values, times as naive UTC timestamps.

Episode and session ids become integer keys (`integer_keys`): the analyses never show them,
and joins on small integers are several times faster than on ids. Only records attached
to an episode are analysed (measurements and analgesic-log entries
without an episode are left out); the loader needs `Permission.READ_CLINICAL`.

Only signed notes count (`queries.outcomes`): unsigned draft sessions, and their sites,
techniques, adverse events and measurements, are not loaded; measurements recorded on
their own (no session) are."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.domain.permissions import Permission
from needlepoint.domain.questionnaires import (
    AFTER_DISCHARGE_DAYS,
    FOLLOW_UP_DAY,
    discharge_grace_days,
)
from needlepoint.queries.outcomes import SIGNED_ONLY, counts_toward_outcomes
from needlepoint.queries.reader import Reader

_TS = pa.timestamp("us")
_CONTEXT = ("joint", "movement", "side", "site", "location")  # measurement context keys

AFTER_CARE = pa.schema(
    [
        ("episode_id", pa.string()),
        ("instrument_id", pa.string()),
        ("score", pa.float64()),
        ("taken_at", _TS),
        ("after_discharge_days", pa.int32()),  # days from discharge to the answer
        ("follow_up_day", pa.int32()),  # the follow-up it was asked for (days after)
        ("patient_reported", pa.int8()),
    ]
)
"""Patients' answers given after care (`domain.questionnaires.is_after_care`)."""
MEDICATION = pa.schema(
    [
        ("episode_id", pa.string()),
        ("drug", pa.string()),
        ("drug_class", pa.string()),
        ("days_per_week", pa.int64()),
        ("recorded_on", pa.date32()),
        ("created_at", _TS),
    ]
)
"""The analgesic log's analysed columns."""


_AFTER_CARE_TABLES = ("after_care", "after_care_medication")


def _empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


@dataclass(frozen=True, slots=True)
class Dataset:
    """A clinic's analysable records, as Arrow tables (column names below)."""

    episodes: pa.Table  # episode_id (key) patient_id practitioner_id practitioner condition
    #                     onset_date opened_on closed_on status birth_date sex
    plan: pa.Table  # episode_id modality
    sessions: pa.Table  # session_id episode_id started_at
    sites: pa.Table  # session_id sites active_trigger_points
    techniques: pa.Table  # episode_id technique sites
    measurements: pa.Table  # episode_id session_id instrument_id score taken_at … patient_reported
    #                         joint movement side site location
    medication: pa.Table  # episode_id drug drug_class days_per_week recorded_on created_at
    adverse_events: pa.Table  # session_id kind severity
    loaded_in_s: float = 0.0
    # Patients' answers given after care (issue 16: follow-ups after discharge), kept
    # apart from `measurements` so that every outcome "up to discharge" stays so.
    after_care: pa.Table = field(default_factory=lambda: _empty(AFTER_CARE))
    # Analgesic-log entries dated after the episode's discharge, likewise.
    after_care_medication: pa.Table = field(default_factory=lambda: _empty(MEDICATION))
    as_of: date | None = None  # the day the records were read (UTC)

    def tables(self) -> dict[str, pa.Table]:
        """The tables by name, for registering with DuckDB."""
        return {
            "episodes": self.episodes,
            "plan": self.plan,
            "sessions": self.sessions,
            "sites": self.sites,
            "techniques": self.techniques,
            "measurements": self.measurements,
            "medication": self.medication,
            "adverse_events": self.adverse_events,
            "after_care": self.after_care,
            "after_care_medication": self.after_care_medication,
        }


def integer_keys(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Episode and session ids replaced by their row numbers in `episodes` and `sessions`
    (one vectorised lookup per column): joins, windows and groupings then work on small
    integers instead of 32-character ids."""
    episode_ids = tables["episodes"]["episode_id"]
    session_ids = tables["sessions"]["session_id"]

    def keyed(table: pa.Table, column: str, ids: Any) -> pa.Table:
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, pc.index_in(table[column], value_set=ids))

    def numbered(table: pa.Table, column: str) -> pa.Table:
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, pa.array(range(table.num_rows), pa.int32()))

    out = dict(tables)
    out["episodes"] = numbered(tables["episodes"], "episode_id")
    out["sessions"] = keyed(numbered(tables["sessions"], "session_id"), "episode_id", episode_ids)
    for name in ("plan", "techniques", "measurements", "medication", *_AFTER_CARE_TABLES):
        if name not in out:
            continue
        out[name] = keyed(out[name], "episode_id", episode_ids)
    for name in ("measurements", "sites", "adverse_events"):
        out[name] = keyed(out[name], "session_id", session_ids)
    return out


def _text(col: Any) -> Any:
    """A column read as plain text (ids, enumerations): no per-row conversion in Python."""
    return sa.cast(col, sa.String).label(col.name)


def _raw(col: Any, dialect: str) -> Any:
    """A date or time column without SQLAlchemy's per-row processing: SQLite's ISO text
    (parsed by Arrow), PostgreSQL's native values (converted by the driver)."""
    if dialect == "sqlite":
        return sa.type_coerce(col, sa.String).label(col.name)
    return col


_BATCH_ROWS = 200_000


def _fetch(conn: sa.Connection, stmt: Any, schema: pa.Schema, dialect: str) -> pa.Table:
    """A select's rows as an Arrow table, converted a batch of rows at a time.

    The driver's own rows are read: every column selected in `load` needs no result
    processing (text, numbers, raw dates), and skipping SQLAlchemy's row objects saves
    about a fifth of the load."""
    cursor = conn.execute(stmt).cursor
    batches = []
    while rows := cursor.fetchmany(_BATCH_ROWS):
        arrays = [
            _column([row[i] for row in rows], field.type, dialect) for i, field in enumerate(schema)
        ]
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def _column(values: list[Any], kind: pa.DataType, dialect: str) -> pa.Array:
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if dialect == "sqlite":  # ISO text
            return pa.array(values, pa.string()).cast(kind)
        if pa.types.is_timestamp(kind):
            return pa.array(values, pa.timestamp("us", tz="UTC")).cast(kind)
    return pa.array(values, kind)


def _context_columns(table: pa.Table) -> pa.Table:
    """The measurements' context (JSON text with few distinct values) as one text column per
    key of `_CONTEXT`, and the after-care marks (`AFTER_DISCHARGE_DAYS`, `FOLLOW_UP_DAY`)
    as integer columns: each distinct text is decoded once, not each row in the database."""
    coded = pc.dictionary_encode(table["context"]).combine_chunks()
    decoded = [json.loads(text) for text in coded.dictionary.to_pylist()]
    out = table.drop_columns(["context"])
    for key in _CONTEXT:
        values = [c.get(key) if isinstance(c, dict) else None for c in decoded]
        text = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        out = out.append_column(key, pa.array(text, pa.string()).take(coded.indices))
    for key, name in (
        (AFTER_DISCHARGE_DAYS, "after_discharge_days"),
        (FOLLOW_UP_DAY, "follow_up_day"),
    ):
        ints = [_int(c.get(key)) if isinstance(c, dict) else None for c in decoded]
        out = out.append_column(name, pa.array(ints, pa.int32()).take(coded.indices))
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _split_after_care(measurements: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The measurements taken during care (what every outcome up to discharge reads) and
    the patients' answers given after care, apart."""
    after = pc.is_valid(measurements["after_discharge_days"])
    in_care = measurements.filter(pc.invert(after)).drop_columns(
        ["after_discharge_days", "follow_up_day"]
    )
    later = measurements.filter(after).select(AFTER_CARE.names).cast(AFTER_CARE)
    return in_care, later


def _schema(**fields: pa.DataType) -> pa.Schema:
    return pa.schema(list(fields.items()))


def load(reader: Reader) -> Dataset:
    """The reader's clinic, loaded for analysis."""
    reader.require(Permission.READ_CLINICAL)
    started = time.perf_counter()
    conn, clinic = reader.conn, reader.clinic_id
    d = conn.dialect.name
    e, p, u, s = t.episodes, t.patients, t.users, t.sessions
    episodes = _fetch(
        conn,
        sa.select(
            _text(e.c.id).label("episode_id"),
            _text(e.c.patient_id),
            _text(e.c.clinician_id).label("practitioner_id"),
            u.c.full_name.label("practitioner"),
            e.c.condition,
            _raw(e.c.onset_date, d),
            _raw(e.c.opened_on, d),
            _raw(e.c.closed_on, d),
            _text(e.c.status),
            _raw(p.c.birth_date, d),
            _text(p.c.sex),
        )
        .join(p, p.c.id == e.c.patient_id)
        .join(u, u.c.id == e.c.clinician_id)
        .where(e.c.clinic_id == clinic),
        _schema(
            episode_id=pa.string(),
            patient_id=pa.string(),
            practitioner_id=pa.string(),
            practitioner=pa.string(),
            condition=pa.string(),
            onset_date=pa.date32(),
            opened_on=pa.date32(),
            closed_on=pa.date32(),
            status=pa.string(),
            birth_date=pa.date32(),
            sex=pa.string(),
        ),
        d,
    )
    plan = _fetch(
        conn,
        sa.select(_text(t.plan_items.c.episode_id), _text(t.plan_items.c.modality)).where(
            t.plan_items.c.clinic_id == clinic
        ),
        _schema(episode_id=pa.string(), modality=pa.string()),
        d,
    )
    sessions = _fetch(
        conn,
        sa.select(
            _text(s.c.id).label("session_id"), _text(s.c.episode_id), _raw(s.c.started_at, d)
        ).where(s.c.clinic_id == clinic, SIGNED_ONLY),
        _schema(session_id=pa.string(), episode_id=pa.string(), started_at=_TS),
        d,
    )
    n = t.needling_sites
    active = sa.func.sum(sa.case((sa.cast(n.c.trigger_point, sa.String) == "active", 1), else_=0))
    sites = _fetch(
        conn,
        sa.select(
            _text(n.c.session_id),
            sa.func.count().label("sites"),
            active.label("active_trigger_points"),
        )
        .join(s, s.c.id == n.c.session_id)
        .where(n.c.clinic_id == clinic, SIGNED_ONLY)
        .group_by(n.c.session_id),
        _schema(session_id=pa.string(), sites=pa.int64(), active_trigger_points=pa.int64()),
        d,
    )
    techniques = _fetch(
        conn,
        sa.select(_text(s.c.episode_id), _text(n.c.technique), sa.func.count().label("sites"))
        .join(s, s.c.id == n.c.session_id)
        .where(n.c.clinic_id == clinic, SIGNED_ONLY)
        .group_by(s.c.episode_id, n.c.technique),
        _schema(episode_id=pa.string(), technique=pa.string(), sites=pa.int64()),
        d,
    )
    m = t.measurements
    qr = t.questionnaire_responses
    # Provenance: 1 where the patient submitted the score from home (issue 16).
    from_home = sa.case(
        (sa.exists().where(qr.c.measurement_id == m.c.id, qr.c.clinic_id == clinic), 1),
        else_=0,
    ).label("patient_reported")
    measurements = _fetch(
        conn,
        sa.select(
            _text(m.c.episode_id),
            _text(m.c.session_id),
            m.c.instrument_id,
            m.c.score,
            _raw(m.c.taken_at, d),
            sa.cast(m.c.context, sa.String).label("context"),
            from_home,
        ).where(
            m.c.clinic_id == clinic,
            m.c.episode_id.is_not(None),
            m.c.score.is_not(None),
            counts_toward_outcomes(m.c.session_id, s.c.clinic_id == clinic),
        ),
        _schema(
            episode_id=pa.string(),
            session_id=pa.string(),
            instrument_id=pa.string(),
            score=pa.float64(),
            taken_at=_TS,
            context=pa.string(),
            patient_reported=pa.int8(),
        ),
        d,
    )
    measurements, after_care = _split_after_care(_context_columns(measurements))
    mu = t.medication_uses
    logged = _fetch(
        conn,
        sa.select(
            _text(mu.c.episode_id),
            sa.func.lower(sa.func.trim(mu.c.drug)).label("drug"),
            _text(mu.c.drug_class),
            mu.c.days_per_week,
            _raw(mu.c.recorded_on, d),
            _raw(mu.c.created_at, d),
            _raw(e.c.closed_on, d),
        )
        .join(e, e.c.id == mu.c.episode_id)
        .where(mu.c.clinic_id == clinic, mu.c.episode_id.is_not(None)),
        MEDICATION.append(pa.field("closed_on", pa.date32())),
        d,
    )
    # An entry recorded after its episode's discharge answers (`logged_after_care`: past
    # the discharge questionnaire's grace) is an after-care entry, analysed apart.
    gap = pc.days_between(logged["closed_on"], logged["recorded_on"])
    later = pc.fill_null(pc.greater(gap, discharge_grace_days()), False)
    medication = logged.filter(pc.invert(later)).drop_columns(["closed_on"])
    after_care_medication = logged.filter(later).drop_columns(["closed_on"])
    a = t.adverse_events
    adverse = _fetch(
        conn,
        sa.select(_text(a.c.session_id), _text(a.c.kind), _text(a.c.severity)).where(
            a.c.clinic_id == clinic, counts_toward_outcomes(a.c.session_id, s.c.clinic_id == clinic)
        ),
        _schema(session_id=pa.string(), kind=pa.string(), severity=pa.string()),
        d,
    )
    keyed = integer_keys(
        {
            "episodes": episodes,
            "plan": plan,
            "sessions": sessions,
            "sites": sites,
            "techniques": techniques,
            "measurements": measurements,
            "medication": medication,
            "adverse_events": adverse,
            "after_care": after_care,
            "after_care_medication": after_care_medication,
        }
    )
    return Dataset(
        **keyed, loaded_in_s=time.perf_counter() - started, as_of=datetime.now(UTC).date()
    )


class Snapshot:
    """A loaded clinic as native DuckDB tables in memory: the form every analysis queries,
    built once per load (the web app and the benchmark keep it) and read through cursors
    (`Workspace`), each with its own temporary views.

    The tables hold the dataset's columns with integer episode and session keys, with two
    changes to the measurements: each row's instrument and context (joint, movement,
    side, site, location) become a `series_id` into `measurement_series` (one row per
    distinct series, context '' when absent), and the rows are stored clustered by series,
    episode and time, so that a query on one instrument reads only that instrument's row
    groups. Sessions are stored by episode and time."""

    def __init__(self, data: Dataset, *, threads: int | None = None) -> None:
        started = time.perf_counter()
        tables = data.tables()
        if pa.types.is_string(tables["episodes"].schema.field("episode_id").type):
            tables = integer_keys(tables)
        self.con = duckdb.connect(config={"threads": threads} if threads else {})
        order = {"sessions": "ORDER BY episode_id, started_at, session_id"}
        for name, table in tables.items():
            self.con.register("_arrow", table)
            if name == "measurements":
                self._measurements()
            else:
                self.con.execute(
                    f"CREATE TABLE {name} AS SELECT * FROM _arrow {order.get(name, '')}"
                )
            self.con.unregister("_arrow")
        self.built_in_s = time.perf_counter() - started
        self.loaded_in_s = data.loaded_in_s
        self.as_of = data.as_of  # the day the records were read

    def _measurements(self) -> None:
        context = ", ".join(f"coalesce({c}, '') AS {c}" for c in _CONTEXT)
        same = " AND ".join(f"s.{c} = coalesce(m.{c}, '')" for c in _CONTEXT)
        self.con.execute(f"""
CREATE TABLE measurement_series AS
SELECT (row_number() OVER (ORDER BY instrument_id, joint, movement, side, site, location))::INTEGER
         AS series_id, *
FROM (SELECT DISTINCT instrument_id, {context} FROM _arrow);

CREATE TABLE measurements AS
SELECT m.episode_id, m.session_id, s.series_id, m.instrument_id, m.score, m.taken_at,
       m.patient_reported
FROM _arrow m JOIN measurement_series s ON s.instrument_id = m.instrument_id AND {same}
ORDER BY s.series_id, m.episode_id, m.taken_at;
""")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the snapshot's tables (temporary views stay in it)."""
        return self.con.cursor()

    def rows(self) -> dict[str, int]:
        """Rows per table."""
        names = [r[0] for r in self.con.sql("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {n: int(self.con.sql(f"SELECT count(*) FROM {n}").fetchall()[0][0]) for n in names}
