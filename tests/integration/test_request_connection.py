"""An API request authenticates and runs its action on one pooled connection, and the
action's first transaction is given the user and clinic the token lookup just read."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.entities import Clinic, User
from needlepoint.web.context import lookup_token
from tests.conftest import Api, ClinicFixture


def _patient(mrn: str) -> dict[str, str]:
    return {
        "mrn": mrn,
        "given_name": "Pat",
        "family_name": "Connection",
        "birth_date": date(1980, 1, 1).isoformat(),
        "sex": "female",
    }


def test_every_request_returns_its_connection(engine: sa.Engine, api: Api) -> None:
    pool = engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    c = api.client
    assert (
        c.post("/api/v1/patients", json=_patient("RC-1"), headers=api.headers()).status_code == 201
    )
    assert (
        c.post("/api/v1/patients", json=_patient("RC-1"), headers=api.headers()).status_code == 422
    )
    assert c.post("/api/v1/patients", json={"mrn": ""}, headers=api.headers()).status_code == 422
    assert c.get("/api/v1/patients", headers=api.headers()).status_code == 200
    bad = {"Authorization": "Bearer not-a-token"}
    assert c.get("/api/v1/patients", headers=bad).status_code == 401
    staff = {"email": "rc@test.example", "full_name": "R C", "role": "clinician"}
    refused = c.post("/api/v1/users", json=staff, headers=api.headers("assistant"))
    assert refused.status_code == 403, refused.text
    assert pool.checkedout() == before  # type: ignore[attr-defined]


def test_the_token_lookup_leaves_the_connection_transactional(engine: sa.Engine, api: Api) -> None:
    """On PostgreSQL the lookup runs in autocommit; the action after it must not."""
    with engine.connect() as conn:
        holder = lookup_token(conn, api.tokens["clinician"])
        assert holder is not None
        assert holder.user.id == api.clinic.clinician.id
        assert not conn.in_transaction()
        with SqlUnitOfWork(engine, connection=conn) as uow:
            uow.connection.execute(
                sa.update(t.clinics).where(t.clinics.c.id == holder.clinic.id).values(name="X")
            )
            uow.rollback()
        assert not conn.closed  # lent: the request closes it, not the unit of work
    with engine.connect() as other:
        name = other.execute(
            sa.select(t.clinics.c.name).where(t.clinics.c.id == api.clinic.owner.clinic_id)
        ).scalar_one()
    assert name != "X"


def test_known_records_serve_only_the_first_transaction(clinic: ClinicFixture) -> None:
    with clinic.engine.connect() as conn:
        real = SqlUnitOfWork(clinic.engine)
        with real:
            user = real.get(User, clinic.clinician.id, clinic.owner.clinic_id)
            found_clinic = real.get(Clinic, clinic.owner.clinic_id, clinic.owner.clinic_id)
        assert user is not None
        assert found_clinic is not None
        told = replace(user, full_name="As read at sign-in")
        uow = SqlUnitOfWork(clinic.engine, connection=conn, known=[told])
        with uow:
            assert uow.get(User, user.id, clinic.owner.clinic_id) == told
            # Asked for in another clinic, a known record is still refused (tenant check).
            assert uow.get(User, user.id, uuid.uuid4()) is None
        with uow:
            assert uow.get(User, user.id, clinic.owner.clinic_id) == user


def test_a_write_request_on_postgresql_authenticates_inside_its_transaction(
    engine: sa.Engine, api: Api
) -> None:
    """PostgreSQL: the lookup begins the write transaction and scopes it to the holder's
    clinic in the same statement; an unknown token leaves no transaction open. SQLite
    (BEGIN IMMEDIATE comes with the action) looks up outside any transaction."""
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        holder = lookup_token(conn, api.tokens["clinician"], begin=True)
        assert holder is not None
        assert conn.in_transaction() is postgres
        if postgres:
            scope = conn.exec_driver_sql(
                "SELECT current_setting('needlepoint.clinic_id', true)"
            ).scalar_one()
            assert scope == str(holder.clinic.id)
        uow = SqlUnitOfWork(
            engine, connection=conn, scoped_to=holder.clinic.id if postgres else None
        )
        with uow:
            assert uow.get(User, holder.user.id, holder.clinic.id) == holder.user
        assert not conn.in_transaction()
        assert lookup_token(conn, "no-such-token", begin=True) is None
        assert not conn.in_transaction()
