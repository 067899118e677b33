"""A generated (synthetic) clinic written out as another EMR would export it, in the
import's CSV layout (docs/import.md): the input of the import benchmark
(`bench/import_clinic.py`), of the import's round-trip tests and of the documented
example.

A generator tool for synthetic data only: it reads the tables directly (no audited
read), which is right for a clinic made up by `synthetic.clinic` and wrong for real
patients. The other system's ids are ours, prefixed (`P-…`, `E-…`, `S-…`); clinicians
are named by e-mail. What the layout does not carry (screenings, consents, analgesic
use, referrals, plan items) is not written; measurements outside any episode neither."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from needlepoint.adapters.db.tables import (
    adverse_events,
    amendments,
    co_interventions,
    episodes,
    measurements,
    needling_sites,
    patients,
    sessions,
    users,
)
from needlepoint.domain.enums import SessionStatus
from needlepoint.importing.csv_reader import LAYOUT_BY_NAME


@dataclass
class ExportCounts:
    patients: int = 0
    episodes: int = 0
    sessions: int = 0
    sites: int = 0
    measurements: int = 0
    skipped_measurements: int = 0  # outside any episode: not in the layout


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)


def _pairs(mapping: dict[str, Any] | None) -> str:
    if not mapping:
        return ""
    return ";".join(f"{k}={_text(v)}" for k, v in mapping.items())


class _Writer:
    def __init__(self, folder: Path, name: str) -> None:
        self.layout = LAYOUT_BY_NAME[name]
        self.handle = (folder / name).open("w", newline="", encoding="utf-8")
        self.csv = csv.writer(self.handle)
        self.csv.writerow(self.layout.columns)

    def row(self, values: dict[str, Any]) -> None:
        self.csv.writerow([_text(values.get(c)) for c in self.layout.columns])

    def close(self) -> None:
        self.handle.close()


def _pid(id: UUID) -> str:
    return f"P-{id}"


def _eid(id: UUID) -> str:
    return f"E-{id}"


def _sid(id: UUID) -> str:
    return f"S-{id}"


def export_clinic_csv(engine: sa.Engine, clinic_id: UUID, folder: Path) -> ExportCounts:
    """Write the clinic's patients, episodes, notes (with sites, co-interventions, adverse
    events, amendments) and measurements into `folder` in the import's CSV layout."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = ExportCounts()
    writers = {name: _Writer(folder, name) for name in LAYOUT_BY_NAME}
    try:
        with engine.connect() as conn:
            email = {
                r.id: r.email
                for r in conn.execute(
                    sa.select(users.c.id, users.c.email).where(users.c.clinic_id == clinic_id)
                )
            }
            patient_of_session: dict[UUID, UUID] = {}
            for r in _rows(conn, patients, clinic_id, patients.c.mrn):
                counts.patients += 1
                writers["patients.csv"].row({**r, "external_id": _pid(r["id"])})
            for r in _rows(conn, episodes, clinic_id, episodes.c.opened_on):
                counts.episodes += 1
                writers["episodes.csv"].row(
                    {
                        **r,
                        "patient_external_id": _pid(r["patient_id"]),
                        "external_id": _eid(r["id"]),
                        "clinician_email": email[r["clinician_id"]],
                    }
                )
            for r in _rows(conn, sessions, clinic_id, sessions.c.started_at):
                counts.sessions += 1
                patient_of_session[r["id"]] = r["patient_id"]
                signed = r["status"] == SessionStatus.SIGNED
                writers["sessions.csv"].row(
                    {
                        **r,
                        "patient_external_id": _pid(r["patient_id"]),
                        "episode_external_id": _eid(r["episode_id"]),
                        "external_id": _sid(r["id"]),
                        "clinician_email": email[r["clinician_id"]],
                        "signed_by_email": email[r["signed_by"]] if signed else None,
                        "signed_at": r["signed_at"] if signed else None,
                    }
                )

            def child(r: dict[str, Any]) -> dict[str, Any]:
                return {
                    **r,
                    "patient_external_id": _pid(patient_of_session[r["session_id"]]),
                    "session_external_id": _sid(r["session_id"]),
                }

            order = (needling_sites.c.session_id, needling_sites.c.position)
            for r in _rows(conn, needling_sites, clinic_id, *order):
                counts.sites += 1
                estim = r["estim_params"] or {}
                writers["sites.csv"].row(
                    {
                        **child(r),
                        "estim_frequency_hz": estim.get("frequency_hz"),
                        "estim_intensity_ma": estim.get("intensity_ma"),
                        "estim_minutes": estim.get("minutes"),
                    }
                )
            order = (co_interventions.c.session_id, co_interventions.c.position)
            for r in _rows(conn, co_interventions, clinic_id, *order):
                writers["co_interventions.csv"].row(child(r))
            for r in _rows(conn, adverse_events, clinic_id, adverse_events.c.onset_at):
                if r["session_id"] is not None:
                    writers["adverse_events.csv"].row(child(r))
            for r in _rows(conn, amendments, clinic_id, amendments.c.created_at):
                writers["amendments.csv"].row(
                    {
                        **child(r),
                        "author_email": email[r["author_id"]],
                        "written_at": r["created_at"],
                    }
                )
            for r in _rows(conn, measurements, clinic_id, measurements.c.taken_at):
                if r["episode_id"] is None:
                    counts.skipped_measurements += 1
                    continue
                counts.measurements += 1
                writers["measurements.csv"].row(
                    {
                        **r,
                        "patient_external_id": _pid(r["patient_id"]),
                        "episode_external_id": _eid(r["episode_id"]),
                        "session_external_id": _sid(r["session_id"]) if r["session_id"] else None,
                        "answers": _pairs(r["answers"]),
                        "context": _pairs(r["context"]),
                    }
                )
    finally:
        for w in writers.values():
            w.close()
    return counts


def _rows(
    conn: sa.Connection, table: sa.Table, clinic_id: UUID, *order: Any
) -> Iterable[dict[str, Any]]:
    stmt = sa.select(table).where(table.c.clinic_id == clinic_id).order_by(*order, table.c.id)
    for row in conn.execute(stmt).mappings():
        yield dict(row)


def copy_staff(source: sa.Engine, clinic_id: UUID, target: sa.Engine, name: str) -> UUID:
    """A new clinic in `target` with the staff of the clinic `clinic_id` in `source` (the
    same e-mails, names, roles and licences, through the actions): the importing clinic
    of the benchmark and the tests, whose clinicians the export names by e-mail. Returns
    the new owner's id."""
    from needlepoint.actions.clinics import register_clinic, register_user
    from needlepoint.actions.context import Actor
    from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
    from needlepoint.domain.commands import RegisterClinic, RegisterUser
    from needlepoint.domain.enums import Role

    with source.connect() as conn:
        staff = list(
            conn.execute(
                sa.select(users).where(users.c.clinic_id == clinic_id).order_by(users.c.created_at)
            ).mappings()
        )
    owner_row = next(r for r in staff if r["role"] == Role.OWNER)
    owner = register_clinic(
        SqlUnitOfWork(target),
        RegisterClinic(
            name=name, owner_email=owner_row["email"], owner_name=owner_row["full_name"]
        ),
        source="generator",
    )
    actor = Actor(owner.id, owner.clinic_id, source="generator")
    for r in staff:
        if r["id"] == owner_row["id"]:
            continue
        register_user(
            SqlUnitOfWork(target),
            actor,
            RegisterUser(
                email=r["email"],
                full_name=r["full_name"],
                role=r["role"],
                licence_number=r["licence_number"],
                licence_date=r["licence_date"],
            ),
        )
    return owner.id
