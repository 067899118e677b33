"""The database's own protections of the audit trail and of tenant isolation, as they
must be at the newest schema, with a check that names what is missing, disabled or
altered and a repair that puts it back.

What is protected:
* SQLite and PostgreSQL: the triggers that keep audit events append-only and chained,
  and their chain heads moving only with the chain (first made by migration 0003);
* PostgreSQL also: the trigger functions' bodies, triggers enabled, row-level security
  enabled with its `clinic_isolation` policy on every clinic-scoped table, and the
  application role without UPDATE/DELETE/TRUNCATE on the audit trail.

A database restored from a backup made without them, or one where someone with the
owner's rights dropped, disabled or replaced one, is repaired by `needlepoint db upgrade`
(`migrate.upgrade` runs `ensure` whenever it reaches head) and reported by `needlepoint
audit verify` (`inspect`).

When a migration changes one of these objects, change its definition here in the same
commit: `tests/integration/test_backup_security.py` checks that a freshly migrated
database needs no repair."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

APP_ROLE = "needlepoint_app"
GENESIS = "0" * 64  # domain.audit.GENESIS, spelled here so the DDL reads as stored


def load_migration(filename: str) -> Any:
    """A migration module of this package, loaded from its file (its names start with
    digits: no import statement reaches them)."""
    path = Path(__file__).parent / "migrations" / "versions" / filename
    spec = importlib.util.spec_from_file_location(f"needlepoint_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHAIN_BY_STATEMENT = "0025_audit_chain_by_statement.py"
"""The migration whose chain trigger and append function are the newest (one source)."""
_CHAIN = load_migration(CHAIN_BY_STATEMENT)

SQLITE_TRIGGERS: dict[str, str] = {
    "audit_events_no_update": """CREATE TRIGGER audit_events_no_update
    BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    "audit_events_no_delete": """CREATE TRIGGER audit_events_no_delete
    BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    "audit_events_chain_link": """CREATE TRIGGER audit_events_chain_link
    BEFORE INSERT ON audit_events
    WHEN NEW.seq IS NOT COALESCE(
            (SELECT last_seq FROM audit_chain_heads WHERE clinic_id = NEW.clinic_id), 0) + 1
      OR NEW.prev_hash IS NOT COALESCE(
            (SELECT last_hash FROM audit_chain_heads WHERE clinic_id = NEW.clinic_id),
            '@GENESIS@')
    BEGIN SELECT RAISE(ABORT, 'audit event does not extend its clinic''s chain');
    END""".replace("@GENESIS@", GENESIS),
    "audit_events_chain_head": """CREATE TRIGGER audit_events_chain_head
    AFTER INSERT ON audit_events
    BEGIN
        INSERT INTO audit_chain_heads (clinic_id, last_seq, last_hash)
        VALUES (NEW.clinic_id, NEW.seq, NEW.hash)
        ON CONFLICT (clinic_id) DO UPDATE
        SET last_seq = excluded.last_seq, last_hash = excluded.last_hash;
    END""",
    "audit_chain_heads_follow": """CREATE TRIGGER audit_chain_heads_follow
    BEFORE UPDATE ON audit_chain_heads
    WHEN NEW.clinic_id IS NOT OLD.clinic_id
      OR NEW.last_seq IS NOT OLD.last_seq + 1
      OR NOT EXISTS (SELECT 1 FROM audit_events WHERE clinic_id = NEW.clinic_id
                     AND seq = NEW.last_seq AND hash = NEW.last_hash)
    BEGIN SELECT RAISE(ABORT, 'audit chain heads move only with the chain'); END""",
    "audit_chain_heads_no_delete": """CREATE TRIGGER audit_chain_heads_no_delete
    BEFORE DELETE ON audit_chain_heads
    BEGIN SELECT RAISE(ABORT, 'audit chain heads move only with the chain'); END""",
}

# PostgreSQL trigger functions: name → body (stored verbatim by PostgreSQL as `prosrc`).
PG_FUNCTIONS: dict[str, str] = {
    "audit_events_refuse_change": """
    BEGIN
        RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END """,
    # One check per INSERT statement over the rows it added (revision 0025).
    "audit_events_extend_chain": str(_CHAIN.EXTEND_CHAIN_BODY),
    "audit_chain_heads_refuse_change": """
    BEGIN
        IF pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'audit chain heads move only with the chain: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END """,
}

# PostgreSQL triggers: name → (table, definition as `pg_get_triggerdef` prints it).
PG_TRIGGERS: dict[str, tuple[str, str]] = {
    "audit_events_append_only": (
        "audit_events",
        "CREATE TRIGGER audit_events_append_only BEFORE DELETE OR UPDATE ON "
        "public.audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()",
    ),
    "audit_events_no_truncate": (
        "audit_events",
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()",
    ),
    "audit_events_chain": ("audit_events", str(_CHAIN.CHAIN_TRIGGER)),
    "audit_chain_heads_guard": (
        "audit_chain_heads",
        "CREATE TRIGGER audit_chain_heads_guard BEFORE DELETE OR UPDATE ON "
        "public.audit_chain_heads FOR EACH ROW EXECUTE FUNCTION "
        "audit_chain_heads_refuse_change()",
    ),
}

