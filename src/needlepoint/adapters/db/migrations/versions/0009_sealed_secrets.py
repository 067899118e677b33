"""sealed secrets: TOTP secrets stored sealed with a key kept outside the database

* mfa_secrets.secret becomes TEXT holding `sealed:v1:<key id>:<ciphertext>` (AES-256-GCM,
  `adapters/sealing.py`); secrets stored in clear by earlier versions are sealed here with
  the process's sealing key (the `needlepoint` command configures it before migrating).

The protective triggers and policies are not re-created here but on every upgrade that
reaches head (`migrate.upgrade` → `protections.ensure`), so that a database restored or
tampered with after its migrations ran gets them back too.

Revision ID: 0009
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from needlepoint.adapters import sealing

revision = "0009"
down_revision = "0014"
branch_labels = None
depends_on = None

_CONTEXT = "mfa_secrets.secret"
_SECRETS = sa.table("mfa_secrets", sa.column("id", sa.Uuid()), sa.column("secret", sa.Text()))


def upgrade() -> None:
    with op.batch_alter_table("mfa_secrets", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=False
        )
    conn = op.get_bind()
    rows = conn.execute(sa.select(_SECRETS.c.id, _SECRETS.c.secret)).all()
    clear = [(id_, secret) for id_, secret in rows if not sealing.is_sealed(secret)]
    if not clear:
        return
    sealer = sealing.current()
    for id_, secret in clear:
        conn.execute(
            sa.update(_SECRETS)
            .where(_SECRETS.c.id == id_)
            .values(secret=sealer.seal(secret, _CONTEXT))
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_SECRETS.c.id, _SECRETS.c.secret)).all()
    sealed = [(id_, secret) for id_, secret in rows if sealing.is_sealed(secret)]
    if sealed:
        sealer = sealing.current()
        for id_, secret in sealed:
            conn.execute(
                sa.update(_SECRETS)
                .where(_SECRETS.c.id == id_)
                .values(secret=sealer.open(secret, _CONTEXT))
            )
    with op.batch_alter_table("mfa_secrets", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=False
        )
