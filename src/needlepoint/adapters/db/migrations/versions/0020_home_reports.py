"""questionnaires from home with their context: analgesic use reported by the patient

* medication_uses.response_id: the questionnaire response an analgesic-log entry came
  with when the patient reported it from home (issue 16); its patient-reported
  provenance, as a response naming its measurement is a measurement's. NULL for entries
  a clinician logged (every existing row).
* No new table: medication_uses is already under row-level security.

Revision ID: 0020
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None

FK_NAME = "fk_medication_uses_response_id_questionnaire_responses"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a nullable column with its reference in place; a batch migration
        # would copy a table that other rows refer to.
        op.execute(
            "ALTER TABLE medication_uses ADD COLUMN response_id CHAR(32) "
            f"CONSTRAINT {FK_NAME} REFERENCES questionnaire_responses (id)"
        )
    else:
        op.add_column("medication_uses", sa.Column("response_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(
            FK_NAME, "medication_uses", "questionnaire_responses", ["response_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FK_NAME, "medication_uses", type_="foreignkey")
    with op.batch_alter_table("medication_uses", schema=None) as batch_op:
        batch_op.drop_column("response_id")
