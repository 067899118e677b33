"""analytics versions: each clinic's version of the records the analytics read

* analytics_versions: one row per clinic (created by its first write of analysed
  records), its version moved forward in the same transaction as every write that
  changes what the analytics read. Server processes compare it with the version of
  their cached analytics.
* PostgreSQL: row-level security as on the clinical tables (the application role sees
  and moves only its transaction's clinic's row), and explicit privileges.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "analytics_versions",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "changed_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinics.id"],
            name=op.f("fk_analytics_versions_clinic_id_clinics"),
        ),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_analytics_versions")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON analytics_versions TO {APP_ROLE}")
        op.execute("ALTER TABLE analytics_versions ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY clinic_isolation ON analytics_versions TO {APP_ROLE} "
            f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
            f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS clinic_isolation ON analytics_versions")
    op.drop_table("analytics_versions")
