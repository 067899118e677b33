"""kiosk links marked as such

* questionnaire_links.kiosk: the link was opened on the clinic's tablet ("Hand to
  patient"), not e-mailed. A used e-mailed link still shows its sender's progress and
  consent for the rest of the sitting in the browser that sent the answers; a kiosk
  link never does, since the next person handed the tablet must not read (or withdraw)
  the previous patient's. Existing links: false (kiosk links live two hours).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("questionnaire_links") as batch:
        batch.add_column(
            sa.Column("kiosk", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("questionnaire_links") as batch:
        batch.drop_column("kiosk")
