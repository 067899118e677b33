"""The FHIR Bulk Data export of a whole clinic (`GET /fhir/R4/$export`): kick-off, the job
in a background thread, its NDJSON files per resource type.

The job reads the clinic's patients a page at a time (keyset by id), maps each page to
resources, and appends each resource's JSON line to its type's buffer; a buffer past
`CHUNK_BYTES` is written to the database as one piece of that type's file. Memory stays
bounded by one page of records plus one buffer per type, whatever the clinic's size.
Each page is read by its own reader, so each patient exported is on the audit trail as
a disclosure (`records.disclosed`) as the job goes. The state lives in the database
(`adapters.db.fhir_exports`): any serving process answers the status poll."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from uuid import UUID

import orjson
import sqlalchemy as sa

from needlepoint.adapters.db import fhir_exports as store
from needlepoint.adapters.fhir import mapping
from needlepoint.domain.enums import Role
from needlepoint.domain.errors import InvalidInput
from needlepoint.queries import fhir
from needlepoint.queries.reader import Reader, open_reader

PAGE_SIZE = 100
CHUNK_BYTES = 1 << 20  # about 1 MiB of NDJSON per stored piece


def requested_types(type_param: str | None) -> list[str]:
    """The resource types asked for (`_type`, comma-separated), or all of them; an
    unknown type is refused, naming it."""
    if not type_param:
        return list(mapping.RESOURCE_TYPES)
    asked = [t.strip() for t in type_param.split(",") if t.strip()]
    unknown = [t for t in asked if t not in mapping.RESOURCE_TYPES]
    if unknown:
        raise InvalidInput(
            f"_type: {', '.join(unknown)} not exported (exported: "
            f"{', '.join(mapping.RESOURCE_TYPES)})",
            field="_type",
        )
    return [t for t in mapping.RESOURCE_TYPES if t in asked]


def kick_off(
    reader: Reader, engine: sa.Engine, request_url: str, types: list[str]
) -> store.ExportJob:
    """Check the caller may export the clinic, create the job and note the disclosure;
    the caller then starts `run` (in a thread: `start_in_background`)."""
    fhir.require_clinic_export(reader)
    job = store.create_job(
        engine,
        reader.clinic_id,
        reader.user_id,
        request_url,
        types,
        fhir.count_patients(reader),
    )
    fhir.note_disclosed(reader, "fhir_bulk_export", job.id, None)
    return job


@dataclass
class _File:
    """One resource type's NDJSON file being written: the buffer and what was stored."""

    resource_type: str
    lines: list[str] = field(default_factory=list)
    size: int = 0
    seq: int = 0
    count: int = 0

    def add(self, line: str) -> bool:
        """Append a line; True when the buffer should be written out."""
        self.lines.append(line)
        self.size += len(line) + 1
        self.count += 1
        return self.size >= CHUNK_BYTES

    def flush(self, engine: sa.Engine, job: store.ExportJob) -> None:
        if not self.lines:
            return
        store.write_chunk(
            engine,
            job,
            self.resource_type,
            self.seq,
            len(self.lines),
            "\n".join(self.lines) + "\n",
        )
        self.seq += 1
        self.lines = []
        self.size = 0


@dataclass(frozen=True, slots=True)
class Requester:
    """Who kicked the export off (each page is read as them)."""

    clinic_id: UUID
    user_id: UUID
    role: Role
    request_id: str | None = None
    source_address: str | None = None


def run(
    engine: sa.Engine,
    job: store.ExportJob,
    requester: Requester,
    file_url: Callable[[str], str],
    *,
    page_size: int = PAGE_SIZE,
) -> None:
    """Export the clinic into the job's files; finish the job completed (with the
    manifest's output list), failed (with the error), or leave it cancelled."""
    try:
        files = {t: _File(t) for t in job.types}

        def emit(resource: mapping.Json) -> None:
            out = files.get(resource["resourceType"])
            if out is not None and out.add(orjson.dumps(resource).decode()):
                out.flush(engine, job)

        if "Questionnaire" in files:
            for q in mapping.all_questionnaires():
                emit(q)
        with _reader(engine, requester) as r:
            if "Practitioner" in files:
                for p in fhir.practitioners(r):
                    emit(mapping.practitioner_resource(p))
        after: UUID | None = None
        done = 0
        while True:
            with _reader(engine, requester) as r:
                page = fhir.patient_page(r, page_size, after)
                if not page:
                    break
                for record in fhir.load_records(r, page):
                    fhir.note_disclosed(r, "fhir_bulk_export", job.id, record.patient.id)
                    for resource in mapping.patient_resources(record):
                        emit(resource)
            after = page[-1].id
            done += len(page)
            if store.progress(engine, job, done) != store.RUNNING:
                store.delete_chunks(engine, job)  # cancelled meanwhile
                return
        for out in files.values():
            out.flush(engine, job)
        output = [
            {"type": t, "url": file_url(t), "count": out.count}
            for t, out in files.items()
            if out.count
        ]
        if not store.finish(engine, job, store.COMPLETED, output=output):
            store.delete_chunks(engine, job)  # cancelled while the last pieces were written
    except Exception as exc:  # the job fails; the poller sees why
        store.finish(engine, job, store.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _reader(engine: sa.Engine, requester: Requester) -> AbstractContextManager[Reader]:
    return open_reader(
        engine,
        requester.clinic_id,
        requester.role,
        requester.user_id,
        source="api",
        request_id=requester.request_id,
        source_address=requester.source_address,
    )


def start_in_background(
    engine: sa.Engine,
    job: store.ExportJob,
    requester: Requester,
    file_url: Callable[[str], str],
) -> threading.Thread:
    """Run the export in a daemon thread (the request that kicked it off returns 202)."""

    def target() -> None:
        with contextlib.suppress(Exception):  # recorded on the job by `run`
            run(engine, job, requester, file_url)

    thread = threading.Thread(target=target, name=f"fhir-export-{job.id}", daemon=True)
    thread.start()
    return thread