# Tables whose rows the application role sees only for its transaction's clinic.
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
    "analytics_versions",
    "emergency_accesses",
    "notifications",
    "care_team_members",
    "adverse_event_follow_ups",
    "note_snippets",
    "favourites",
    "fhir_export_jobs",
    "fhir_export_chunks",
    "imported_records",
    "questionnaire_plans",
    "questionnaire_assignments",
    "questionnaire_responses",
    "outbox_messages",
)
_CLINIC_OF_TRANSACTION = "NULLIF(current_setting('needlepoint.clinic_id', true), '')::uuid"
# The policy's expression as PostgreSQL prints it back (pg_policies.qual / with_check).
_POLICY_EXPRESSION = (
    "(clinic_id = (NULLIF(current_setting('needlepoint.clinic_id'::text, true), ''::text))::uuid)"
)

# Privileges the application role must not hold: the audit trail only grows.
# The application role appends audit events only through the SECURITY DEFINER function of
# migration 0010, which computes the chain itself.
REVOKED: dict[str, tuple[str, ...]] = {
    "audit_events": ("INSERT", "UPDATE", "DELETE", "TRUNCATE"),
    "audit_chain_heads": ("INSERT", "DELETE", "TRUNCATE"),
    "alembic_version": ("INSERT", "UPDATE", "DELETE", "TRUNCATE"),
    # an adverse event's follow-ups are appended, never edited (issue 15)
    "adverse_event_follow_ups": ("UPDATE", "DELETE", "TRUNCATE"),
}


APPEND_FUNCTION = "needlepoint_append_audit_events(jsonb)"


def _append_function_sql() -> str:
    """The append function's definition, as the newest migration creates it."""
    return str(_CHAIN.APPEND_FUNCTION)


def _append_function_problems(conn: sa.Connection) -> list[str]:
    found = conn.execute(
        sa.text("SELECT prosecdef FROM pg_proc WHERE oid = to_regprocedure(:f)"),
        {"f": APPEND_FUNCTION},
    ).first()
    if found is None:
        return [f"the audit append function {APPEND_FUNCTION} is missing"]
    problems = [] if found[0] else [f"the audit append function {APPEND_FUNCTION} was altered"]
    if (
        _role_exists(conn)
        and not conn.execute(
            sa.text("SELECT has_function_privilege(:role, :f, 'EXECUTE')"),
            {"role": APP_ROLE, "f": APPEND_FUNCTION},
        ).scalar_one()
    ):
        problems.append(f"the application role may not run {APPEND_FUNCTION}")
    return problems


def _run(conn: sa.Connection, sql: str) -> None:
    conn.execute(sa.text(sql))


def _squash(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def inspect(conn: sa.Connection) -> list[str]:
    """What is missing, disabled or altered, one sentence each (empty when all is in
    place)."""
    if conn.dialect.name == "sqlite":
        return _inspect_sqlite(conn)
    return _inspect_postgresql(conn)


def ensure(conn: sa.Connection) -> list[str]:
    """Put back whatever `inspect` finds wrong (run by the owner role, in the caller's
    transaction); returns what was repaired."""
    problems = inspect(conn)
    if not problems:
        return []
    if conn.dialect.name == "sqlite":
        _repair_sqlite(conn)
    else:
        _repair_postgresql(conn)
    return problems


# -- SQLite ------------------------------------------------------------------------------


def _sqlite_triggers(conn: sa.Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
    return {name: sql for name, sql in rows}


def _inspect_sqlite(conn: sa.Connection) -> list[str]:
    found = _sqlite_triggers(conn)
    problems = []
    for name, ddl in SQLITE_TRIGGERS.items():
        if name not in found:
            problems.append(f"trigger {name} is missing")
        elif _squash(found[name]) != _squash(ddl):
            problems.append(f"trigger {name} was altered")
    return problems


def _repair_sqlite(conn: sa.Connection) -> None:
    found = _sqlite_triggers(conn)
    for name, ddl in SQLITE_TRIGGERS.items():
        if _squash(found.get(name)) != _squash(ddl):
            _run(conn, f"DROP TRIGGER IF EXISTS {name}")
            _run(conn, ddl)


# -- PostgreSQL --------------------------------------------------------------------------


def _pg_functions(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT p.proname, p.prosrc FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname = ANY(:names)"
        ),
        {"names": list(PG_FUNCTIONS)},
    )
    return {name: src for name, src in rows}


def _pg_triggers(conn: sa.Connection) -> dict[str, tuple[str, str]]:
    """name → (enabled flag, definition) of the protective triggers present."""
    rows = conn.execute(
        sa.text(
            "SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND NOT t.tgisinternal "
            "AND t.tgname = ANY(:names)"
        ),
        {"names": list(PG_TRIGGERS)},
    )
    return {name: (str(enabled), definition) for name, enabled, definition in rows}


def _pg_tables(conn: sa.Connection) -> dict[str, bool]:
    """Existing tables of the schema → row-level security enabled."""
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, c.relrowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )
    )
    return {name: bool(rls) for name, rls in rows}


