"""The owner's staff pages (invite a colleague, role and licence, dry needling training,
deactivate) and the patient details page (demographics, referring clinician): every
change through its action, with its audit event; bad input shown at the field with
nothing saved."""

from __future__ import annotations

import re
from datetime import date, timedelta
from uuid import UUID

import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.clinics import register_user
from needlepoint.actions.patients import register_patient
from needlepoint.adapters.db.tables import (
    audit_events,
    patients,
    referrals,
    training_records,
    users,
)
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.enums import AuditAction, Role
from needlepoint.web.app import create_app
from tests.conftest import ClinicFixture, make_clinic
from tests.factories import patient_cmd
from tests.integration.test_pages import signed_in

PASSWORD = "correct horse battery"


def _owner_client(engine: sa.Engine) -> tuple[ClinicFixture, TestClient, UUID]:
    clinic = make_clinic(engine)
    tag = clinic.owner.id.hex[:8]
    owner = register_user(
        SqlUnitOfWork(engine),
        clinic.as_owner,
        RegisterUser(
            email=f"boss-{tag}@test.example",
            full_name="Olive Owner",
            role=Role.OWNER,
            password=PASSWORD,
        ),
    )
    return clinic, signed_in(engine, owner.email, PASSWORD), owner.id


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found[1]


def _events(engine: sa.Engine, clinic_id: UUID, kind: AuditAction) -> int:
    with engine.connect() as c:
        return int(
            c.scalar(
                sa.select(sa.func.count())
                .select_from(audit_events)
                .where(audit_events.c.clinic_id == clinic_id, audit_events.c.action == kind.value)
            )
            or 0
        )


def test_an_owner_invites_a_colleague_who_chooses_a_password_and_signs_in(
    sqlite_engine: sa.Engine,
) -> None:
    clinic, client, _owner = _owner_client(sqlite_engine)
    page = client.get("/staff")
    assert page.status_code == 200
    assert "Invite a colleague" in page.text
    tag = clinic.owner.id.hex[:8]
    email = f"new-{tag}@test.example"
    done = client.post(
        "/staff/invite",
        data={
            "csrf": _csrf(page.text),
            "full_name": "Nina Newcomer",
            "email": email,
            "role": "clinician",
            "licence_number": "PT-123",
            "licence_date": "2019-06-01",
        },
    )
    assert done.status_code == 200
    code = re.search(r'<code id="one-time-code">([^<]+)</code>', done.text)
    assert code, done.text
    assert _events(sqlite_engine, clinic.owner.clinic_id, AuditAction.USER_REGISTERED) == 4
    # the colleague sets a password with the code, then signs in
    other = TestClient(create_app(sqlite_engine, secret_key="k" * 40))
    form = other.get("/password-reset").text
    reset = other.post(
        "/password-reset",
        data={"csrf": _csrf(form), "email": email, "reset_code": code[1], "new_password": PASSWORD},
    )
    assert reset.status_code == 200, reset.text
    assert "Your new password is set" in reset.text
    signed_in(sqlite_engine, email, PASSWORD)


def test_an_invitation_with_a_bad_email_is_refused_at_the_field(sqlite_engine: sa.Engine) -> None:
    _clinic, client, _owner = _owner_client(sqlite_engine)
    page = client.get("/staff").text
    bad = client.post(
        "/staff/invite",
        data={
            "csrf": _csrf(page),
            "full_name": "No Mail",
            "email": "not-an-email",
            "role": "clinician",
        },
    )
    assert bad.status_code == 400
    assert 'data-field="invite-email"' in bad.text
    assert 'value="No Mail"' in bad.text  # the input is kept
    with sqlite_engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).where(users.c.full_name == "No Mail")) == 0


