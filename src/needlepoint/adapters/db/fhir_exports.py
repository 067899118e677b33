"""The FHIR bulk export's state and files in the database (`fhir_export_jobs`,
`fhir_export_chunks`): any serving process answers the status poll and serves the files.
Each function runs in its own short transaction scoped to the clinic (row-level
security on PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa

from needlepoint.adapters.db.engine import scope_to_clinic
from needlepoint.adapters.db.tables import fhir_export_chunks, fhir_export_jobs

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"

STALE_AFTER = timedelta(minutes=10)
"""A running job whose process has not written for this long died with it: failed."""

KEPT_FOR = timedelta(hours=24)
"""How long a finished export's files are served (a product default: the Bulk Data
specification leaves it to the server). Later its files are deleted: a copy of every
record must not outlive the reason it was made, nor a change of who may read them."""


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: UUID
    clinic_id: UUID
    requested_by: UUID
    request_url: str
    types: list[str]
    status: str
    requested_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    patients_total: int
    patients_done: int
    output: list[dict[str, Any]] | None
    error: str | None

    def current_status(self, now: datetime) -> str:
        """The status, with a running job that stopped writing long ago seen as failed,
        and a finished one past `KEPT_FOR` as expired."""
        if self.status == RUNNING and now - self.updated_at > STALE_AFTER:
            return FAILED
        if self.status == COMPLETED and now - (self.finished_at or self.updated_at) > KEPT_FOR:
            return EXPIRED
        return self.status


def _now() -> datetime:
    return datetime.now(UTC)


def create_job(
    engine: sa.Engine,
    clinic_id: UUID,
    requested_by: UUID,
    request_url: str,
    types: list[str],
    patients_total: int,
) -> ExportJob:
    now = _now()
    job = ExportJob(
        id=uuid4(),
        clinic_id=clinic_id,
        requested_by=requested_by,
        request_url=request_url,
        types=types,
        status=RUNNING,
        requested_at=now,
        updated_at=now,
        finished_at=None,
        patients_total=patients_total,
        patients_done=0,
        output=None,
        error=None,
    )
    with engine.begin() as conn:
        scope_to_clinic(conn, clinic_id)
        conn.execute(sa.insert(fhir_export_jobs).values(**dataclasses.asdict(job)))
    return job


def _as_job(row: Any) -> ExportJob:
    return ExportJob(**row._mapping)


def get_job(conn: sa.Connection, clinic_id: UUID, job_id: UUID) -> ExportJob | None:
    """The job of this clinic with this id, read on the caller's (scoped) connection."""
    row = conn.execute(
        sa.select(fhir_export_jobs).where(
            fhir_export_jobs.c.clinic_id == clinic_id, fhir_export_jobs.c.id == job_id
        )
    ).first()
    return None if row is None else _as_job(row)


def load_job(engine: sa.Engine, clinic_id: UUID, job_id: UUID) -> ExportJob | None:
    with engine.connect() as conn:
        scope_to_clinic(conn, clinic_id)
        return get_job(conn, clinic_id, job_id)


def progress(engine: sa.Engine, job: ExportJob, patients_done: int) -> str:
    """Record progress; return the job's status now (a cancelled job stops)."""
    with engine.begin() as conn:
        scope_to_clinic(conn, job.clinic_id)
        conn.execute(
            sa.update(fhir_export_jobs)
            .where(fhir_export_jobs.c.id == job.id, fhir_export_jobs.c.status == RUNNING)
            .values(patients_done=patients_done, updated_at=_now())
        )
        status = conn.execute(
            sa.select(fhir_export_jobs.c.status).where(fhir_export_jobs.c.id == job.id)
        ).scalar_one()
    return str(status)


def write_chunk(
    engine: sa.Engine, job: ExportJob, resource_type: str, seq: int, lines: int, data: str
) -> None:
    with engine.begin() as conn:
        scope_to_clinic(conn, job.clinic_id)
        conn.execute(
            sa.insert(fhir_export_chunks).values(
                id=uuid4(),
                clinic_id=job.clinic_id,
                job_id=job.id,
                resource_type=resource_type,
                seq=seq,
                lines=lines,
                data=data,
            )
        )


def finish(
    engine: sa.Engine,
    job: ExportJob,
    status: str,
    *,
    output: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> bool:
    """End a running job; False when it was cancelled meanwhile (it stays cancelled)."""
    now = _now()
    with engine.begin() as conn:
        scope_to_clinic(conn, job.clinic_id)
        done = conn.execute(
            sa.update(fhir_export_jobs)
            .where(fhir_export_jobs.c.id == job.id, fhir_export_jobs.c.status == RUNNING)
            .values(status=status, output=output, error=error, updated_at=now, finished_at=now)
        )
    return bool(done.rowcount)


def cancel(engine: sa.Engine, job: ExportJob) -> None:
    """Cancel a job and delete its files (a finished job's files too)."""
    now = _now()
    with engine.begin() as conn:
        scope_to_clinic(conn, job.clinic_id)
        conn.execute(
            sa.update(fhir_export_jobs)
            .where(fhir_export_jobs.c.id == job.id)
            .values(status=CANCELLED, updated_at=now, finished_at=now, output=None)
        )
        conn.execute(sa.delete(fhir_export_chunks).where(fhir_export_chunks.c.job_id == job.id))


def delete_chunks(engine: sa.Engine, job: ExportJob) -> None:
    with engine.begin() as conn:
        scope_to_clinic(conn, job.clinic_id)
        conn.execute(sa.delete(fhir_export_chunks).where(fhir_export_chunks.c.job_id == job.id))


def chunk_count(engine: sa.Engine, job: ExportJob, resource_type: str) -> int:
    with engine.connect() as conn:
        scope_to_clinic(conn, job.clinic_id)
        found = conn.execute(
            sa.select(sa.func.count()).where(
                fhir_export_chunks.c.job_id == job.id,
                fhir_export_chunks.c.resource_type == resource_type,
            )
        ).scalar_one()
    return int(found)


def read_chunks(engine: sa.Engine, job: ExportJob, resource_type: str) -> Iterator[str]:
    """The file's pieces in order, each read on its own short connection (a download
    holds one piece in memory at a time and no connection between pieces)."""
    seq = 0
    while True:
        with engine.connect() as conn:
            scope_to_clinic(conn, job.clinic_id)
            data = conn.execute(
                sa.select(fhir_export_chunks.c.data).where(
                    fhir_export_chunks.c.clinic_id == job.clinic_id,
                    fhir_export_chunks.c.job_id == job.id,
                    fhir_export_chunks.c.resource_type == resource_type,
                    fhir_export_chunks.c.seq == seq,
                )
            ).scalar()
        if data is None:
            return
        yield str(data)
        seq += 1
