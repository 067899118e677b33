"""PostgreSQL row-level security: connected as the application role, even raw SQL sees
and writes only the rows of the clinic its transaction is scoped to — and the
application itself works unchanged under that role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from needlepoint.actions import patients
from needlepoint.adapters.db.engine import make_engine, scope_to_clinic
from needlepoint.queries.audit import verify_chains
from tests.conftest import make_api, make_clinic
from tests.factories import patient_cmd


@pytest.fixture
def app_engine(postgres_engine: sa.Engine) -> Iterator[sa.Engine]:
    """The test database, connected as a login role that is a member of needlepoint_app
    (as the server should be): not a superuser, not the tables' owner."""
    role = f"needlepoint_test_web_{uuid.uuid4().hex[:8]}"
    with postgres_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN IN ROLE needlepoint_app")
        conn.commit()
    engine = make_engine(postgres_engine.url.set(username=role))
    try:
        yield engine
    finally:
        engine.dispose()
        with postgres_engine.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE {role}")
            conn.commit()


def run_as_clinic(
    engine: sa.Engine, clinic_id: UUID, statement: sa.TextClause, **params: Any
) -> None:
    """Run one statement in a transaction scoped to `clinic_id`, as the application does."""
    with engine.begin() as conn:
        scope_to_clinic(conn, clinic_id)
        conn.execute(statement, params)


def test_raw_sql_through_the_applications_connection_cannot_read_another_clinics_rows(
    postgres_engine: sa.Engine, app_engine: sa.Engine
) -> None:
    mine, theirs = make_clinic(postgres_engine), make_clinic(postgres_engine, "Theirs")
    for c in (mine, theirs):
        patients.register_patient(c.uow(), c.as_clinician, patient_cmd())
    a, b = mine.owner.clinic_id, theirs.owner.clinic_id

    with app_engine.connect() as conn:
        # No clinic chosen for the transaction: no clinical row at all.
        assert conn.exec_driver_sql("SELECT count(*) FROM patients").scalar_one() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar_one() == 0
        scope_to_clinic(conn, a)
        seen = set(conn.exec_driver_sql("SELECT clinic_id FROM patients").scalars())
        assert seen == {a}
        asked = conn.execute(
            sa.text("SELECT count(*) FROM patients WHERE clinic_id = :b"), {"b": b}
        ).scalar_one()
        assert asked == 0
        events = set(conn.exec_driver_sql("SELECT clinic_id FROM audit_events").scalars())
        assert events == {a}

    intrusion = sa.text(
        "INSERT INTO patients (id, clinic_id, mrn, given_name, family_name, birth_date, sex, "
        "created_at, updated_at, version) "
        "VALUES (:id, :b, 'X-1', 'Eve', 'Intruder', :d, 'female', now(), now(), 1)"
    )
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        run_as_clinic(app_engine, a, intrusion, id=uuid.uuid4(), b=b, d=date(1990, 1, 1))

    # The scope ends with the transaction: a pooled connection does not carry it over.
    with app_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM patients").scalar_one() == 0


def test_the_application_role_cannot_change_or_delete_audit_events(
    postgres_engine: sa.Engine, app_engine: sa.Engine
) -> None:
    clinic = make_clinic(postgres_engine)
    for statement in (
        "UPDATE audit_events SET source = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "DELETE FROM audit_chain_heads",
    ):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            run_as_clinic(app_engine, clinic.owner.clinic_id, sa.text(statement))


def test_the_application_works_under_row_level_security(app_engine: sa.Engine) -> None:
    clinic = make_clinic(app_engine)
    api = make_api(app_engine, clinic)
    r = api.client.post(
        "/api/v1/patients",
        json={
            "mrn": "RLS-1",
            "given_name": "Rosa",
            "family_name": "Lund",
            "birth_date": "1970-01-01",
            "sex": "female",
        },
        headers=api.headers(),
    )
    assert r.status_code == 201, r.text
    timeline = api.client.get(f"/api/v1/patients/{r.json()['id']}/timeline", headers=api.headers())
    assert timeline.status_code == 200, timeline.text
    denied = api.client.get("/api/v1/audit", headers=api.headers())
    assert denied.status_code == 403
    report = api.client.get("/api/v1/audit", headers=api.headers("owner"))
    assert report.json()["total"] >= 5
    with app_engine.connect() as conn:
        scope_to_clinic(conn, clinic.owner.clinic_id)
        assert verify_chains(conn, clinic.owner.clinic_id).ok


