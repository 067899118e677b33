"""the audit chain and the analytics version move at commit, not before it (PostgreSQL)

Every write of a clinic appends to the clinic's audit chain, and the chain head is a row
lock held until the transaction ends: writers of one clinic queue for it. Until now a
writer took it with its last statements (the append function, the analytics version's
upsert) and held it over the round trips that followed, each of which waits for a
loaded server process to run the thread again: measured with bench/clinic_day.py at 20
clients, two thirds of the time writers spent waiting on PostgreSQL was spent queued
for that lock. Now both happen inside COMMIT itself:

* commit_queue: what a transaction asks to be done as it commits (`kind` 'audit': a
  JSON array of audit events; 'analytics': a JSON array of clinic ids). Rows live only
  inside their transaction (the commit deletes them); the application role has no
  privilege on the table.
* `needlepoint_append_audit_events(jsonb)` keeps its checks (the transaction's clinic,
  events dated now, a content digest) and queues the events instead of linking them.
* `needlepoint_mark_analytics(jsonb)`: queues the clinics whose analysed records changed.
* A deferred constraint trigger on commit_queue runs `needlepoint_run_commit_queue()`
  as the transaction commits: it locks the chain heads (in clinic order), links and
  inserts the events in the order they were queued, moves the analytics versions (in
  clinic order), and empties the queue. The locks are then held only for the commit
  itself. Chain lock before analytics lock, in clinic order, for every writer: no
  deadlock.

SQLite keeps its way: BEGIN IMMEDIATE serialises its writers already, and the
application links the chain itself. The table exists there too (one schema) but stays
empty.

Revision ID: 0022
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from needlepoint.domain.audit import GENESIS

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
APPEND = "needlepoint_append_audit_events(jsonb)"
MARK = "needlepoint_mark_analytics(jsonb)"
RUN = "needlepoint_run_commit_queue()"

APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION needlepoint_append_audit_events(events jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ev audit_events%ROWTYPE;
    scope uuid := NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid;
    trusted boolean := has_table_privilege(session_user, 'audit_events', 'INSERT');
    n integer := 0;
BEGIN
    IF jsonb_typeof(events) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'audit events must be a JSON array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR ev IN SELECT * FROM jsonb_populate_recordset(NULL::audit_events, events) LOOP
        IF NOT trusted AND ev.clinic_id IS DISTINCT FROM scope THEN
            RAISE EXCEPTION 'an audit event of clinic % cannot be written in a transaction '
                'scoped to clinic %', ev.clinic_id, scope
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT trusted AND (ev.occurred_at IS NULL
                OR ev.occurred_at < clock_timestamp() - interval '1 day'
                OR ev.occurred_at > clock_timestamp() + interval '5 minutes') THEN
            RAISE EXCEPTION 'audit event % is dated %: the application appends events of '
                'now, not of the past or the future', ev.id, ev.occurred_at
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF ev.hash IS NULL OR ev.hash !~ '^[0-9a-f]{64}$' THEN
            RAISE EXCEPTION 'audit event % carries no content digest', ev.id
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN  -- linked and written as the transaction commits
        INSERT INTO commit_queue (kind, payload) VALUES ('audit', events::text);
    END IF;
    RETURN n;
END $$
"""

MARK_FUNCTION = """
CREATE OR REPLACE FUNCTION needlepoint_mark_analytics(clinics jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    scope uuid := NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid;
    trusted boolean := has_table_privilege(session_user, 'audit_events', 'INSERT');
    c uuid;
BEGIN
    IF jsonb_typeof(clinics) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'clinics must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR c IN SELECT value::uuid FROM jsonb_array_elements_text(clinics) LOOP
        IF NOT trusted AND c IS DISTINCT FROM scope THEN
            RAISE EXCEPTION 'the analytics of clinic % cannot be marked in a transaction '
                'scoped to clinic %', c, scope USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    INSERT INTO commit_queue (kind, payload) VALUES ('analytics', clinics::text);
END $$
"""

