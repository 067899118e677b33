"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 19:37:15.287772
"""
from alembic import op
import sqlalchemy as sa
import needlepoint.adapters.db.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('clinics',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinics'))
    )
    op.create_table('patients',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('mrn', sa.String(length=64), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.Enum('female', 'male', 'other', 'unknown', name='sex', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_patients_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('clinic_id', 'mrn', name=op.f('uq_patients_clinic_id_mrn'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_clinic_id_family_name_given_name'), ['clinic_id', 'family_name', 'given_name'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('owner', 'clinician', 'student', 'assistant', 'auditor', name='role', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('licence_number', sa.String(length=64), nullable=True),
    sa.Column('licence_date', sa.Date(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_users_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_clinic_id'), ['clinic_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_api_tokens_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('action', sa.Enum('clinic.registered', 'user.registered', 'user.api_token_issued', 'patient.registered', 'patient.updated', 'episode.opened', 'episode.closed', 'session.recorded', 'session.updated', 'session.signed', 'session.amended', 'measurement.recorded', 'medication.recorded', name='auditaction', native_enum=False, length=32), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=False),
    sa.Column('occurred_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('before_digest', sa.String(length=64), nullable=True),
    sa.Column('after_digest', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_audit_events_actor_user_id_users')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_audit_events_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_audit_events_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_clinic_id_occurred_at'), ['clinic_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_entity_id'), ['entity_id'], unique=False)

    op.create_table('consents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('template_version', sa.String(length=32), nullable=False),
    sa.Column('signer_name', sa.String(length=200), nullable=False),
    sa.Column('method', sa.Enum('signature', 'typed_name', 'witness', name='consentmethod', native_enum=False, length=32), nullable=False),
    sa.Column('signed_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('copy_given', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('witness_name', sa.String(length=200), nullable=True),
    sa.Column('withdrawn_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_consents_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_consents_patient_id_patients')),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_consents_recorded_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_patient_id'), ['patient_id'], unique=False)

    op.create_table('episodes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('clinician_id', sa.Uuid(), nullable=False),
    sa.Column('condition', sa.String(length=64), nullable=False),
    sa.Column('icd10_code', sa.String(length=16), nullable=False),
    sa.Column('body_region', sa.String(length=32), nullable=False),
    sa.Column('onset_date', sa.Date(), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('goals', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='episodestatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('discharge_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_episodes_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['clinician_id'], ['users.id'], name=op.f('fk_episodes_clinician_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_episodes_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_episodes'))
    )
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_episodes_clinic_id_condition'), ['clinic_id', 'condition'], unique=False)
        batch_op.create_index(batch_op.f('ix_episodes_patient_id'), ['patient_id'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('referrer_name', sa.String(length=200), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_referrals_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_referrals_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referrals_patient_id'), ['patient_id'], unique=False)

    op.create_table('screenings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('decision', sa.Enum('contraindicated', 'precautions', 'clear', name='screeningdecision', native_enum=False, length=32), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('rules_version', sa.String(length=32), nullable=False),
    sa.Column('screened_by', sa.Uuid(), nullable=False),
    sa.Column('screened_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('override_justification', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_screenings_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_screenings_patient_id_patients')),
    sa.ForeignKeyConstraint(['screened_by'], ['users.id'], name=op.f('fk_screenings_screened_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screenings'))
    )
    with op.batch_alter_table('screenings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screenings_patient_id'), ['patient_id'], unique=False)

    op.create_table('training_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('course', sa.String(length=200), nullable=False),
    sa.Column('hours_in_person', sa.Float(), nullable=False),
    sa.Column('hours_online', sa.Float(), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=False),
    sa.Column('exam_passed', sa.Boolean(), nullable=False),
    sa.Column('regions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_training_records_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_training_records_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_records'))
    )
    with op.batch_alter_table('training_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_records_user_id'), ['user_id'], unique=False)

    op.create_table('medication_uses',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('drug', sa.String(length=100), nullable=False),
    sa.Column('drug_class', sa.Enum('paracetamol', 'nsaid', 'opioid', 'muscle_relaxant', 'neuropathic', 'other', name='drugclass', native_enum=False, length=32), nullable=False),
    sa.Column('days_per_week', sa.Integer(), nullable=False),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=True),
    sa.Column('dose_mg', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_medication_uses_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_medication_uses_episode_id_episodes')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_medication_uses_patient_id_patients')),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_medication_uses_recorded_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medication_uses'))
    )
    with op.batch_alter_table('medication_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_medication_uses_patient_id'), ['patient_id'], unique=False)

    op.create_table('plan_items',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=False),
    sa.Column('modality', sa.Enum('dry_needling', 'manual_therapy', 'exercise', 'education', 'other', name='modality', native_enum=False, length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sessions_per_week', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_plan_items_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_plan_items_episode_id_episodes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_items'))
    )
    with op.batch_alter_table('plan_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_items_episode_id'), ['episode_id'], unique=False)

    op.create_table('sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=False),
    sa.Column('clinician_id', sa.Uuid(), nullable=False),
    sa.Column('started_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('subjective', sa.Text(), nullable=False),
    sa.Column('objective', sa.Text(), nullable=False),
    sa.Column('assessment', sa.Text(), nullable=False),
    sa.Column('plan', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'signed', name='sessionstatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signed_by', sa.Uuid(), nullable=True),
    sa.Column('signed_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_sessions_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['clinician_id'], ['users.id'], name=op.f('fk_sessions_clinician_id_users')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_sessions_episode_id_episodes')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_sessions_patient_id_patients')),
    sa.ForeignKeyConstraint(['signed_by'], ['users.id'], name=op.f('fk_sessions_signed_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_episode_id_started_at'), ['episode_id', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_patient_id'), ['patient_id'], unique=False)

    op.create_table('adverse_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('bruising', 'bleeding', 'pain_during', 'pain_after', 'worse_symptoms', 'drowsiness', 'headache', 'nausea', 'fainting', 'pneumothorax', 'infection', 'nerve_injury', 'other', name='adverseeventkind', native_enum=False, length=32), nullable=False),
    sa.Column('severity', sa.Enum('mild', 'significant', 'serious', name='severity', native_enum=False, length=32), nullable=False),
    sa.Column('onset_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('action_taken', sa.Text(), nullable=True),
    sa.Column('reportable', sa.Boolean(), nullable=False),
    sa.Column('reported_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_adverse_events_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_adverse_events_patient_id_patients')),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_adverse_events_recorded_by_users')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_adverse_events_session_id_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adverse_events'))
    )
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adverse_events_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adverse_events_session_id'), ['session_id'], unique=False)

    op.create_table('amendments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_amendments_author_id_users')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_amendments_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_amendments_session_id_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_amendments'))
    )
    with op.batch_alter_table('amendments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_amendments_session_id'), ['session_id'], unique=False)

    op.create_table('co_interventions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('modality', sa.Enum('dry_needling', 'manual_therapy', 'exercise', 'education', 'other', name='modality', native_enum=False, length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_co_interventions_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_co_interventions_session_id_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_co_interventions'))
    )
    with op.batch_alter_table('co_interventions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_co_interventions_session_id'), ['session_id'], unique=False)

    op.create_table('measurements',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('instrument_id', sa.String(length=32), nullable=False),
    sa.Column('instrument_version', sa.String(length=16), nullable=False),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('taken_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('episode_id', sa.Uuid(), nullable=True),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_measurements_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_measurements_episode_id_episodes')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_measurements_patient_id_patients')),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_measurements_recorded_by_users')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_measurements_session_id_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measurements'))
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_measurements_episode_id'), ['episode_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_measurements_patient_id_instrument_id_taken_at'), ['patient_id', 'instrument_id', 'taken_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_measurements_session_id'), ['session_id'], unique=False)

    op.create_table('needling_sites',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('muscle_id', sa.String(length=64), nullable=False),
    sa.Column('side', sa.Enum('left', 'right', 'midline', name='side', native_enum=False, length=32), nullable=False),
    sa.Column('trigger_point', sa.Enum('active', 'latent', 'none', name='triggerpoint', native_enum=False, length=32), nullable=False),
    sa.Column('technique', sa.Enum('static', 'pistoning', 'superficial', 'periosteal', 'tendon_fenestration', name='technique', native_enum=False, length=32), nullable=False),
    sa.Column('needle_gauge_mm', sa.Float(), nullable=False),
    sa.Column('needle_length_mm', sa.Float(), nullable=False),
    sa.Column('depth_mm', sa.Float(), nullable=False),
    sa.Column('insertions', sa.Integer(), nullable=False),
    sa.Column('local_twitch_responses', sa.Integer(), nullable=False),
    sa.Column('electrical_stimulation', sa.Boolean(), nullable=False),
    sa.Column('tolerance', sa.Enum('good', 'fair', 'poor', name='tolerance', native_enum=False, length=32), nullable=False),
    sa.Column('estim_params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_needling_sites_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_needling_sites_session_id_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_needling_sites'))
    )
    with op.batch_alter_table('needling_sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_needling_sites_session_id'), ['session_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('needling_sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_needling_sites_session_id'))

    op.drop_table('needling_sites')
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_measurements_session_id'))
        batch_op.drop_index(batch_op.f('ix_measurements_patient_id_instrument_id_taken_at'))
        batch_op.drop_index(batch_op.f('ix_measurements_episode_id'))

    op.drop_table('measurements')
    with op.batch_alter_table('co_interventions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_co_interventions_session_id'))

    op.drop_table('co_interventions')
    with op.batch_alter_table('amendments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_amendments_session_id'))

    op.drop_table('amendments')
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adverse_events_session_id'))
        batch_op.drop_index(batch_op.f('ix_adverse_events_patient_id'))

    op.drop_table('adverse_events')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_patient_id'))
        batch_op.drop_index(batch_op.f('ix_sessions_episode_id_started_at'))

    op.drop_table('sessions')
    with op.batch_alter_table('plan_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_items_episode_id'))

    op.drop_table('plan_items')
    with op.batch_alter_table('medication_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_medication_uses_patient_id'))

    op.drop_table('medication_uses')
    with op.batch_alter_table('training_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_records_user_id'))

    op.drop_table('training_records')
    with op.batch_alter_table('screenings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screenings_patient_id'))

    op.drop_table('screenings')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_patient_id'))

    op.drop_table('referrals')
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_episodes_patient_id'))
        batch_op.drop_index(batch_op.f('ix_episodes_clinic_id_condition'))

    op.drop_table('episodes')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_patient_id'))

    op.drop_table('consents')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_entity_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_clinic_id_occurred_at'))

    op.drop_table('audit_events')
    op.drop_table('api_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_clinic_id'))

    op.drop_table('users')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_clinic_id_family_name_given_name'))

    op.drop_table('patients')
    op.drop_table('clinics')

