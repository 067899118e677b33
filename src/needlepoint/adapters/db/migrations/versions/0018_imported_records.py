"""imported records: provenance of patients, episodes and sessions imported from another
system (issue 17 item 2)

* imported_records: one row per imported record (kind patient, episode or session; its
  id; the other system's id; who imported it and when). Unique per clinic, source, kind
  and external id: a re-run of an import skips the patients already here.
* PostgreSQL: under row-level security like the clinical tables.

Revision ID: 0018
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
RLS_TABLES = ("imported_records",)


def upgrade() -> None:
    op.create_table(
        "imported_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("imported_by", sa.Uuid(), nullable=False),
        sa.Column(
            "imported_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_imported_records_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_imported_records_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["imported_by"], ["users.id"], name=op.f("fk_imported_records_imported_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_records")),
        sa.UniqueConstraint(
            "clinic_id",
            "source",
            "kind",
            "external_id",
            name=op.f("uq_imported_records_clinic_id_source_kind_external_id"),
        ),
    )
    with op.batch_alter_table("imported_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imported_records_record_id"), ["record_id"])
        batch_op.create_index(batch_op.f("ix_imported_records_patient_id"), ["patient_id"])
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
    with op.batch_alter_table("imported_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imported_records_patient_id"))
        batch_op.drop_index(batch_op.f("ix_imported_records_record_id"))
    op.drop_table("imported_records")
