"""Issue 17 item 3 on both databases: printable views and PDFs of a signed session note,
the progress / discharge report and the patient's copy of a signed consent.

Each PDF is rendered to PNG with poppler's `pdftoppm` and read back with `pdftotext`:
the words a reader needs are there (signer with credential, times with the clinic's
zone, units spaced, amendments with their authors, "not measured" rows), no internal id
is, and the report's outcome plots are drawn (plot-blue pixels on the page). Another
clinic's user gets "not found"; a draft has no printed form; a PDF download is on the
audit trail as an export."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from needlepoint.actions.accounts import update_security_settings
from needlepoint.actions.adverse_events import add_follow_up, record_adverse_event
from needlepoint.actions.clinics import register_user
from needlepoint.actions.consent import record_consent, withdraw_consent
from needlepoint.actions.credentials import update_clinic_settings
from needlepoint.actions.episodes import close_episode, open_episode
from needlepoint.actions.patients import register_patient
from needlepoint.actions.screening import record_screening
from needlepoint.actions.sessions import amend_session, record_session, sign_session
from needlepoint.adapters.db import tables as t
from needlepoint.domain.commands import (
    AddAdverseEventFollowUp,
    AmendSession,
    CloseEpisode,
    RecordAdverseEvent,
    RegisterUser,
    SignSession,
    UpdateClinicSettings,
    UpdateSecuritySettings,
    WithdrawConsent,
)
from needlepoint.domain.entities import Clinic
from needlepoint.domain.enums import AdverseEventKind, AuditAction, FollowUpKind, Role, Severity
from needlepoint.web.app import create_app
from tests.conftest import ClinicFixture
from tests.factories import (
    STARTED,
    consent_cmd,
    episode_cmd,
    patient_cmd,
    screening_cmd,
    session_cmd,
    site,
)

PASSWORD = "correct horse battery"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
SIGNATURE = "M 40 150 L 90 60 L 140 150 L 190 60 M 260 120 L 420 110 L 560 90"

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("pdftotext")),
    reason="poppler-utils (pdftoppm, pdftotext) missing: scripts/test installs them",
)


@dataclass
class Chart:
    patient_id: UUID
    episode_id: UUID
    signed_id: UUID
    draft_id: UUID
    consent_id: UUID


def _set_zone(clinic: ClinicFixture, zone: str) -> None:
    with clinic.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.clinics).where(t.clinics.c.id == clinic.owner.clinic_id)
        ).one()
    current = Clinic(**row._mapping)
    update_clinic_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateClinicSettings(expected_version=current.version, time_zone=zone),
    )


def _chart(clinic: ClinicFixture) -> Chart:
    """A patient with a drawn consent, three signed weekly sessions (NPRS 6 → 4 → 2),
    an amendment to the first, and a draft."""
    patient = register_patient(
        clinic.uow(),
        clinic.as_clinician,
        patient_cmd(given_name="Ada", family_name="Lovelace", birth_date=date(1980, 5, 17)),
    )
    record_screening(clinic.uow(), clinic.as_clinician, screening_cmd(patient.id))
    consent = record_consent(
        clinic.uow(),
        clinic.as_clinician,
        consent_cmd(
            patient.id,
            method="signature",
            signature=SIGNATURE,
            signer_name="Ada Lovelace",
            signer_relationship="patient",
        ),
    )
    episode = open_episode(clinic.uow(), clinic.as_clinician, episode_cmd(patient.id))
    signed = []
    for week, pain in enumerate((6, 4, 2)):
        draft = record_session(
            clinic.uow(),
            clinic.as_clinician,
            session_cmd(
                episode.id,
                started_at=(STARTED + timedelta(weeks=week)).isoformat(),
                measurements=[{"instrument_id": "nprs", "answers": {"item1": pain}}],
                # over the thorax: the approach the rules ask about is stored and printed
                sites=[site("upper_trapezius", approach="tangential"), site("levator_scapulae")],
            ),
        )
        signed.append(
            sign_session(
                clinic.uow(),
                clinic.as_clinician,
                SignSession(session_id=draft.id, expected_version=draft.version),
            )
        )
    amend_session(
        clinic.uow(),
        clinic.as_clinician,
        AmendSession(
            session_id=signed[0].id,
            reason="Depth corrected",
            text="The levator scapulae depth was 25 mm, not 30 mm.",
        ),
    )
    event = record_adverse_event(
        clinic.uow(),
        clinic.as_clinician,
        RecordAdverseEvent(
            session_id=signed[0].id,
            kind=AdverseEventKind.BRUISING,
            severity=Severity.MILD,
            onset_at=STARTED + timedelta(hours=20),
            description="Bruise over the left upper trapezius",
        ),
    )
    add_follow_up(
        clinic.uow(),
        clinic.as_clinician,
        AddAdverseEventFollowUp(
            adverse_event_id=event.id,
            kind=FollowUpKind.RESOLUTION,
            text="Resolved without treatment",
            occurred_at=STARTED + timedelta(days=5),
        ),
    )
    draft = record_session(
        clinic.uow(),
        clinic.as_clinician,
        session_cmd(episode.id, started_at=(STARTED + timedelta(weeks=4)).isoformat()),
    )
    return Chart(patient.id, episode.id, signed[0].id, draft.id, consent.id)


def _web(
    engine: sa.Engine, clinic: ClinicFixture, name: str = "Wendy Web", role: Role = Role.CLINICIAN
) -> TestClient:
    tag = re.sub(r"[^a-z0-9]", "", name.lower()) + str(clinic.owner.clinic_id)[:8]
    register_user(
        clinic.uow(),
        clinic.as_owner,
        RegisterUser(
            email=f"{tag}@test.example",
            full_name=name,
            role=role,
            password=PASSWORD,
            licence_number="PT-12345",
            licence_date=date(2015, 6, 1),
        ),
    )
    client = TestClient(create_app(engine, secret_key="k" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    r = client.post(
        "/login",
        data={"email": f"{tag}@test.example", "password": PASSWORD, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def _pdf_pages(pdf: bytes, tmp: Path, name: str) -> tuple[str, list[Path]]:
    """The PDF's text (`pdftotext -layout`) and its pages as PNG (`pdftoppm`, 100 dpi).
    Set NEEDLEPOINT_KEEP_PDF=dir to keep the files and look at them."""
    keep = os.environ.get("NEEDLEPOINT_KEEP_PDF")
    folder = Path(keep) if keep else tmp
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    subprocess.run(
        ["pdftoppm", "-r", "100", "-png", str(path), str(folder / name)],
        check=True,
        capture_output=True,
    )
    pages = sorted(folder.glob(f"{name}-*.png"))
    assert pages, "pdftoppm rendered no page"
    return text, pages


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _plot_blue_pixels(page: Path) -> int:
    """Pixels of the plots' line colour (#0b5cad), give or take anti-aliasing."""
    image = Image.open(page).convert("RGB")
    return sum(
        1 for r, g, b in image.get_flattened_data() if r < 60 and 60 < g < 130 and 140 < b < 210
    )


