"""care teams: colleagues named on a patient's care team; row-level security on the
emergency accesses and notifications

* care_team_members: besides each episode's responsible clinician, the colleagues added
  to a patient's care team by name (the owner or a member adds them; audited). Writing
  a record no longer makes anyone a member, so the clinicians of record of existing
  notes who are not their episode's clinician are named here once, so that nobody loses
  the access they had (reason: "documented this patient's care before care teams were
  named").
* PostgreSQL: row-level security on care_team_members, emergency_accesses and
  notifications, as on the clinical tables (the application role sees and writes only
  its transaction's clinic's rows).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
RLS_TABLES = ("care_team_members", "emergency_accesses", "notifications")
BACKFILL_REASON = "documented this patient's care before care teams were named"


def upgrade() -> None:
    op.create_table(
        "care_team_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("added_by", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "added_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_care_team_members_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_care_team_members_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_care_team_members_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_care_team_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_team_members")),
    )
    with op.batch_alter_table("care_team_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_team_members_clinic_id_patient_id"),
            ["clinic_id", "patient_id"],
            unique=False,
        )
    _name_the_clinicians_of_existing_notes()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON care_team_members TO {APP_ROLE}")
        for table in RLS_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {table}")
            op.execute(
                f"CREATE POLICY clinic_isolation ON {table} TO {APP_ROLE} "
                f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
                f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})"
            )


def _name_the_clinicians_of_existing_notes() -> None:
    """Until now a note's clinician was on the patient's care team by having written it;
    from now on only episodes' clinicians and named members are. Name the former once."""
    bind = op.get_bind()
    notes = sa.table(
        "sessions",
        sa.column("clinic_id", sa.Uuid()),
        sa.column("patient_id", sa.Uuid()),
        sa.column("episode_id", sa.Uuid()),
        sa.column("clinician_id", sa.Uuid()),
    )
    episodes = sa.table("episodes", sa.column("id", sa.Uuid()), sa.column("clinician_id", sa.Uuid()))
    rows = bind.execute(
        sa.select(notes.c.clinic_id, notes.c.patient_id, notes.c.clinician_id)
        .distinct()
        .join(episodes, episodes.c.id == notes.c.episode_id)
        .where(notes.c.clinician_id != episodes.c.clinician_id)
    ).all()
    if not rows:
        return
    now = datetime.now(UTC)
    members = sa.table(
        "care_team_members",
        sa.column("id", sa.Uuid()),
        sa.column("clinic_id", sa.Uuid()),
        sa.column("patient_id", sa.Uuid()),
        sa.column("user_id", sa.Uuid()),
        sa.column("added_by", sa.Uuid()),
        sa.column("reason", sa.Text()),
        sa.column("added_at", needlepoint.adapters.db.types.UTCDateTime()),
    )
    bind.execute(
        members.insert(),
        [
            {
                "id": uuid.uuid4(),
                "clinic_id": clinic_id,
                "patient_id": patient_id,
                "user_id": user_id,
                "added_by": user_id,
                "reason": BACKFILL_REASON,
                "added_at": now,
            }
            for clinic_id, patient_id, user_id in rows
        ],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RLS_TABLES:
            op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    with op.batch_alter_table("care_team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_team_members_clinic_id_patient_id"))
    op.drop_table("care_team_members")
