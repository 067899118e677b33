"""security: hash-chained, append-only audit trail

* audit_events gains outcome (success/denied), source_address and the chain columns
  (seq, prev_hash, hash), unique per (clinic_id, seq); existing events are chained in the
  order they happened.
* audit_chain_heads: each clinic's newest event, kept by a trigger on every insert, which
  also refuses an event that does not extend its clinic's chain.
* Triggers refuse UPDATE and DELETE (and on PostgreSQL TRUNCATE) of audit events, for
  every role that cannot disable triggers (only the table owner or a superuser can).

* PostgreSQL row-level security on every clinical table (patients and everything recorded
  about them, and the audit trail), for the application role `needlepoint_app`: a row is
  visible and writable only when its clinic_id equals the transaction's
  `needlepoint.clinic_id` setting (set by the unit of work and the reader). The role is
  created here when missing (NOLOGIN; the server logs in as a member of it), gets
  SELECT/INSERT/UPDATE/DELETE on the tables, but only SELECT/INSERT on audit_events. The
  role running migrations owns the tables and is not subject to the policies: it is the
  maintenance role of the generator, backups and `audit verify`. SQLite ignores all this.

SQLite's batch mode rebuilds tables and drops their triggers: a later migration that
batch-alters audit_events must call `create_triggers()` again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from needlepoint.domain.audit import GENESIS, row_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OUTCOME = sa.Enum("success", "denied", name="auditoutcome", native_enum=False, length=32)

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER audit_events_chain_link BEFORE INSERT ON audit_events
    WHEN NEW.seq IS NOT COALESCE(
            (SELECT last_seq FROM audit_chain_heads WHERE clinic_id = NEW.clinic_id), 0) + 1
      OR NEW.prev_hash IS NOT COALESCE(
            (SELECT last_hash FROM audit_chain_heads WHERE clinic_id = NEW.clinic_id),
            '{GENESIS}')
    BEGIN SELECT RAISE(ABORT, 'audit event does not extend its clinic''s chain'); END""",
    """CREATE TRIGGER audit_events_chain_head AFTER INSERT ON audit_events
    BEGIN
        INSERT INTO audit_chain_heads (clinic_id, last_seq, last_hash)
        VALUES (NEW.clinic_id, NEW.seq, NEW.hash)
        ON CONFLICT (clinic_id) DO UPDATE
        SET last_seq = excluded.last_seq, last_hash = excluded.last_hash;
    END""",
    # The head moves only onto the event just appended after it.
    """CREATE TRIGGER audit_chain_heads_follow BEFORE UPDATE ON audit_chain_heads
    WHEN NEW.clinic_id IS NOT OLD.clinic_id
      OR NEW.last_seq IS NOT OLD.last_seq + 1
      OR NOT EXISTS (SELECT 1 FROM audit_events WHERE clinic_id = NEW.clinic_id
                     AND seq = NEW.last_seq AND hash = NEW.last_hash)
    BEGIN SELECT RAISE(ABORT, 'audit chain heads move only with the chain'); END""",
    """CREATE TRIGGER audit_chain_heads_no_delete BEFORE DELETE ON audit_chain_heads
    BEGIN SELECT RAISE(ABORT, 'audit chain heads move only with the chain'); END""",
]

_PG_TRIGGERS = [
    """CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()""",
    f"""CREATE FUNCTION audit_events_extend_chain() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        head audit_chain_heads%ROWTYPE;
    BEGIN
        SELECT * INTO head FROM audit_chain_heads
        WHERE clinic_id = NEW.clinic_id FOR UPDATE;
        IF NOT FOUND THEN
            IF NEW.seq <> 1 OR NEW.prev_hash <> '{GENESIS}' THEN
                RAISE EXCEPTION 'audit event % does not start its clinic''s chain', NEW.id
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            INSERT INTO audit_chain_heads (clinic_id, last_seq, last_hash)
            VALUES (NEW.clinic_id, NEW.seq, NEW.hash);
        ELSE
            IF NEW.seq <> head.last_seq + 1 OR NEW.prev_hash <> head.last_hash THEN
                RAISE EXCEPTION 'audit event % does not extend its clinic''s chain', NEW.id
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            UPDATE audit_chain_heads SET last_seq = NEW.seq, last_hash = NEW.hash
            WHERE clinic_id = NEW.clinic_id;
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_extend_chain()""",
    # The head moves only with the chain (from the trigger above, at depth 2).
    """CREATE FUNCTION audit_chain_heads_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'audit chain heads move only with the chain: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER audit_chain_heads_guard BEFORE UPDATE OR DELETE ON audit_chain_heads
    FOR EACH ROW EXECUTE FUNCTION audit_chain_heads_refuse_change()""",
]

