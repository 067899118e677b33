"""note snippets and favourites: SOAP text snippets per clinic and per clinician, and each
clinician's favourite muscles and needle sizes (issue 15 item 7)

* note_snippets: a snippet for one SOAP section; owner_id NULL is the clinic's (the owner
  writes it), otherwise one clinician's own.
* favourites: a clinician's favourite muscles and needle sizes, in order.
* PostgreSQL: both under row-level security like the clinical tables (the application role
  sees and writes only its transaction's clinic's rows).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
RLS_TABLES = ("note_snippets", "favourites")


def _enum(*values: str, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=False, length=32)


def upgrade() -> None:
    op.create_table(
        "note_snippets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column(
            "section",
            _enum("subjective", "objective", "assessment", "plan", name="soapsection"),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_note_snippets_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_note_snippets_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_note_snippets_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_note_snippets")),
    )
    with op.batch_alter_table("note_snippets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_note_snippets_clinic_id_owner_id"), ["clinic_id", "owner_id"]
        )
    op.create_table(
        "favourites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", _enum("muscle", "needle", name="favouritekind"), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            needlepoint.adapters.db.types.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_favourites_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_favourites_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favourites")),
    )
    with op.batch_alter_table("favourites", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_favourites_clinic_id_user_id"), ["clinic_id", "user_id"]
        )
    if op.get_bind().dialect.name == "postgresql":
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
    with op.batch_alter_table("favourites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_favourites_clinic_id_user_id"))
    op.drop_table("favourites")
    with op.batch_alter_table("note_snippets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_note_snippets_clinic_id_owner_id"))
    op.drop_table("note_snippets")