def _pg_policies(conn: sa.Connection) -> dict[str, tuple[str, list[str], str, str]]:
    rows = conn.execute(
        sa.text(
            "SELECT tablename, cmd, roles, qual, with_check FROM pg_policies "
            "WHERE schemaname = current_schema() AND policyname = 'clinic_isolation'"
        )
    )
    return {t: (cmd, list(roles), qual or "", check or "") for t, cmd, roles, qual, check in rows}


def _role_exists(conn: sa.Connection) -> bool:
    found = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE})
    return found.first() is not None


def _inspect_postgresql(conn: sa.Connection) -> list[str]:
    problems: list[str] = []
    functions = _pg_functions(conn)
    for name, body in PG_FUNCTIONS.items():
        if name not in functions:
            problems.append(f"trigger function {name}() is missing")
        elif _squash(functions[name]) != _squash(body):
            problems.append(f"trigger function {name}() was altered")
    triggers = _pg_triggers(conn)
    for name, (table, definition) in PG_TRIGGERS.items():
        if name not in triggers:
            problems.append(f"trigger {name} on {table} is missing")
            continue
        enabled, found = triggers[name]
        if enabled not in ("O", "A"):
            problems.append(f"trigger {name} on {table} is disabled")
        if _squash(found) != _squash(definition):
            problems.append(f"trigger {name} on {table} was altered")
    tables = _pg_tables(conn)
    policies = _pg_policies(conn)
    for table in RLS_TABLES:
        if table not in tables:
            continue  # an older schema; the migrations make it
        if not tables[table]:
            problems.append(f"row-level security is off on {table}")
        policy = policies.get(table)
        if policy is None:
            problems.append(f"policy clinic_isolation on {table} is missing")
        elif policy != ("ALL", [APP_ROLE], _POLICY_EXPRESSION, _POLICY_EXPRESSION):
            problems.append(f"policy clinic_isolation on {table} was altered")
    if "audit_events" in tables:
        problems += _append_function_problems(conn)
    if not _role_exists(conn):
        problems.append(f"the application role {APP_ROLE} is missing")
        return problems
    for table, privileges in REVOKED.items():
        if table not in tables:
            continue
        for privilege in privileges:
            held = conn.execute(
                sa.text("SELECT has_table_privilege(:role, :table, :privilege)"),
                {"role": APP_ROLE, "table": table, "privilege": privilege},
            ).scalar_one()
            if held:
                problems.append(f"the application role may {privilege} {table}")
    return problems


def _repair_postgresql(conn: sa.Connection) -> None:
    if not _role_exists(conn):
        _run(
            conn,
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE {APP_ROLE} NOLOGIN;
                END IF;
            END $$""",
        )
        _run(conn, f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
        _run(
            conn,
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        )
    functions = _pg_functions(conn)
    for name, body in PG_FUNCTIONS.items():
        if _squash(functions.get(name)) != _squash(body):
            _run(
                conn,
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger "
                f"LANGUAGE plpgsql AS $${body}$$",
            )
    triggers = _pg_triggers(conn)
    for name, (table, definition) in PG_TRIGGERS.items():
        found = triggers.get(name)
        if found is None or found[0] not in ("O", "A") or _squash(found[1]) != _squash(definition):
            _run(conn, f"DROP TRIGGER IF EXISTS {name} ON {table}")
            _run(conn, definition)
    tables = _pg_tables(conn)
    policies = _pg_policies(conn)
    for table in RLS_TABLES:
        if table not in tables:
            continue
        _run(conn, f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        if policies.get(table) != ("ALL", [APP_ROLE], _POLICY_EXPRESSION, _POLICY_EXPRESSION):
            _run(conn, f"DROP POLICY IF EXISTS clinic_isolation ON {table}")
            _run(
                conn,
                f"CREATE POLICY clinic_isolation ON {table} TO {APP_ROLE} "
                f"USING (clinic_id = {_CLINIC_OF_TRANSACTION}) "
                f"WITH CHECK (clinic_id = {_CLINIC_OF_TRANSACTION})",
            )
    if "audit_events" in tables and _append_function_problems(conn):
        _run(conn, _append_function_sql())
        _run(conn, f"REVOKE ALL ON FUNCTION {APPEND_FUNCTION} FROM PUBLIC")
        _run(conn, f"GRANT EXECUTE ON FUNCTION {APPEND_FUNCTION} TO {APP_ROLE}")
    for table, privileges in REVOKED.items():
        if table in tables:
            _run(conn, f"REVOKE {', '.join(privileges)} ON {table} FROM {APP_ROLE}")
