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
    # Plain ADD COLUMN: SQLite does it in place, where a batch (copy-the-table) migration
    # would drop tables that other rows refer to. Existing rows get the server defaults,
    # which stay; the application always writes these columns itself.
    add = op.add_column
    add('clinics', sa.Column('jurisdiction', sa.String(16), nullable=False, server_default='none'))
    add('clinics', sa.Column('credential_policy', sa.Enum('warn', 'block', name='credentialpolicy', native_enum=False, create_constraint=False, length=32), nullable=False, server_default='warn'))
    add('clinics', sa.Column('screening_valid_days', sa.Integer(), nullable=False, server_default='90'))
    add('clinics', sa.Column('bill_sides_separately', sa.Boolean(), nullable=False, server_default=sa.false()))
    add('clinics', sa.Column('min_training_hours', sa.Float(), nullable=True))
    add('clinics', sa.Column('min_licence_years', sa.Float(), nullable=True))
    add('training_records', sa.Column('supervised_sessions', sa.Integer(), nullable=True))
    add('consents', sa.Column('signature', sa.Text(), nullable=True))
    add('screenings', sa.Column('acknowledged', JSON, nullable=False, server_default='[]'))
    add('sessions', sa.Column('safety_flags', JSON, nullable=False, server_default='[]'))
    add('sessions', sa.Column('cpt_code', sa.String(8), nullable=True))
    add('sessions', sa.Column('billing_muscles', sa.Integer(), nullable=True))
    add('needling_sites', sa.Column('override_reason', sa.Text(), nullable=True))


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
