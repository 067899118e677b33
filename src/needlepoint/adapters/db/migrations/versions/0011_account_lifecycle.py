"""account lifecycle: API token expiry, per-clinic email uniqueness, owner-issued codes

* api_tokens.expires_at: every token now expires (the clinic's `api_token_days`,
  default 90); tokens issued before this migration expire 90 days after their creation.
* security_settings.api_token_days: how long a new API token lasts.
* users.sign_in_reset_at: an owner's unlock restarts sign-in delays and the second
  factor's failure count from here.
* users: email unique within a clinic (was: across clinics, which let one clinic learn
  that an address is used by another).
* account_codes: one-time codes an owner issues (MFA enrolment, password reset), stored
  hashed. A staff table like api_tokens: read before a clinic is known, so no RLS.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import needlepoint.adapters.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_AT = needlepoint.adapters.db.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", _AT(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Uuid()),
        sa.column("created_at", _AT(timezone=True)),
        sa.column("expires_at", _AT(timezone=True)),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        bind.execute(
            sa.update(tokens)
            .where(tokens.c.id == row.id)
            .values(expires_at=row.created_at + timedelta(days=90))
        )
    with op.batch_alter_table("security_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("api_token_days", sa.Integer(), server_default="90", nullable=False)
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sign_in_reset_at", _AT(timezone=True), nullable=True))
        batch_op.drop_constraint("uq_users_email", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_users_clinic_id_email"), ["clinic_id", "email"])
        batch_op.create_index(batch_op.f("ix_users_email"), ["email"], unique=False)
    op.create_table(
        "account_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum("mfa_enrolment", "password_reset", name="accountcodepurpose",
                    native_enum=False, create_constraint=False, length=32),
            nullable=False,
        ),  # fmt: skip
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", _AT(timezone=True), nullable=False),
        sa.Column("expires_at", _AT(timezone=True), nullable=False),
        sa.Column("used_at", _AT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_account_codes_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"], ["users.id"], name=op.f("fk_account_codes_issued_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_account_codes_code_hash")),
    )
    with op.batch_alter_table("account_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_codes_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_codes_user_id"))
    op.drop_table("account_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_email"))
        batch_op.drop_constraint(batch_op.f("uq_users_clinic_id_email"), type_="unique")
        batch_op.create_unique_constraint("uq_users_email", ["email"])
        batch_op.drop_column("sign_in_reset_at")
    with op.batch_alter_table("security_settings", schema=None) as batch_op:
        batch_op.drop_column("api_token_days")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
        batch_op.drop_column("expires_at")
