"""patient search index: covers the name/MRN search and its ordering

The search filters a clinic's patients by name or MRN and orders them by name; with
the id and MRN in the index, SQLite answers both the count and the page from the index
alone instead of visiting every patient row.

Revision ID: 0014
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0008"
branch_labels = None
depends_on = None

_OLD = ("clinic_id", "family_name", "given_name")
_NEW = ("clinic_id", "family_name", "given_name", "id", "mrn")


def upgrade() -> None:
    op.drop_index("ix_patients_" + "_".join(_OLD), table_name="patients")
    op.create_index("ix_patients_" + "_".join(_NEW), "patients", list(_NEW))


def downgrade() -> None:
    op.drop_index("ix_patients_" + "_".join(_NEW), table_name="patients")
    op.create_index("ix_patients_" + "_".join(_OLD), "patients", list(_OLD))