_PG_DROP = [
    "DROP TRIGGER IF EXISTS audit_chain_heads_guard ON audit_chain_heads",
    "DROP TRIGGER IF EXISTS audit_events_chain ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP FUNCTION IF EXISTS audit_chain_heads_refuse_change()",
    "DROP FUNCTION IF EXISTS audit_events_extend_chain()",
    "DROP FUNCTION IF EXISTS audit_events_refuse_change()",
]

_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_events_chain_link",
    "DROP TRIGGER IF EXISTS audit_events_chain_head",
    "DROP TRIGGER IF EXISTS audit_chain_heads_follow",
    "DROP TRIGGER IF EXISTS audit_chain_heads_no_delete",
]


APP_ROLE = "needlepoint_app"

# Clinical tables: patients and everything recorded about them, and the audit trail. Staff
# tables (users, api_tokens, training_records) are read before a clinic is known (sign-in,
# token lookup) and stay outside.
RLS_TABLES = (
    "patients",
    "referrals",
    "consents",
    "screenings",
    "episodes",
    "plan_items",
    "sessions",
    "needling_sites",
    "co_interventions",
    "adverse_events",
    "measurements",
    "medication_uses",
    "amendments",
    "audit_events",
    "audit_chain_heads",
)

_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"


def _row_level_security() -> None:
    op.execute(
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
        END $$"""
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    # Belt and braces with the triggers: the application role may only append.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}")
    op.execute(f"REVOKE DELETE, TRUNCATE ON audit_chain_heads FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {APP_ROLE}")
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY clinic_isolation ON {table} TO {APP_ROLE} "
            f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
            f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})"
        )


def _drop_row_level_security() -> None:
    for table in RLS_TABLES:
        op.execute(f"DROP POLICY IF EXISTS clinic_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
    )


def create_triggers() -> None:
    """The append-only and chain triggers of this dialect."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for ddl in _SQLITE_TRIGGERS if sqlite else _PG_TRIGGERS:
        op.execute(ddl)


def _chain_existing_events() -> None:
    """Give events written before this revision their place in their clinic's chain, in
    the order they happened. The columns are spelled out as they are at this revision
    (not taken from tables.py, which moves on)."""
    from needlepoint.adapters.db.types import UTCDateTime

    ae = sa.table(
        "audit_events",
        sa.column("id", sa.Uuid()),
        sa.column("clinic_id", sa.Uuid()),
        sa.column("action", sa.String()),
        sa.column("entity_type", sa.String()),
        sa.column("entity_id", sa.Uuid()),
        sa.column("occurred_at", UTCDateTime()),
        sa.column("source", sa.String()),
        sa.column("actor_user_id", sa.Uuid()),
        sa.column("patient_id", sa.Uuid()),
        sa.column("before_digest", sa.String()),
        sa.column("after_digest", sa.String()),
        sa.column("request_id", sa.String()),
        sa.column("source_address", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    heads_table = sa.table(
        "audit_chain_heads",
        sa.column("clinic_id", sa.Uuid()),
        sa.column("last_seq", sa.BigInteger()),
        sa.column("last_hash", sa.String()),
    )
    conn = op.get_bind()
    content = [c for c in ae.c if c.name not in ("outcome", "seq", "prev_hash", "hash")]
    rows = conn.execute(
        sa.select(*content).order_by(ae.c.clinic_id, ae.c.occurred_at, ae.c.id)
    ).mappings()
    heads: dict[object, tuple[int, str]] = {}
    for row in rows.all():
        seq, prev = heads.get(row["clinic_id"], (0, GENESIS))
        values = {**row, "outcome": "success", "seq": seq + 1, "prev_hash": prev}
        h = row_hash(values)
        conn.execute(
            sa.update(ae)
            .where(ae.c.id == row["id"])
            .values(outcome="success", seq=seq + 1, prev_hash=prev, hash=h)
        )
        heads[row["clinic_id"]] = (seq + 1, h)
    if heads:
        conn.execute(
            sa.insert(heads_table),
            [{"clinic_id": c, "last_seq": s, "last_hash": h} for c, (s, h) in heads.items()],
        )


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_audit_chain_heads_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_audit_chain_heads")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", _OUTCOME, nullable=True))
        batch_op.add_column(sa.Column("source_address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_events()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("outcome", existing_type=_OUTCOME, nullable=False)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_clinic_id_seq"), ["clinic_id", "seq"]
        )
    create_triggers()
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        _drop_row_level_security()
    for ddl in _SQLITE_DROP if sqlite else _PG_DROP:
        op.execute(ddl)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_clinic_id_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
        batch_op.drop_column("source_address")
        batch_op.drop_column("outcome")
    op.drop_table("audit_chain_heads")
