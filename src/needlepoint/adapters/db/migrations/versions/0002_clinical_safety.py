"""clinical safety: clinic settings, screening acknowledgements, consent signature,
site overrides, session safety flags and billing codes, supervised sessions

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import needlepoint.adapters.db.types
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # Existing rows get the defaults; the server defaults are then dropped so that the
    # application (the entities) stays the one place defaults are decided.
    with op.batch_alter_table('clinics') as batch:
        batch.add_column(sa.Column('jurisdiction', sa.String(16), nullable=False, server_default='none'))
        batch.add_column(sa.Column('credential_policy', sa.Enum('warn', 'block', name='credentialpolicy', native_enum=False, create_constraint=False, length=32), nullable=False, server_default='warn'))
        batch.add_column(sa.Column('screening_valid_days', sa.Integer(), nullable=False, server_default='90'))
        batch.add_column(sa.Column('bill_sides_separately', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('min_training_hours', sa.Float(), nullable=True))
        batch.add_column(sa.Column('min_licence_years', sa.Float(), nullable=True))
    with op.batch_alter_table('training_records') as batch:
        batch.add_column(sa.Column('supervised_sessions', sa.Integer(), nullable=True))
    with op.batch_alter_table('consents') as batch:
        batch.add_column(sa.Column('signature', sa.Text(), nullable=True))
    with op.batch_alter_table('screenings') as batch:
        batch.add_column(sa.Column('acknowledged', JSON, nullable=False, server_default='[]'))
    with op.batch_alter_table('sessions') as batch:
        batch.add_column(sa.Column('safety_flags', JSON, nullable=False, server_default='[]'))
        batch.add_column(sa.Column('cpt_code', sa.String(8), nullable=True))
        batch.add_column(sa.Column('billing_muscles', sa.Integer(), nullable=True))
    with op.batch_alter_table('needling_sites') as batch:
        batch.add_column(sa.Column('override_reason', sa.Text(), nullable=True))
    for table, columns in {
        'clinics': ['jurisdiction', 'credential_policy', 'screening_valid_days', 'bill_sides_separately'],
        'screenings': ['acknowledged'],
        'sessions': ['safety_flags'],
    }.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, server_default=None)


def downgrade() -> None:
    for table, columns in {
        'needling_sites': ['override_reason'],
        'sessions': ['billing_muscles', 'cpt_code', 'safety_flags'],
        'screenings': ['acknowledged'],
        'consents': ['signature'],
        'training_records': ['supervised_sessions'],
        'clinics': ['min_licence_years', 'min_training_hours', 'bill_sides_separately',
                    'screening_valid_days', 'credential_policy', 'jurisdiction'],
    }.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
