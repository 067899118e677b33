"""The schema, as SQLAlchemy Core tables. Column names equal the field names of the
matching entity in `domain.entities` (checked by a unit test); Alembic migrations in
`migrations/` create exactly this schema (checked by an integration test)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from needlepoint.adapters.db.types import JSONType, SealedText, UTCDateTime, enum_column_type
from needlepoint.domain import entities as e
from needlepoint.domain import enums

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.Uuid, primary_key=True)


def _clinic() -> sa.Column[object]:
    return sa.Column("clinic_id", sa.Uuid, sa.ForeignKey("clinics.id"), nullable=False)


def _ref(name: str, target: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Uuid, sa.ForeignKey(f"{target}.id"), nullable=nullable)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _version() -> sa.Column[object]:
    return sa.Column("version", sa.Integer, nullable=False)


clinics = sa.Table(
    "clinics",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    _at("created_at"),
    _version(),
    sa.Column("jurisdiction", sa.String(16), nullable=False),
    sa.Column("credential_policy", enum_column_type(enums.CredentialPolicy), nullable=False),
    sa.Column("screening_valid_days", sa.Integer, nullable=False),
    sa.Column("bill_sides_separately", sa.Boolean, nullable=False),
    sa.Column("min_training_hours", sa.Float),
    sa.Column("min_licence_years", sa.Float),
    sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    _clinic(),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("full_name", sa.String(200), nullable=False),
    sa.Column("role", enum_column_type(enums.Role), nullable=False),
    _at("created_at"),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("licence_number", sa.String(64)),
    sa.Column("licence_date", sa.Date),
    sa.Column("is_active", sa.Boolean, nullable=False),
    _version(),
    _at("sign_in_reset_at", nullable=True),
    # Unique within a clinic only: one clinic cannot learn that an email is used by
    # another (sign-in tries each clinic's account with that email).
    sa.UniqueConstraint("clinic_id", "email"),
    sa.Index(None, "clinic_id"),
    sa.Index(None, "email"),
)

training_records = sa.Table(
    "training_records",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    sa.Column("provider", sa.String(200), nullable=False),
    sa.Column("course", sa.String(200), nullable=False),
    sa.Column("hours_in_person", sa.Float, nullable=False),
    sa.Column("hours_online", sa.Float, nullable=False),
    sa.Column("completed_on", sa.Date, nullable=False),
    sa.Column("exam_passed", sa.Boolean, nullable=False),
    sa.Column("regions", JSONType, nullable=False),
    _at("created_at"),
    sa.Column("supervised_sessions", sa.Integer),
    sa.Index(None, "user_id"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    _at("created_at"),
    _at("revoked_at", nullable=True),
    sa.Column("scopes", sa.String(64), nullable=False, server_default="read write"),
    _at("expires_at", nullable=True),
    sa.Index(None, "user_id"),
)

patients = sa.Table(
    "patients",
    metadata,
    _id(),
    _clinic(),
    sa.Column("mrn", sa.String(64), nullable=False),
    sa.Column("given_name", sa.String(100), nullable=False),
    sa.Column("family_name", sa.String(100), nullable=False),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("sex", enum_column_type(enums.Sex), nullable=False),
    _at("created_at"),
    _at("updated_at"),
    sa.Column("phone", sa.String(40)),
    sa.Column("email", sa.String(254)),
    _version(),
    sa.UniqueConstraint("clinic_id", "mrn"),
    # Covers patient search: the name/MRN filter and the ordering read the index alone.
    sa.Index(None, "clinic_id", "family_name", "given_name", "id", "mrn"),
)

referrals = sa.Table(
    "referrals",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("referrer_name", sa.String(200), nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    _at("created_at"),
    sa.Index(None, "patient_id"),
)

consents = sa.Table(
    "consents",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("template_id", sa.String(64), nullable=False),
    sa.Column("template_version", sa.String(32), nullable=False),
    sa.Column("signer_name", sa.String(200), nullable=False),
    sa.Column("method", enum_column_type(enums.ConsentMethod), nullable=False),
    _at("signed_at"),
    sa.Column("copy_given", sa.Boolean, nullable=False),
    _ref("recorded_by", "users"),
    _at("created_at"),
    sa.Column("witness_name", sa.String(200)),
    _at("withdrawn_at", nullable=True),
    _version(),
    sa.Column("signature", sa.Text),
    sa.Column("signer_relationship", sa.String(32)),
    sa.Index(None, "patient_id"),
)

screenings = sa.Table(
    "screenings",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("answers", JSONType, nullable=False),
    sa.Column("decision", enum_column_type(enums.ScreeningDecision), nullable=False),
    sa.Column("reasons", JSONType, nullable=False),
    sa.Column("rules_version", sa.String(32), nullable=False),
    _ref("screened_by", "users"),
    _at("screened_at"),
    _at("created_at"),
    sa.Column("override_justification", sa.Text),
    sa.Column("acknowledged", JSONType, nullable=False),
    sa.Column("clearances", JSONType),
    sa.Index(None, "patient_id"),
)

episodes = sa.Table(
    "episodes",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    _ref("clinician_id", "users"),
    sa.Column("condition", sa.String(64), nullable=False),
    sa.Column("icd10_code", sa.String(16), nullable=False),
    sa.Column("body_region", sa.String(32), nullable=False),
    sa.Column("onset_date", sa.Date, nullable=False),
    sa.Column("opened_on", sa.Date, nullable=False),
    sa.Column("goals", sa.Text, nullable=False),
    sa.Column("status", enum_column_type(enums.EpisodeStatus), nullable=False),
    _at("created_at"),
    _at("updated_at"),
    sa.Column("closed_on", sa.Date),
    sa.Column("discharge_reason", sa.Text),
    _version(),
    sa.Index(None, "patient_id"),
    sa.Index(None, "clinic_id", "condition"),
)

plan_items = sa.Table(
    "plan_items",
    metadata,
    _id(),
    _clinic(),
    _ref("episode_id", "episodes"),
    sa.Column("modality", enum_column_type(enums.Modality), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    _at("created_at"),
    sa.Column("sessions_per_week", sa.Float),
    sa.Index(None, "episode_id"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    _ref("episode_id", "episodes"),
    _ref("clinician_id", "users"),
    _at("started_at"),
    sa.Column("subjective", sa.Text, nullable=False),
    sa.Column("objective", sa.Text, nullable=False),
    sa.Column("assessment", sa.Text, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("status", enum_column_type(enums.SessionStatus), nullable=False),
    _at("created_at"),
    _at("updated_at"),
    _ref("signed_by", "users", nullable=True),
    _at("signed_at", nullable=True),
    _version(),
    sa.Column("safety_flags", JSONType, nullable=False),
    sa.Column("cpt_code", sa.String(8)),
    sa.Column("billing_muscles", sa.Integer),
    sa.Index(None, "episode_id", "started_at"),
    sa.Index(None, "patient_id"),
)

needling_sites = sa.Table(
    "needling_sites",
    metadata,
    _id(),
    _clinic(),
    _ref("session_id", "sessions"),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("muscle_id", sa.String(64), nullable=False),
    sa.Column("side", enum_column_type(enums.Side), nullable=False),
    sa.Column("trigger_point", enum_column_type(enums.TriggerPoint), nullable=False),
    sa.Column("technique", enum_column_type(enums.Technique), nullable=False),
    sa.Column("needle_gauge_mm", sa.Float, nullable=False),
    sa.Column("needle_length_mm", sa.Float, nullable=False),
    sa.Column("depth_mm", sa.Float, nullable=False),
    sa.Column("insertions", sa.Integer, nullable=False),
    sa.Column("local_twitch_responses", sa.Integer, nullable=False),
    sa.Column("electrical_stimulation", sa.Boolean, nullable=False),
    sa.Column("tolerance", enum_column_type(enums.Tolerance), nullable=False),
    sa.Column("estim_params", JSONType),
    sa.Column("notes", sa.Text),
    sa.Column("override_reason", sa.Text),
    # issue 13 (truth-sites): the structured override reason and the needle's approach
    sa.Column("override_code", enum_column_type(enums.OverrideCode)),
    sa.Column("approach", enum_column_type(enums.Approach)),
    sa.Index(None, "session_id"),
)

co_interventions = sa.Table(
    "co_interventions",
    metadata,
    _id(),
    _clinic(),
    _ref("session_id", "sessions"),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("modality", enum_column_type(enums.Modality), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("minutes", sa.Integer),
    sa.Index(None, "session_id"),
)

adverse_events = sa.Table(
    "adverse_events",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("kind", enum_column_type(enums.AdverseEventKind), nullable=False),
    sa.Column("severity", enum_column_type(enums.Severity), nullable=False),
    _at("onset_at"),
    sa.Column("description", sa.Text, nullable=False),
    _ref("recorded_by", "users"),
    _at("created_at"),
    _ref("session_id", "sessions", nullable=True),
    sa.Column("action_taken", sa.Text),
    sa.Column("reportable", sa.Boolean, nullable=False),
    _at("reported_at", nullable=True),
    sa.Index(None, "patient_id"),
    sa.Index(None, "session_id"),
)

adverse_event_follow_ups = sa.Table(
    "adverse_event_follow_ups",
    metadata,
    _id(),
    _clinic(),
    _ref("adverse_event_id", "adverse_events"),
    _ref("patient_id", "patients"),
    sa.Column("kind", enum_column_type(enums.FollowUpKind), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _at("occurred_at"),
    _ref("recorded_by", "users"),
    _at("created_at"),
    sa.Index(None, "adverse_event_id"),
)

measurements = sa.Table(
    "measurements",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("instrument_id", sa.String(32), nullable=False),
    sa.Column("instrument_version", sa.String(16), nullable=False),
    sa.Column("answers", JSONType, nullable=False),
    _at("taken_at"),
    _ref("recorded_by", "users"),
    _at("created_at"),
    sa.Column("score", sa.Float),
    _ref("episode_id", "episodes", nullable=True),
    _ref("session_id", "sessions", nullable=True),
    sa.Column("context", JSONType),
    sa.Index(None, "patient_id", "instrument_id", "taken_at"),
    sa.Index(None, "episode_id"),
    sa.Index(None, "session_id"),
)

medication_uses = sa.Table(
    "medication_uses",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("drug", sa.String(100), nullable=False),
    sa.Column("drug_class", enum_column_type(enums.DrugClass), nullable=False),
    sa.Column("days_per_week", sa.Integer, nullable=False),
    sa.Column("recorded_on", sa.Date, nullable=False),
    _ref("recorded_by", "users"),
    _at("created_at"),
    _ref("episode_id", "episodes", nullable=True),
    sa.Column("dose_mg", sa.Float),
    _ref("response_id", "questionnaire_responses", nullable=True),
    sa.Index(None, "patient_id"),
)

amendments = sa.Table(
    "amendments",
    metadata,
    _id(),
    _clinic(),
    _ref("session_id", "sessions"),
    _ref("author_id", "users"),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _at("created_at"),
    sa.Index(None, "session_id"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    _id(),
    _clinic(),
    sa.Column("action", enum_column_type(enums.AuditAction), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.Uuid, nullable=False),
    _at("occurred_at"),
    sa.Column("source", sa.String(16), nullable=False),
    _ref("actor_user_id", "users", nullable=True),
    _ref("patient_id", "patients", nullable=True),
    sa.Column("before_digest", sa.String(64)),
    sa.Column("after_digest", sa.String(64)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("outcome", enum_column_type(enums.AuditOutcome), nullable=False),
    sa.Column("source_address", sa.String(64)),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "clinic_id", "occurred_at"),
    sa.Index(None, "entity_id"),
    # One event per place in a clinic's chain: two writers can never fork it.
    sa.UniqueConstraint("clinic_id", "seq"),
)

audit_chain_heads = sa.Table(
    "audit_chain_heads",
    metadata,
    # The newest event of each clinic's audit chain, kept by a database trigger on every
    # insert into audit_events; writers lock this row (PostgreSQL) to append in turn.
    sa.Column("clinic_id", sa.Uuid, sa.ForeignKey("clinics.id"), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

# -- accounts, sessions and emergency access (security issue) ----------------------------

security_settings = sa.Table(
    "security_settings",
    metadata,
    _id(),
    sa.Column("clinic_id", sa.Uuid, sa.ForeignKey("clinics.id"), nullable=False, unique=True),
    sa.Column("mfa_required", sa.Boolean, nullable=False),
    sa.Column("idle_timeout_minutes", sa.Integer, nullable=False),
    sa.Column("absolute_timeout_hours", sa.Integer, nullable=False),
    sa.Column("emergency_access_minutes", sa.Integer, nullable=False),
    sa.Column("care_team_restriction", sa.Boolean, nullable=False),
    _version(),
    sa.Column("api_token_days", sa.Integer, nullable=False, server_default="90"),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    _at("created_at"),
    _at("last_seen_at"),
    _at("expires_at"),
    sa.Column("address", sa.String(64)),
    sa.Column("mfa_pending", sa.Boolean, nullable=False),
    _at("revoked_at", nullable=True),
    sa.Index(None, "user_id"),
)

mfa_secrets = sa.Table(
    "mfa_secrets",
    metadata,
    _id(),
    _clinic(),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id"), nullable=False, unique=True),
    # Sealed with a key kept outside the database (adapters/sealing.py).
    sa.Column("secret", SealedText("mfa_secrets.secret"), nullable=False),
    _at("created_at"),
    _at("confirmed_at", nullable=True),
    sa.Column("last_counter", sa.BigInteger),
    _version(),
)

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    sa.Column("code_hash", sa.String(64), nullable=False),
    _at("created_at"),
    _at("used_at", nullable=True),
    sa.Index(None, "user_id"),
)

emergency_accesses = sa.Table(
    "emergency_accesses",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    _ref("patient_id", "patients"),
    sa.Column("reason", sa.Text, nullable=False),
    _at("granted_at"),
    _at("expires_at"),
    sa.Index(None, "clinic_id", "granted_at"),
)

care_team_members = sa.Table(
    "care_team_members",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    _ref("user_id", "users"),
    _ref("added_by", "users"),
    sa.Column("reason", sa.Text, nullable=False),
    _at("added_at"),
    sa.Index(None, "clinic_id", "patient_id"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    _id(),
    _clinic(),
    _ref("recipient_id", "users"),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("subject_id", sa.Uuid, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    _at("created_at"),
    _at("read_at", nullable=True),
    sa.Index(None, "recipient_id", "created_at"),
)

# Not a clinical record (an attempt may name no account, hence no clinic): written by
# `adapters.db.logins`, outside TABLE_OF. Counted for rate limiting, so it survives restarts.
# One-time codes an owner hands to a user out of band: to enrol a second factor once the
# clinic requires one, or to set a new password after an owner-initiated reset. Stored
# only hashed; read before anybody is signed in (the reset page), so outside RLS like the
# other staff tables.
account_codes = sa.Table(
    "account_codes",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    sa.Column("purpose", enum_column_type(enums.AccountCodePurpose), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    _ref("issued_by", "users"),
    _at("created_at"),
    _at("expires_at"),
    _at("used_at", nullable=True),
    sa.Index(None, "user_id"),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    _id(),
    _at("occurred_at"),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("clinic_id", sa.Uuid, sa.ForeignKey("clinics.id")),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id")),
    sa.Column("request_id", sa.String(64)),
    sa.Index(None, "email", "occurred_at"),
    sa.Index(None, "address", "occurred_at"),
)

# -- analytics invalidation (issue 12) ---------------------------------------------------

# Not a clinical record: each clinic's version of the records the analytics read, moved
# forward in the same transaction as every write that changes them (see
# `adapters.db.analytics_marks`); outside TABLE_OF. Each server process compares it with
# the version of its cached analytics: one primary-key read per analytics view.
analytics_versions = sa.Table(
    "analytics_versions",
    metadata,
    sa.Column("clinic_id", sa.Uuid, sa.ForeignKey("clinics.id"), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    _at("changed_at"),
)

# -- the API rate limit's use, shared by the serving processes (issue 12) -----------------

# Not a clinical record: how many API requests each serving process has admitted per
# caller key (a hash of the API token or the address), a running total each process
# writes every half second or so (`adapters.db.rate_usage`). Every process debits its
# own buckets with the others' new use, so the limit holds across `--workers N`.
rate_usage = sa.Table(
    "rate_usage",
    metadata,
    sa.Column("worker", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False),
    _at("started_at"),
    _at("updated_at"),
    sa.Index(None, "updated_at"),
)

# -- templates and favourites (issue 15 item 7) ----------------------------------------------

note_snippets = sa.Table(
    "note_snippets",
    metadata,
    _id(),
    _clinic(),
    _ref("owner_id", "users", nullable=True),
    sa.Column("section", enum_column_type(enums.SoapSection), nullable=False),
    sa.Column("title", sa.String(80), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _ref("created_by", "users"),
    _at("created_at"),
    sa.Index(None, "clinic_id", "owner_id"),
)

favourites = sa.Table(
    "favourites",
    metadata,
    _id(),
    _clinic(),
    _ref("user_id", "users"),
    sa.Column("kind", enum_column_type(enums.FavouriteKind), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    _at("created_at"),
    sa.Index(None, "clinic_id", "user_id"),
)

# -- FHIR bulk export (issue 17 item 1) -----------------------------------------------------

# Not entities of the clinical record: a bulk export's job and its NDJSON output, written
# by `adapters.db.fhir_exports` (outside TABLE_OF), under row-level security. The state
# lives here so that any serving process answers the status poll and serves the files.
fhir_export_jobs = sa.Table(
    "fhir_export_jobs",
    metadata,
    _id(),
    _clinic(),
    _ref("requested_by", "users"),
    sa.Column("request_url", sa.Text, nullable=False),
    sa.Column("types", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    _at("requested_at"),
    _at("updated_at"),
    _at("finished_at", nullable=True),
    sa.Column("patients_total", sa.Integer, nullable=False),
    sa.Column("patients_done", sa.Integer, nullable=False),
    sa.Column("output", JSONType),
    sa.Column("error", sa.Text),
    sa.Index(None, "clinic_id", "requested_at"),
)

fhir_export_chunks = sa.Table(
    "fhir_export_chunks",
    metadata,
    _id(),
    _clinic(),
    _ref("job_id", "fhir_export_jobs"),
    sa.Column("resource_type", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.UniqueConstraint("job_id", "resource_type", "seq"),
)

# Provenance of imported records (migration 0018): one row per imported patient, episode
# and session; a re-run of an import skips the patients found here.
imported_records = sa.Table(
    "imported_records",
    metadata,
    _id(),
    _clinic(),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("record_id", sa.Uuid, nullable=False),
    _ref("patient_id", "patients"),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("external_id", sa.String(300), nullable=False),
    _ref("imported_by", "users"),
    _at("imported_at"),
    sa.UniqueConstraint("clinic_id", "source", "kind", "external_id"),
    sa.Index(None, "record_id"),
    sa.Index(None, "patient_id"),
)

# -- questionnaires from home (issue 16) ---------------------------------------------------

questionnaire_plans = sa.Table(
    "questionnaire_plans",
    metadata,
    _id(),
    _clinic(),
    sa.Column("condition", sa.String(64), nullable=False),
    sa.Column("instruments", JSONType, nullable=False),
    sa.Column("follow_up_days", JSONType, nullable=False),
    _ref("updated_by", "users"),
    _at("updated_at"),
    sa.Column("every_n_days", sa.Integer),
    _version(),
    sa.UniqueConstraint("clinic_id", "condition"),
)

questionnaire_assignments = sa.Table(
    "questionnaire_assignments",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    _ref("episode_id", "episodes"),
    sa.Column("instrument_id", sa.String(32), nullable=False),
    sa.Column("time_point", enum_column_type(enums.TimePoint), nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    _ref("assigned_by", "users"),
    _at("created_at"),
    _at("completed_at", nullable=True),
    _ref("measurement_id", "measurements", nullable=True),
    _at("cancelled_at", nullable=True),
    _version(),
    sa.Index(None, "clinic_id", "patient_id", "due_on"),
    sa.Index(None, "episode_id"),
)

# Outside row-level security, like account_codes: a link is looked up by its token's hash
# before anybody is known (the patient opening it), and its clinic is learned from it. It
# holds no health information: ids, the hash and times.
questionnaire_links = sa.Table(
    "questionnaire_links",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _ref("issued_by", "users"),
    _at("created_at"),
    _at("expires_at"),
    _ref("episode_id", "episodes", nullable=True),
    _at("ended_at", nullable=True),
    sa.Column("ended_because", enum_column_type(enums.LinkEnd)),
    sa.Column("reminders_sent", sa.Integer, nullable=False),
    _version(),
    sa.Column("kiosk", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index(None, "clinic_id", "patient_id"),
)

questionnaire_responses = sa.Table(
    "questionnaire_responses",
    metadata,
    _id(),
    _clinic(),
    _ref("patient_id", "patients"),
    _ref("assignment_id", "questionnaire_assignments"),
    _ref("link_id", "questionnaire_links"),
    sa.Column("answers", JSONType, nullable=False),
    _at("started_at"),
    _at("updated_at"),
    _at("submitted_at", nullable=True),
    _ref("measurement_id", "measurements", nullable=True),
    _version(),
    sa.UniqueConstraint("assignment_id"),
    sa.Index(None, "clinic_id", "patient_id"),
    sa.Index(None, "measurement_id"),
)

outbox_messages = sa.Table(
    "outbox_messages",
    metadata,
    _id(),
    _clinic(),
    sa.Column("kind", enum_column_type(enums.MessageKind), nullable=False),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", enum_column_type(enums.OutboxState), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    _at("next_attempt_at"),
    _at("created_at"),
    _ref("patient_id", "patients", nullable=True),
    _ref("link_id", "questionnaire_links", nullable=True),
    sa.Column("link_url", SealedText("outbox_messages.link_url")),
    _at("claimed_at", nullable=True),
    sa.Column("claim_id", sa.Uuid),
    _at("sent_at", nullable=True),
    sa.Column("last_error", sa.Text),
    _version(),
    sa.Index(None, "clinic_id", "state", "next_attempt_at"),
    sa.Index(None, "clinic_id", "created_at"),
)

TABLE_OF: dict[type[Any], sa.Table] = {
    e.Clinic: clinics,
    e.User: users,
    e.TrainingRecord: training_records,
    e.ApiToken: api_tokens,
    e.Patient: patients,
    e.Referral: referrals,
    e.Consent: consents,
    e.Screening: screenings,
    e.Episode: episodes,
    e.PlanItem: plan_items,
    e.Session: sessions,
    e.NeedlingSite: needling_sites,
    e.CoIntervention: co_interventions,
    e.AdverseEvent: adverse_events,
    e.AdverseEventFollowUp: adverse_event_follow_ups,
    e.Measurement: measurements,
    e.MedicationUse: medication_uses,
    e.Amendment: amendments,
    e.AuditEvent: audit_events,
    e.SecuritySettings: security_settings,
    e.WebSession: web_sessions,
    e.MfaSecret: mfa_secrets,
    e.RecoveryCode: recovery_codes,
    e.EmergencyAccess: emergency_accesses,
    e.Notification: notifications,
    e.CareTeamMember: care_team_members,
    e.AccountCode: account_codes,
    e.NoteSnippet: note_snippets,
    e.Favourite: favourites,
    e.ImportedRecord: imported_records,
    e.QuestionnairePlan: questionnaire_plans,
    e.QuestionnaireAssignment: questionnaire_assignments,
    e.QuestionnaireLink: questionnaire_links,
    e.QuestionnaireResponse: questionnaire_responses,
    e.OutboxMessage: outbox_messages,
}
"""Which table holds each kind of entity."""
