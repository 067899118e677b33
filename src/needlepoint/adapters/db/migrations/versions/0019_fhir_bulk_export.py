"""FHIR bulk export jobs (issue 17 item 1): a clinic-level `$export` runs in a background
thread; its state and its NDJSON output live in the database, so any serving process can
answer the status poll and serve the files.

* fhir_export_jobs: one row per kick-off: who asked, for which resource types, the status
  (running, completed, failed, cancelled), progress, the manifest's output list.
* fhir_export_chunks: the NDJSON files, in pieces of about 1 MiB each (resource type,
  sequence number, lines), written as the job goes and streamed back in order.
* PostgreSQL: both under row-level security like the clinical tables.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
RLS_TABLES = ("fhir_export_jobs", "fhir_export_chunks")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "fhir_export_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("types", needlepoint.adapters.db.types.JSONType, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("requested_at"),
        _at("updated_at"),
        _at("finished_at", nullable=True),
        sa.Column("patients_total", sa.Integer(), nullable=False),
        sa.Column("patients_done", sa.Integer(), nullable=False),
        sa.Column("output", needlepoint.adapters.db.types.JSONType, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_fhir_export_jobs_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_fhir_export_jobs_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_export_jobs")),
    )
    with op.batch_alter_table("fhir_export_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fhir_export_jobs_clinic_id_requested_at"),
            ["clinic_id", "requested_at"],
        )
    op.create_table(
        "fhir_export_chunks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_fhir_export_chunks_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["fhir_export_jobs.id"], name=op.f("fk_fhir_export_chunks_job_id_fhir_export_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_export_chunks")),
        sa.UniqueConstraint(
            "job_id", "resource_type", "seq",
            name=op.f("uq_fhir_export_chunks_job_id_resource_type_seq"),
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in RLS_TABLES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {table}")
            op.execute(
                f"CREATE POLICY clinic_isolation ON {table} TO {APP_ROLE} "
                f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
                f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})"
            )


def downgrade() -> None:
    op.drop_table("fhir_export_chunks")
    with op.batch_alter_table("fhir_export_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_export_jobs_clinic_id_requested_at"))
    op.drop_table("fhir_export_jobs")