def _ink_pixels(page: Path) -> int:
    image = Image.open(page).convert("L")
    return sum(1 for v in image.get_flattened_data() if v < 128)


def _visible(html: str) -> str:
    """A page's text as read (tags, attributes and links left out)."""
    body = html.split("<main", 1)[1]
    return _words(re.sub(r"<[^>]+>", " ", body))


def _exports(
    engine: sa.Engine, clinic_id: UUID, *clients: TestClient
) -> list[tuple[str, UUID | None]]:
    """The `record.document_exported` events of a clinic (after the web app's queued
    audit events are written)."""
    for client in clients:
        client.app.state.deferred.flush()  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.audit_events.c.entity_type, t.audit_events.c.patient_id).where(
                t.audit_events.c.clinic_id == clinic_id,
                t.audit_events.c.action == AuditAction.DOCUMENT_EXPORTED,
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def test_the_signed_note_prints_and_downloads_with_signer_zone_sites_and_amendments(
    engine: sa.Engine, clinic: ClinicFixture, tmp_path: Path
) -> None:
    _set_zone(clinic, "America/Los_Angeles")
    chart = _chart(clinic)
    web = _web(engine, clinic)

    page = web.get(f"/sessions/{chart.signed_id}/print")
    assert page.status_code == 200, page.text
    seen = _visible(page.text)
    for words in (
        "Session note",
        "Lovelace, Ada",
        "2026-02-03 01:30 PST",  # 09:30 UTC in Los Angeles, with the zone
        "Signed by Pat Therapist, Licensed clinician",
        "Upper trapezius",
        "mm",
        "Depth corrected",
        "Amended by Pat Therapist, Licensed clinician",
        "Numeric Pain Rating Scale",
        "Approach",
        "tangential",
        "not recorded",  # the levator scapulae's approach was not recorded
    ):
        assert words in seen, words
    note_page = web.get(f"/sessions/{chart.signed_id}").text
    table = note_page.split('aria-label="Needling sites"')[1].split("</table>")[0]
    sites_table = " ".join(re.sub(r"<[^>]+>", " ", table).split())
    assert "tangential" in sites_table
    assert "Local twitch responses" in sites_table
    assert "LTR" not in sites_table
    assert not UUID_RE.search(seen), "an internal id on the print page"
    assert f'href="/sessions/{chart.signed_id}/pdf"' in page.text
    note_page = web.get(f"/sessions/{chart.signed_id}").text  # linked from the signed note
    assert f'href="/sessions/{chart.signed_id}/print"' in note_page
    assert f'href="/sessions/{chart.signed_id}/pdf"' in note_page

    pdf = web.get(f"/sessions/{chart.signed_id}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        'attachment; filename="session-note-2026-02-03.pdf"'
    )
    text, pages = _pdf_pages(pdf.content, tmp_path, "note")
    flat = _words(text)
    for words in (
        "Session note",
        "Lovelace, Ada · born 1980-05-17",
        "Session 2026-02-03 01:30 PST",
        "Pat Therapist, Licensed clinician",
        "Upper trapezius",
        "Levator scapulae",
        "tangential",
        "Depth corrected",
        "The levator scapulae depth was 25 mm, not 30 mm.",
        "Amended by Pat Therapist",
        "Adverse event (recorded after signing, onset 2026-02-03 21:30 PST): bruising, mild:",
        "Bruise over the left upper trapezius",
        "Resolution, 2026-02-08 01:30 PST: Resolved without treatment (Pat Therapist)",
        "Produced",
        "page 1 of",
    ):
        assert words in flat, words
    assert re.search(r"Signed \d{4}-\d\d-\d\d \d\d:\d\d P[SD]T · locked", flat), "signed, zoned"
    assert re.search(r"\b\d+(\.\d+)? × \d+ mm\b", flat), "needle size with its unit spaced"
    assert re.search(r"\b\d+ mm\b", flat), "depth with its unit spaced"
    assert not UUID_RE.search(flat), "an internal id in the PDF"
    assert _ink_pixels(pages[0]) > 2000, "the first page is blank"

    assert ("session_note", chart.patient_id) in _exports(engine, clinic.owner.clinic_id, web)


def test_the_report_plots_outcomes_against_the_mcid_and_says_not_measured(
    engine: sa.Engine, clinic: ClinicFixture, tmp_path: Path
) -> None:
    chart = _chart(clinic)
    web = _web(engine, clinic)

    page = web.get(f"/episodes/{chart.episode_id}/report")
    assert page.status_code == 200, page.text
    seen = _visible(page.text)
    assert "Progress report" in seen
    assert "not measured" in seen
    assert page.text.count('src="data:image/png;base64,') >= 1, "no plot on the print page"
    assert not UUID_RE.search(seen)

    pdf = web.get(f"/episodes/{chart.episode_id}/report/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    text, pages = _pdf_pages(pdf.content, tmp_path, "report")
    flat = _words(text)
    for words in (
        "Progress report",
        "Lovelace, Ada",
        "Diagnosis (ICD-10-CM)",
        "Needling by visit",
        "Needling by muscle",
        "Upper trapezius",
        "Outcomes over time",
        "MCID",
        "The eight benefits",
        "Blood circulation",
        "not measured",
        "Tissue healing",
        "Signature",
        "Report prepared by Wendy Web, Licensed clinician, licence PT-12345",
    ):
        assert words in flat, words
    # only signed notes count: three visits, not the draft
    assert "Signed sessions 3" in flat
    assert not UUID_RE.search(flat)
    images = subprocess.run(
        ["pdfimages", "-list", str(tmp_path / "report.pdf")]
        if not os.environ.get("NEEDLEPOINT_KEEP_PDF")
        else ["pdfimages", "-list", str(Path(os.environ["NEEDLEPOINT_KEEP_PDF"]) / "report.pdf")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert len(images.strip().splitlines()) >= 3, "no image in the report"  # 2 header lines
    assert max(_plot_blue_pixels(p) for p in pages) > 300, "the outcome plot is not drawn"


def test_the_consent_copy_has_the_form_the_signer_and_the_drawn_signature(
    engine: sa.Engine, clinic: ClinicFixture, tmp_path: Path
) -> None:
    _set_zone(clinic, "America/Los_Angeles")
    chart = _chart(clinic)
    web = _web(engine, clinic)

    chart_page = web.get(f"/patients/{chart.patient_id}")
    assert f'href="/consents/{chart.consent_id}/print"' in chart_page.text
    consent_page = web.get(f"/patients/{chart.patient_id}/consent")
    assert f'href="/consents/{chart.consent_id}/pdf"' in consent_page.text

    page = web.get(f"/consents/{chart.consent_id}/print")
    assert page.status_code == 200, page.text
    seen = _visible(page.text)
    assert "Informed consent" in seen
    assert "Ada Lovelace, the patient" in seen
    assert '<path d="M 40 150' in page.text
    assert not UUID_RE.search(seen)

    pdf = web.get(f"/consents/{chart.consent_id}/pdf")
    assert pdf.status_code == 200
    text, pages = _pdf_pages(pdf.content, tmp_path, "consent")
    flat = _words(text)
    for words in (
        "Informed consent — patient's copy",
        "version 1.0",
        "Ada Lovelace, the patient",
        "signature on screen",
        "2026-02-01 00:00 PST",  # 08:00 UTC
        "Recorded by Pat Therapist, Licensed clinician",
        "in force",
        "Signature of Ada Lovelace",
    ):
        assert words in flat, words
    assert not UUID_RE.search(flat)
    assert all(_ink_pixels(p) > 1000 for p in pages), "a blank page"
    assert ("consent", chart.patient_id) in _exports(engine, clinic.owner.clinic_id, web)


def test_a_draft_has_no_printed_form(engine: sa.Engine, clinic: ClinicFixture) -> None:
    chart = _chart(clinic)
    web = _web(engine, clinic)
    for url in (f"/sessions/{chart.draft_id}/print", f"/sessions/{chart.draft_id}/pdf"):
        r = web.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"].startswith("text/html")
        assert "only a signed note is printed" in r.text
    assert not _exports(engine, clinic.owner.clinic_id, web)


def test_another_clinic_gets_not_found_and_nothing_of_the_patient(
    engine: sa.Engine, clinic: ClinicFixture, other_clinic: ClinicFixture
) -> None:
    chart = _chart(clinic)
    outsider = _web(engine, other_clinic, "Olly Outsider")
    for url in (
        f"/sessions/{chart.signed_id}/print",
        f"/sessions/{chart.signed_id}/pdf",
        f"/episodes/{chart.episode_id}/report",
        f"/episodes/{chart.episode_id}/report/pdf",
        f"/consents/{chart.consent_id}/print",
        f"/consents/{chart.consent_id}/pdf",
    ):
        r = outsider.get(url)
        assert r.status_code == 404, url
        assert "Lovelace" not in r.text
    assert not _exports(engine, clinic.owner.clinic_id, outsider)
    assert not _exports(engine, other_clinic.owner.clinic_id, outsider)


def test_signed_out_is_sent_to_sign_in(engine: sa.Engine, clinic: ClinicFixture) -> None:
    chart = _chart(clinic)
    anonymous = TestClient(create_app(engine, secret_key="k" * 40))
    r = anonymous.get(f"/sessions/{chart.signed_id}/pdf", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


def test_a_closed_episode_gives_a_discharge_report(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    chart = _chart(clinic)
    with engine.connect() as conn:
        version = conn.execute(
            sa.select(t.episodes.c.version).where(t.episodes.c.id == chart.episode_id)
        ).scalar_one()
    close_episode(
        clinic.uow(),
        clinic.as_clinician,
        CloseEpisode(
            episode_id=chart.episode_id,
            expected_version=version,
            closed_on=date(2026, 3, 1),
            discharge_reason="Goals met",
        ),
    )
    web = _web(engine, clinic)
    page = web.get(f"/episodes/{chart.episode_id}/report")
    seen = _visible(page.text)
    assert "Discharge report" in seen
    assert "2026-03-01: Goals met" in seen
    pdf = web.get(f"/episodes/{chart.episode_id}/report/pdf")
    assert pdf.headers["content-disposition"].startswith('attachment; filename="discharge-report-')


def test_the_front_desk_cannot_print_clinical_documents(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    chart = _chart(clinic)
    desk = _web(engine, clinic, "Dana Desk", Role.ASSISTANT)
    for url in (
        f"/sessions/{chart.signed_id}/pdf",
        f"/episodes/{chart.episode_id}/report/pdf",
        f"/consents/{chart.consent_id}/pdf",
        f"/consents/{chart.consent_id}/print",
    ):
        r = desk.get(url)
        assert r.status_code == 403, url
        assert "Lovelace" not in r.text
    assert not _exports(engine, clinic.owner.clinic_id, desk)


def test_outside_the_care_team_a_clinician_cannot_print(
    engine: sa.Engine, clinic: ClinicFixture
) -> None:
    chart = _chart(clinic)
    update_security_settings(
        clinic.uow(),
        clinic.as_owner,
        UpdateSecuritySettings(mfa_required=False, care_team_restriction=True),
        expected_version=1,
    )
    outsider = _web(engine, clinic, "Nora Notteam")
    for url in (
        f"/sessions/{chart.signed_id}/pdf",
        f"/episodes/{chart.episode_id}/report",
        f"/consents/{chart.consent_id}/pdf",
    ):
        r = outsider.get(url)
        assert r.status_code == 403, url
        assert "Lovelace" not in r.text
    assert not _exports(engine, clinic.owner.clinic_id, outsider)


def test_a_withdrawn_consent_says_so_on_its_copy(
    engine: sa.Engine, clinic: ClinicFixture, tmp_path: Path
) -> None:
    chart = _chart(clinic)
    withdraw_consent(
        clinic.uow(),
        clinic.as_clinician,
        WithdrawConsent(
            consent_id=chart.consent_id,
            expected_version=1,
            withdrawn_at=STARTED + timedelta(weeks=6),
        ),
    )
    web = _web(engine, clinic)
    text, _pages = _pdf_pages(web.get(f"/consents/{chart.consent_id}/pdf").content, tmp_path, "w")
    assert "withdrawn 2026-03-17 09:30 UTC" in _words(text)
    assert "in force" not in _words(text)