def test_an_owner_changes_role_and_licence_and_records_training(sqlite_engine: sa.Engine) -> None:
    clinic, client, owner_id = _owner_client(sqlite_engine)
    member = clinic.clinician
    page = client.get(f"/staff/{member.id}")
    assert page.status_code == 200
    assert "No dry needling training recorded" in page.text
    csrf = _csrf(page.text)
    saved = client.post(
        f"/staff/{member.id}/profile",
        data={
            "csrf": csrf,
            "version": str(member.version),
            "full_name": "Pat Therapist",
            "role": "student",
            "licence_number": "PT-77",
            "licence_date": "2020-01-15",
        },
    )
    assert saved.status_code == 200
    assert "Details saved." in saved.text
    with sqlite_engine.connect() as c:
        row = c.execute(sa.select(users).where(users.c.id == member.id)).one()
    assert (row.role, row.licence_number, row.version) == ("student", "PT-77", member.version + 1)
    assert _events(sqlite_engine, clinic.owner.clinic_id, AuditAction.USER_UPDATED) == 1
    # a stale form is refused, naming why, and changes nothing
    stale = client.post(
        f"/staff/{member.id}/profile",
        data={"csrf": csrf, "version": str(member.version), "full_name": "X", "role": "owner"},
    )
    assert stale.status_code == 400
    assert 'data-field="version"' in stale.text
    # training: bad hours are refused at the field, nothing saved; good ones are recorded
    bad = client.post(
        f"/staff/{member.id}/training",
        data={
            "csrf": csrf,
            "course": "DN 1",
            "provider": "Acme",
            "completed_on": "2024-05-01",
            "hours_in_person": "-3",
        },
    )
    assert bad.status_code == 400
    assert 'data-field="course-hours_in_person"' in bad.text
    good = client.post(
        f"/staff/{member.id}/training",
        data={
            "csrf": csrf,
            "course": "DN 1",
            "provider": "Acme",
            "completed_on": "2024-05-01",
            "hours_in_person": "27",
            "hours_online": "3",
            "exam_passed": "on",
            "regions": ["neck", "shoulder"],
        },
    )
    assert good.status_code == 200
    assert "Training record added." in good.text
    assert "27 h in person, 3 h online" in good.text
    with sqlite_engine.connect() as c:
        rows = c.execute(
            sa.select(training_records).where(training_records.c.user_id == member.id)
        ).all()
    assert len(rows) == 1
    assert sorted(rows[0].regions) == ["neck", "shoulder"]
    # the owner's own role cannot be changed from the page
    mine = client.get(f"/staff/{owner_id}").text
    assert "You cannot change your own role." in mine


def test_an_owner_deactivates_a_colleague_and_others_cannot_manage_staff(
    sqlite_engine: sa.Engine,
) -> None:
    clinic, client, _owner = _owner_client(sqlite_engine)
    member = clinic.assistant
    page = client.get(f"/staff/{member.id}").text
    done = client.post(f"/staff/{member.id}/deactivate", data={"csrf": _csrf(page)})
    assert done.status_code == 200
    assert "deactivated" in done.text
    with sqlite_engine.connect() as c:
        assert c.scalar(sa.select(users.c.is_active).where(users.c.id == member.id)) is False
    tag = clinic.owner.id.hex[:8]
    register_user(
        SqlUnitOfWork(sqlite_engine),
        clinic.as_owner,
        RegisterUser(
            email=f"clin-{tag}@test.example", full_name="C", role=Role.CLINICIAN, password=PASSWORD
        ),
    )
    clinician = signed_in(sqlite_engine, f"clin-{tag}@test.example", PASSWORD)
    assert 'href="/staff"' in client.get("/patients").text  # the owner's menu
    assert 'href="/staff"' not in clinician.get("/patients").text
    refused = clinician.get(f"/staff/{clinic.clinician.id}")
    assert refused.status_code == 403