def test_audit_verify_as_the_application_role_needs_a_clinic(app_engine: sa.Engine) -> None:
    from typer.testing import CliRunner

    from needlepoint.cli import app

    clinic = make_clinic(app_engine)
    url = app_engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    everything = runner.invoke(app, ["audit", "verify", "--db", url])
    assert everything.exit_code == 2
    assert "row-level security" in everything.output
    one = runner.invoke(
        app, ["audit", "verify", "--db", url, "--clinic", str(clinic.owner.clinic_id)]
    )
    assert one.exit_code == 0, one.output
    assert "OK" in one.output


# Tables that carry a clinic_id but are read before a clinic is known — sign-in, the API
# token and web-session lookups, the second factor, the sign-in limits — or at sign-in to
# apply the clinic's session policy; and the staff's training (credentials, not health
# information). Every other table with a clinic_id is under row-level security: a table
# added later is caught here until it gets a policy or a reason in this list.
OUTSIDE_ROW_LEVEL_SECURITY = {
    "users": "sign-in finds the user by e-mail before the clinic is known",
    "api_tokens": "a bearer token is looked up before the clinic is known",
    "web_sessions": "a session cookie is looked up before the clinic is known",
    "mfa_secrets": "the second factor is checked during sign-in",
    "recovery_codes": "the second factor is checked during sign-in",
    "login_attempts": "sign-in limits cover unknown accounts of no clinic",
    "security_settings": "the clinic's session policy is applied at sign-in",
    "training_records": "staff credentials, not health information",
    "account_codes": "an enrolment or reset code is looked up by its hash before sign-in",
    "questionnaire_links": "a patient's link is looked up by its hash before the clinic is known",
}


def test_every_table_of_a_clinics_records_is_under_row_level_security(
    postgres_engine: sa.Engine,
) -> None:
    from needlepoint.adapters.db import tables as t

    with postgres_engine.connect() as conn:
        secured = {
            row.relname
            for row in conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid "
                    "WHERE c.relrowsecurity AND p.polname = 'clinic_isolation'"
                )
            )
        }
    with_clinic = {table.name for table in t.metadata.sorted_tables if "clinic_id" in table.c}
    assert {"emergency_accesses", "notifications", "care_team_members"} <= secured
    unexplained = with_clinic - secured - set(OUTSIDE_ROW_LEVEL_SECURITY)
    assert not unexplained, f"a clinic's rows without row-level security: {unexplained}"


def test_emergency_accesses_notifications_and_care_teams_stay_in_their_clinic(
    postgres_engine: sa.Engine, app_engine: sa.Engine
) -> None:
    from needlepoint.actions import accounts, care_team, episodes
    from needlepoint.domain.commands import AddCareTeamMember, RequestEmergencyAccess
    from tests.factories import episode_cmd

    mine, theirs = make_clinic(postgres_engine), make_clinic(postgres_engine, "Theirs")
    for c in (mine, theirs):
        p = patients.register_patient(c.uow(), c.as_owner, patient_cmd())
        episodes.open_episode(c.uow(), c.as_owner, episode_cmd(p.id))
        accounts.grant_emergency_access(
            c.uow(), c.as_clinician, p.id, RequestEmergencyAccess(reason="collapsed at reception")
        )
        care_team.add_care_team_member(
            c.uow(), c.as_owner, p.id, AddCareTeamMember(user_id=c.clinician.id, reason="cover")
        )
    a, b = mine.owner.clinic_id, theirs.owner.clinic_id
    tables = ("emergency_accesses", "notifications", "care_team_members")
    with app_engine.connect() as conn:
        for table in tables:  # no clinic chosen: nothing
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() == 0
        scope_to_clinic(conn, a)
        for table in tables:
            seen = set(conn.exec_driver_sql(f"SELECT clinic_id FROM {table}").scalars())
            assert seen == {a}, table
    forged = sa.text(
        "INSERT INTO notifications (id, clinic_id, recipient_id, kind, subject_id, message, "
        "created_at) VALUES (:id, :b, :who, 'emergency_access', :id, 'x', now())"
    )
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        run_as_clinic(app_engine, a, forged, id=uuid.uuid4(), b=b, who=theirs.owner.id)
