"""clinic time zone; adverse-event follow-ups

* clinics.time_zone: the clinic's IANA time zone (forms show and accept local time,
  storage stays UTC). Existing clinics get the server's zone at the time of the
  upgrade (UTC when it cannot be told), as a new clinic does.
* adverse_event_follow_ups: entries appended to an adverse event after it was recorded
  (onset, action taken, resolution, report to the board); never edited.
* PostgreSQL: row-level security on adverse_event_follow_ups, as on the clinical tables;
  the application role may read and append them, not change or delete them
  (also kept so by adapters/db/protections.py).

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types
from needlepoint.adapters.server_zone import server_zone_name

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
TABLE = "adverse_event_follow_ups"


def upgrade() -> None:
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False)
        )
    clinics = sa.table("clinics", sa.column("time_zone", sa.String()))
    op.get_bind().execute(clinics.update().values(time_zone=server_zone_name()))
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("adverse_event_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "onset",
                "action",
                "resolution",
                "reported",
                "note",
                name="followupkind",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "occurred_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["adverse_event_id"],
            ["adverse_events.id"],
            name=op.f("fk_adverse_event_follow_ups_adverse_event_id_adverse_events"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_adverse_event_follow_ups_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_adverse_event_follow_ups_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["users.id"],
            name=op.f("fk_adverse_event_follow_ups_recorded_by_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adverse_event_follow_ups")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adverse_event_follow_ups_adverse_event_id"),
            ["adverse_event_id"],
            unique=False,
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT ON {TABLE} TO {APP_ROLE}")
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {TABLE} FROM {APP_ROLE}")
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {TABLE}")
        op.execute(
            f"CREATE POLICY clinic_isolation ON {TABLE} TO {APP_ROLE} "
            f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
            f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {TABLE}")
        op.execute(f"ALTER TABLE {TABLE} DISABLE ROW LEVEL SECURITY")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adverse_event_follow_ups_adverse_event_id"))
    op.drop_table(TABLE)
    # A plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), not a batch copy of `clinics`:
    # every clinical table refers to it, and the copy's DROP TABLE would fail whenever
    # SQLite enforces foreign keys.
    op.drop_column("clinics", "time_zone")
