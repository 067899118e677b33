"""needling sites: the structured override reason and the needle's approach (issue 13)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('needling_sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('override_code', sa.Enum('imaging_guided', 'technique_modified', 'condition_resolved', 'specialist_clearance', 'informed_patient_choice', name='overridecode', native_enum=False, create_constraint=False, length=32), nullable=True))
        batch_op.add_column(sa.Column('approach', sa.Enum('pincer', 'tangential', 'over_bone', 'perpendicular', name='approach', native_enum=False, create_constraint=False, length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('needling_sites', schema=None) as batch_op:
        batch_op.drop_column('approach')
        batch_op.drop_column('override_code')
