"""audit append function: the application role appends audit events only through a
function that computes the chain

PostgreSQL only (SQLite has no roles: whoever can write the file can write anything, which
is what the signed checkpoints of `needlepoint audit checkpoint` are for).

* `needlepoint_append_audit_events(jsonb)`: SECURITY DEFINER (it runs as the tables'
  owner), search_path pinned. It takes the events as a JSON array of rows whose `hash`
  holds the event's content digest (SHA-256 of its canonical content, computed by the
  application where the event is made); for each event, in order, it locks the clinic's
  chain head, and itself sets `seq` (the head's + 1), `prev_hash` (the head's hash) and
  `hash` = SHA-256("{prev_hash}:{seq}:{content digest}"), whatever the caller sent in
  those columns. A caller that may not insert into audit_events directly (the
  application role) may only append events of the clinic its transaction is scoped to
  (`needlepoint.clinic_id`), as row-level security allowed before, and only events
  dated now (at most a day old — the background writer may retry for a while — and
  at most five minutes ahead): it cannot fabricate history.
* The application role loses INSERT on audit_events and on audit_chain_heads (it keeps
  SELECT, and UPDATE on the heads only because `SELECT … FOR UPDATE` needs it: the
  trigger `audit_chain_heads_guard` still refuses every update it makes itself), and
  gains EXECUTE on the function (taken from PUBLIC).

The chain triggers of revision 0003 stay: the function's inserts go through them too.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

from needlepoint.domain.audit import GENESIS

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APP_ROLE = "needlepoint_app"
FUNCTION = "needlepoint_append_audit_events(jsonb)"

APPEND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION needlepoint_append_audit_events(events jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ev audit_events%ROWTYPE;
    scope uuid := NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid;
    trusted boolean := has_table_privilege(session_user, 'audit_events', 'INSERT');
    head_seq bigint;
    head_hash text;
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
        IF ev.hash IS NULL OR ev.hash !~ '^[0-9a-f]{{64}}$' THEN
            RAISE EXCEPTION 'audit event % carries no content digest', ev.id
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
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
        n := n + 1;
    END LOOP;
    RETURN n;
END $$
"""


def create_append_function() -> None:
    """The append function and the application role's privileges (idempotent: a later
    migration may run it again to restore them)."""
    op.execute(APPEND_FUNCTION)
    op.execute(f"REVOKE ALL ON FUNCTION {FUNCTION} FROM PUBLIC")
    op.execute(
        f"""DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT EXECUTE ON FUNCTION {FUNCTION} TO {APP_ROLE};
                REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE};
                REVOKE INSERT, DELETE, TRUNCATE ON audit_chain_heads FROM {APP_ROLE};
            END IF;
        END $$"""
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        create_append_function()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT INSERT ON audit_events TO {APP_ROLE}")
        op.execute(f"GRANT INSERT ON audit_chain_heads TO {APP_ROLE}")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")
