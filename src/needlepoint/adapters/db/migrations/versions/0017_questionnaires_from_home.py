"""questionnaires from home: patient-reported outcomes by e-mailed link (issue 16)

* questionnaire_plans: the clinic's questionnaires and schedule per condition.
* questionnaire_assignments: one questionnaire due for a patient at one time point of an
  episode (intake, during care, discharge, follow-up).
* questionnaire_links: single-use, expiring links (only the token's SHA-256 is stored);
  outside row-level security like account_codes, since a link is looked up by its hash
  before its clinic is known; it holds no health information.
* questionnaire_responses: answers saved as the patient goes; scored only on submission.
* outbox_messages: e-mails written in the same transaction as their cause, sent by the
  outbox worker (state, attempts, next attempt time, last error); the link sealed at rest.
* PostgreSQL: every table but questionnaire_links under row-level security like the
  clinical tables.

Revision ID: 0017
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import needlepoint.adapters.db.types

revision = "0017"
down_revision = "0019"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
RLS_TABLES = (
    "questionnaire_plans",
    "questionnaire_assignments",
    "questionnaire_responses",
    "outbox_messages",
)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "questionnaire_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("condition", sa.String(length=64), nullable=False),
        sa.Column("instruments", JSON, nullable=False),
        sa.Column("follow_up_days", JSON, nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column(
            "updated_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("every_n_days", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_questionnaire_plans_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_questionnaire_plans_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_plans")),
        sa.UniqueConstraint(
            "clinic_id", "condition", name=op.f("uq_questionnaire_plans_clinic_id_condition")
        ),
    )
    op.create_table(
        "questionnaire_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("episode_id", sa.Uuid(), nullable=True),
        sa.Column(
            "ended_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "ended_because",
            sa.Enum("used", "superseded", "revoked", name="linkend", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_questionnaire_links_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episodes.id"], name=op.f("fk_questionnaire_links_episode_id_episodes")
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"], ["users.id"], name=op.f("fk_questionnaire_links_issued_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_questionnaire_links_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_questionnaire_links_token_hash")),
    )
    with op.batch_alter_table("questionnaire_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_questionnaire_links_clinic_id_patient_id"),
            ["clinic_id", "patient_id"],
            unique=False,
        )

    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "invitation",
                "reminder",
                "link_request",
                name="messagekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "sending",
                "sent",
                "failed",
                name="outboxstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "created_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column(
            "link_url",
            needlepoint.adapters.db.types.SealedText("outbox_messages.link_url"),
            nullable=True,
        ),
        sa.Column(
            "claimed_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column(
            "sent_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_outbox_messages_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["questionnaire_links.id"],
            name=op.f("fk_outbox_messages_link_id_questionnaire_links"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_outbox_messages_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_messages_clinic_id_created_at"),
            ["clinic_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_messages_clinic_id_state_next_attempt_at"),
            ["clinic_id", "state", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "questionnaire_assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("episode_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.String(length=32), nullable=False),
        sa.Column(
            "time_point",
            sa.Enum(
                "intake",
                "during_care",
                "discharge",
                "follow_up",
                name="timepoint",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "completed_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("measurement_id", sa.Uuid(), nullable=True),
        sa.Column(
            "cancelled_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["users.id"],
            name=op.f("fk_questionnaire_assignments_assigned_by_users"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinics.id"],
            name=op.f("fk_questionnaire_assignments_clinic_id_clinics"),
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_questionnaire_assignments_episode_id_episodes"),
        ),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.id"],
            name=op.f("fk_questionnaire_assignments_measurement_id_measurements"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_questionnaire_assignments_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_assignments")),
    )
    with op.batch_alter_table("questionnaire_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_questionnaire_assignments_clinic_id_patient_id_due_on"),
            ["clinic_id", "patient_id", "due_on"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_questionnaire_assignments_episode_id"), ["episode_id"], unique=False
        )

    op.create_table(
        "questionnaire_responses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("answers", JSON, nullable=False),
        sa.Column(
            "started_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "submitted_at", needlepoint.adapters.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("measurement_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["questionnaire_assignments.id"],
            name=op.f("fk_questionnaire_responses_assignment_id_questionnaire_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_questionnaire_responses_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["questionnaire_links.id"],
            name=op.f("fk_questionnaire_responses_link_id_questionnaire_links"),
        ),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.id"],
            name=op.f("fk_questionnaire_responses_measurement_id_measurements"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_questionnaire_responses_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_responses")),
        sa.UniqueConstraint("assignment_id", name=op.f("uq_questionnaire_responses_assignment_id")),
    )
    with op.batch_alter_table("questionnaire_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_questionnaire_responses_clinic_id_patient_id"),
            ["clinic_id", "patient_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_questionnaire_responses_measurement_id"),
            ["measurement_id"],
            unique=False,
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON questionnaire_links TO {APP_ROLE}")
        for table in RLS_TABLES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {table}")
            op.execute(
                f"CREATE POLICY clinic_isolation ON {table} TO {APP_ROLE} "
                f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
                f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})"
            )


def downgrade() -> None:
    with op.batch_alter_table("questionnaire_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questionnaire_responses_measurement_id"))
        batch_op.drop_index(batch_op.f("ix_questionnaire_responses_clinic_id_patient_id"))

    op.drop_table("questionnaire_responses")
    with op.batch_alter_table("questionnaire_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questionnaire_assignments_episode_id"))
        batch_op.drop_index(batch_op.f("ix_questionnaire_assignments_clinic_id_patient_id_due_on"))

    op.drop_table("questionnaire_assignments")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_messages_clinic_id_state_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_messages_clinic_id_created_at"))

    op.drop_table("outbox_messages")
    with op.batch_alter_table("questionnaire_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questionnaire_links_clinic_id_patient_id"))

    op.drop_table("questionnaire_links")
    op.drop_table("questionnaire_plans")