RUN_FUNCTION = f"""
CREATE OR REPLACE FUNCTION needlepoint_run_commit_queue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    q record;
    ev audit_events%ROWTYPE;
    head_seq bigint;
    head_hash text;
    c uuid;
BEGIN
    -- The first firing of the transaction does all its queued work (the queue holds only
    -- this transaction's rows: others' are uncommitted); later firings find none.
    IF NOT EXISTS (SELECT FROM commit_queue) THEN
        RETURN NULL;
    END IF;
    -- Every chain head this commit extends, locked in one order.
    PERFORM 1 FROM audit_chain_heads WHERE clinic_id IN (
        SELECT DISTINCT (e ->> 'clinic_id')::uuid
        FROM commit_queue, jsonb_array_elements(payload::jsonb) AS e WHERE kind = 'audit'
    ) ORDER BY clinic_id FOR UPDATE;
    FOR q IN SELECT * FROM commit_queue WHERE kind = 'audit' ORDER BY ord LOOP
        FOR ev IN SELECT * FROM jsonb_populate_recordset(NULL::audit_events, q.payload::jsonb)
        LOOP
            SELECT last_seq, last_hash INTO head_seq, head_hash
            FROM audit_chain_heads WHERE clinic_id = ev.clinic_id FOR UPDATE;
            IF NOT FOUND THEN
                head_seq := 0;
                head_hash := '{GENESIS}';
            END IF;
            ev.seq := head_seq + 1;
            ev.prev_hash := head_hash;
            ev.hash := encode(
                sha256(convert_to(head_hash || ':' || ev.seq::text || ':' || ev.hash, 'UTF8')),
                'hex');
            INSERT INTO audit_events SELECT ev.*;
        END LOOP;
    END LOOP;
    FOR c IN
        SELECT DISTINCT value::uuid FROM commit_queue, jsonb_array_elements_text(payload::jsonb)
        WHERE kind = 'analytics' ORDER BY 1
    LOOP
        INSERT INTO analytics_versions (clinic_id, version, changed_at)
        VALUES (c, 1, clock_timestamp())
        ON CONFLICT (clinic_id) DO UPDATE
        SET version = analytics_versions.version + 1, changed_at = EXCLUDED.changed_at;
    END LOOP;
    DELETE FROM commit_queue;
    RETURN NULL;
END $$
"""

TRIGGER = [
    "DROP TRIGGER IF EXISTS commit_queue_run ON commit_queue",
    "CREATE CONSTRAINT TRIGGER commit_queue_run AFTER INSERT ON commit_queue "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "
    "needlepoint_run_commit_queue()",
]


def create_functions() -> None:
    """The queue's functions and trigger, and who may run them (idempotent: `needlepoint
    protections` runs it again to restore them)."""
    for sql in (APPEND_FUNCTION, MARK_FUNCTION, RUN_FUNCTION, *TRIGGER):
        op.execute(sql)
    for function in (APPEND, MARK, RUN):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(
        f"""DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT EXECUTE ON FUNCTION {APPEND} TO {APP_ROLE};
                GRANT EXECUTE ON FUNCTION {MARK} TO {APP_ROLE};
                REVOKE ALL ON commit_queue FROM {APP_ROLE};
            END IF;
        END $$"""
    )


def upgrade() -> None:
    op.create_table(
        "commit_queue",
        sa.Column(
            "ord",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("ord", name=op.f("pk_commit_queue")),
    )
    if op.get_bind().dialect.name == "postgresql":
        create_functions()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        import importlib.util
        from pathlib import Path

        op.execute("DROP TRIGGER IF EXISTS commit_queue_run ON commit_queue")
        op.execute(f"DROP FUNCTION IF EXISTS {RUN}")
        op.execute(f"DROP FUNCTION IF EXISTS {MARK}")
        path = Path(__file__).parent / "0010_audit_append_function.py"
        spec = importlib.util.spec_from_file_location("needlepoint_migration_0010", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.create_append_function()
    op.drop_table("commit_queue")
