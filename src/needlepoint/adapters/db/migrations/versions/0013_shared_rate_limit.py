"""the API rate limit shared by the serving processes

* rate_usage: per serving process and caller key, how many API requests it admitted (a
  running total, and when it started), written about twice a second. Not a clinical record: no clinic, no
  row-level security; the application role may read and write it like the sign-in log.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_usage",
        sa.Column("worker", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column(
            "started_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("worker", "key", name=op.f("pk_rate_usage")),
    )
    with op.batch_alter_table("rate_usage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_usage_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_usage_updated_at"))
    op.drop_table("rate_usage")
