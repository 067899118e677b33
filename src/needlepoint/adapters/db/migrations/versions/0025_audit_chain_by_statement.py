"""audit chain extended once per statement, not once per event (PostgreSQL)

Revision 0003's trigger checked each new audit event against its clinic's chain head and
moved the head, row by row; the append function of revision 0010 locked the head once
more per event. So an event cost two row locks and an update of the one head row, and a
batch of 100 read events left 100 versions of that row behind (6–11 MB for one row under
bench/clinic_day.py), every later lookup walking them: about 200 µs an event, and the
append function took most of PostgreSQL's statement time at 20 clinicians.

Now:
* the trigger runs once per INSERT statement, after it, over the rows it added (a
  transition table): per clinic it locks the head, checks that the new rows, in `seq`
  order, continue the chain from it (each `seq` one more, each `prev_hash` the previous
  row's `hash`; a clinic's first row starts from 1 and the genesis hash), and moves the
  head once, to the last. A row that does not fit refuses the whole statement, as before;
* the append function locks its clinic's head once, links the events in order and
  inserts them in one statement.
What may be written is unchanged; `protections.py` holds the same definitions.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

from needlepoint.domain.audit import GENESIS

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


EXTEND_CHAIN_BODY = f"""
    DECLARE
        chain_clinic uuid;
        known boolean;
        chain_seq bigint;
        chain_hash text;
        ev record;
    BEGIN
        FOR chain_clinic IN SELECT DISTINCT clinic_id FROM added LOOP
            SELECT h.last_seq, h.last_hash INTO chain_seq, chain_hash
            FROM audit_chain_heads h WHERE h.clinic_id = chain_clinic FOR UPDATE;
            known := FOUND;
            IF NOT known THEN
                chain_seq := 0;
                chain_hash := '{GENESIS}';
            END IF;
            FOR ev IN SELECT id, seq, prev_hash, hash FROM added
                      WHERE clinic_id = chain_clinic ORDER BY seq LOOP
                IF ev.seq IS DISTINCT FROM chain_seq + 1
                        OR ev.prev_hash IS DISTINCT FROM chain_hash THEN
                    IF chain_seq = 0 THEN
                        RAISE EXCEPTION 'audit event % does not start its clinic''s chain',
                            ev.id USING ERRCODE = 'integrity_constraint_violation';
                    END IF;
                    RAISE EXCEPTION 'audit event % does not extend its clinic''s chain', ev.id
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                chain_seq := ev.seq;
                chain_hash := ev.hash;
            END LOOP;
            IF known THEN
                UPDATE audit_chain_heads SET last_seq = chain_seq, last_hash = chain_hash
                WHERE clinic_id = chain_clinic;
            ELSE
                INSERT INTO audit_chain_heads (clinic_id, last_seq, last_hash)
                VALUES (chain_clinic, chain_seq, chain_hash);
            END IF;
        END LOOP;
        RETURN NULL;
    END """

CHAIN_TRIGGER = (
    "CREATE TRIGGER audit_events_chain AFTER INSERT ON public.audit_events "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
    "EXECUTE FUNCTION audit_events_extend_chain()"
)

APPEND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION needlepoint_append_audit_events(events jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ev audit_events%ROWTYPE;
    scope uuid := NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid;
    trusted boolean := has_table_privilege(session_user, 'audit_events', 'INSERT');
    chain_clinic uuid;
    head_seq bigint;
    head_hash text;
    linked audit_events[] := '{{}}';
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
        IF ev.clinic_id IS DISTINCT FROM chain_clinic THEN
            -- another clinic's chain: write what is linked, then lock that clinic's head
            IF cardinality(linked) > 0 THEN
                INSERT INTO audit_events SELECT * FROM unnest(linked);
                linked := '{{}}';
            END IF;
            SELECT last_seq, last_hash INTO head_seq, head_hash
            FROM audit_chain_heads WHERE clinic_id = ev.clinic_id FOR UPDATE;
            IF NOT FOUND THEN
                head_seq := 0;
                head_hash := '{GENESIS}';
            END IF;
            chain_clinic := ev.clinic_id;
        END IF;
        ev.seq := head_seq + 1;
        ev.prev_hash := head_hash;
        ev.hash := encode(
            sha256(convert_to(head_hash || ':' || ev.seq::text || ':' || ev.hash, 'UTF8')),
            'hex');
        head_seq := ev.seq;
        head_hash := ev.hash;
        linked := array_append(linked, ev);
        n := n + 1;
    END LOOP;
    IF cardinality(linked) > 0 THEN
        INSERT INTO audit_events SELECT * FROM unnest(linked);
    END IF;
    RETURN n;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: its own row triggers (no row versions there to pile up)
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_events_extend_chain() RETURNS trigger "
        f"LANGUAGE plpgsql AS $${EXTEND_CHAIN_BODY}$$"
    )
    op.execute("DROP TRIGGER IF EXISTS audit_events_chain ON audit_events")
    op.execute(CHAIN_TRIGGER)
    op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from needlepoint.adapters.db.protections import load_migration

    # Put back revision 0003's row trigger and revision 0010's append function, from
    # their own migrations.
    row_by_row = [
        ddl
        for ddl in load_migration("0003_security.py")._PG_TRIGGERS
        if "audit_events_extend_chain()" in ddl
    ]
    assert len(row_by_row) == 2  # the trigger function, then its trigger
    op.execute("DROP TRIGGER IF EXISTS audit_events_chain ON audit_events")
    op.execute("DROP FUNCTION IF EXISTS audit_events_extend_chain()")
    for ddl in row_by_row:
        op.execute(ddl)
    op.execute(load_migration("0010_audit_append_function.py").APPEND_FUNCTION)
