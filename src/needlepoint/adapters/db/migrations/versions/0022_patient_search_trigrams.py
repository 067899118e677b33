"""patient search on PostgreSQL: one trigram index over name and MRN

The search keeps the patients whose given name, family name or MRN contains every word
typed, in any case. SQLite answers it from the covering index of revision 0014.
PostgreSQL compared three `ILIKE '%word%'` per patient of the clinic, one by one: about
2 ms a search at 2,000 patients, ten times that at 20,000, run twice a search (the
count and the page). Now the search compares one string, the name and MRN joined by
spaces (a word holds no space, so it matches the joined string exactly when it matches
one of the three), and a GIN trigram index on that string (`pg_trgm`, a trusted
extension: the database's owner may create it) finds the candidates in a large clinic;
in a small one the planner may still read the table, comparing one string instead of
three.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

INDEX = "ix_patients_search_trgm"
SEARCHED = "(given_name || ' ' || family_name || ' ' || mrn)"
"""The joined string the search compares (`queries.patients`), as the index holds it."""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON patients USING gin ({SEARCHED} gin_trgm_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
