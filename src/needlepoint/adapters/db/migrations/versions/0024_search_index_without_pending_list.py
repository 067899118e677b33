"""patient search index without a pending list (PostgreSQL)

The trigram index of revision 0022 was made with GIN's default `fastupdate`: a new
patient's entries wait in a pending list until the next vacuum, and the planner, which
must read that whole list on every search, prices the index above reading the table. A
clinic generated, imported or simply busy before autovacuum came by searched every
patient one by one: measured on a 2,000-patient clinic, 2.7 ms a search instead of
0.3 ms, and under bench/clinic_day.py's load a quarter of PostgreSQL's CPU. Patients are
added far less often than searched, so each new patient now goes straight into the
index; the entries already waiting are moved in now.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

INDEX = "ix_patients_search_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX {INDEX} SET (fastupdate = off)")
    op.execute(f"SELECT gin_clean_pending_list('{INDEX}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX {INDEX} RESET (fastupdate)")