def test_the_patient_details_page_changes_demographics_and_records_the_referrer(
    sqlite_engine: sa.Engine,
) -> None:
    clinic, client, _owner = _owner_client(sqlite_engine)
    p = register_patient(SqlUnitOfWork(sqlite_engine), clinic.as_clinician, patient_cmd())
    assert f'href="/patients/{p.id}/edit"' in client.get(f"/patients/{p.id}").text
    page = client.get(f"/patients/{p.id}/edit")
    assert page.status_code == 200
    assert "No referral recorded." in page.text
    csrf = _csrf(page.text)
    form = {
        "csrf": csrf,
        "version": str(p.version),
        "given_name": p.given_name,
        "family_name": "Newname",
        "birth_date": p.birth_date.isoformat(),
        "sex": p.sex.value,
        "phone": "+1 555 0100",
        "email": "",
    }
    assert client.post(f"/patients/{p.id}/edit", data=form).status_code == 200
    with sqlite_engine.connect() as c:
        row = c.execute(sa.select(patients).where(patients.c.id == p.id)).one()
    assert (row.family_name, row.phone, row.version) == ("Newname", "+1 555 0100", p.version + 1)
    # the same (now stale) form again: refused, nothing changes
    again = client.post(f"/patients/{p.id}/edit", data=form | {"family_name": "Other"})
    assert again.status_code == 400
    assert 'data-field="version"' in again.text
    bad_date = client.post(
        f"/patients/{p.id}/edit",
        data=form
        | {
            "version": str(p.version + 1),
            "birth_date": (date.today() + timedelta(days=400)).isoformat(),
        },
    )
    assert bad_date.status_code == 400
    assert 'data-field="birth_date"' in bad_date.text
    with sqlite_engine.connect() as c:
        assert c.scalar(sa.select(patients.c.family_name).where(patients.c.id == p.id)) == "Newname"
    # the referring clinician: recorded, shown as current; a later one replaces it on screen
    for name, on in (("Dr Ana Ruiz, MD", "2026-01-05"), ("Dr Ben Ode, DO", "2026-02-10")):
        r = client.post(
            f"/patients/{p.id}/referral",
            data={"csrf": csrf, "referrer_name": name, "received_on": on, "reason": "Neck pain"},
        )
        assert r.status_code == 200
    shown = client.get(f"/patients/{p.id}/edit").text
    assert "Current: <strong>Dr Ben Ode, DO</strong>" in shown
    assert "Dr Ana Ruiz, MD" in shown  # the earlier one stays in the record
    empty = client.post(
        f"/patients/{p.id}/referral", data={"csrf": csrf, "referrer_name": "", "received_on": ""}
    )
    assert empty.status_code == 400
    assert 'data-field="referral-referrer_name"' in empty.text
    with sqlite_engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).where(referrals.c.patient_id == p.id)) == 2
    assert _events(sqlite_engine, clinic.owner.clinic_id, AuditAction.REFERRAL_RECORDED) == 2
    assert _events(sqlite_engine, clinic.owner.clinic_id, AuditAction.PATIENT_UPDATED) == 1


def test_settings_show_the_jurisdictions_rules_with_their_source_or_no_rule_recorded(
    sqlite_engine: sa.Engine,
) -> None:
    _clinic, client, _owner = _owner_client(sqlite_engine)
    page = client.get("/settings").text
    assert page.count("<option") >= 52 + 2  # every jurisdiction, and the two policies
    assert "United States - Wyoming (no rule recorded)" in page
    form = {
        "csrf": _csrf(page),
        "version": re.search(r'name="version" value="(\d+)"', page)[1],  # type: ignore[index]
        "jurisdiction": "us-tx",
        "credential_policy": "warn",
        "screening_valid_days": "90",
    }
    texas = client.post("/settings", data=form).text
    assert "United States - Texas: <strong>no rule recorded</strong>" in texas
    form["csrf"], form["version"] = _csrf(texas), str(int(form["version"]) + 1)
    virginia = client.post("/settings", data=form | {"jurisdiction": "us-va"}).text
    assert "training at least 54 h" in virginia
    assert "REFERENCE §6" in virginia  # the source, named
    assert "unverified: confirm with your regulator" in virginia
