"""screening history and guardians: cleared findings on screenings, the signer's
relationship on consents

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): SQLite adds it in place; a batch migration would copy
    # tables that other rows refer to. Older rows keep NULL: "cleared nothing" and
    # "relationship not asked".
    op.add_column('screenings', sa.Column('clearances', JSON, nullable=True))
    op.add_column('consents', sa.Column('signer_relationship', sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column('consents', 'signer_relationship')
    op.drop_column('screenings', 'clearances')
