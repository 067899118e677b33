"""Fewer interactions in the note, through the pages (SQLite and PostgreSQL): snippets per
clinic and per clinician offered in the SOAP sections, favourite muscles and needle sizes,
the last signed note's subjective, plan and ROM side carried forward, questionnaires with
their answer wording and on demand, and no silent side for a muscle or a ROM."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from needlepoint.adapters.db import tables as t
from needlepoint.domain.enums import Role
from needlepoint.queries.outcomes import patient_measurements, patient_medication
from needlepoint.queries.reader import open_reader
from tests.conftest import make_clinic
from tests.integration.test_web_app import note_form, patient_with_episode, sign_in, site


def test_snippets_are_the_clinics_and_ones_own_and_favourites_shape_the_note(
    engine: sa.Engine,
) -> None:
    clinic = make_clinic(engine)
    owner = sign_in(engine, clinic, Role.OWNER)
    me = sign_in(engine, clinic)
    colleague = sign_in(engine, clinic)
    _, episode = patient_with_episode(clinic)
    clinic_wide = {"section": "plan", "title": "Home exercise", "text": "Chin tucks 3x10 daily."}
    assert owner.post("/snippets", data={**clinic_wide, "scope": "clinic"}).status_code == 200
    mine = {"section": "subjective", "title": "Desk", "text": "Worse after desk work."}
    # a clinician writes only their own: the clinic's snippets are the owner's to write
    assert me.post("/snippets", data={**mine, "scope": "clinic"}).status_code == 400
    assert me.post("/snippets", data=mine).status_code == 200
    refused = me.post("/snippets", data={"section": "plan", "title": "x", "text": ""})
    assert refused.status_code == 400
    assert 'data-field="text"' in refused.text
    with engine.connect() as c:
        rows = c.execute(
            sa.select(t.note_snippets).where(t.note_snippets.c.clinic_id == clinic.owner.clinic_id)
        ).all()
        events = c.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_events)
            .where(
                t.audit_events.c.clinic_id == clinic.owner.clinic_id,
                t.audit_events.c.action == "clinic.note_snippet_added",
            )
        ).scalar_one()
    assert len(rows) == 2
    assert events == 2
    assert sum(r.owner_id is None for r in rows) == 1

    saved = me.post(
        "/snippets/favourites",
        data={"muscles": ["levator_scapulae", "upper_trapezius"], "needles": "0.30 x 40, 0.25x30"},
    )
    assert saved.status_code == 200, saved.text
    bad = me.post("/snippets/favourites", data={"muscles": ["no_such_muscle"]})
    assert bad.status_code == 400

    page = me.get(f"/episodes/{episode.id}/sessions/new").text
    assert 'id="snip-plan"' in page
    assert ">Home exercise<" in page  # the clinic's
    assert ">Desk<" in page  # my own
    favs = re.search(r'<ul id="fav-muscles".*?</ul>', page, re.S)
    assert favs
    assert favs.group(0).index("Levator") < favs.group(0).index("Upper trapezius")
    template = page[page.index('<template id="site-template">') :]
    assert 'name="sites-__i__-needle_gauge_mm" inputmode="decimal" value="0.30"' in template
    assert 'name="sites-__i__-needle_length_mm" inputmode="decimal" value="40"' in template
    other = colleague.get(f"/episodes/{episode.id}/sessions/new").text
    assert ">Desk<" not in other
    assert ">Home exercise<" in other
    assert 'id="fav-muscles"' not in other


def test_the_next_note_starts_from_the_last_signed_one_and_no_side_is_assumed(
    engine: sa.Engine,
) -> None:
    clinic = make_clinic(engine)
    client = sign_in(engine, clinic)
    patient, episode = patient_with_episode(clinic)
    first = client.get(f"/episodes/{episode.id}/sessions/new").text
    assert 'id="carried"' not in first
    assert '<select id="f-rom_side" name="rom_side"><option value="">Choose…</option>' in first
    # the NDI (due) with its answers' wording, and the on-demand questionnaires
    assert re.search(r'<label for="due-item1-0"><b>0</b> no problem</label>', first)
    assert 'data-instrument="psfs"' in first
    assert 'data-instrument="return_to_activity"' in first
    # a muscle added without the chart has no side until the clinician says it
    added = client.post(
        f"/episodes/{episode.id}/sessions",
        data={**note_form(episode.id), "add_muscle": "levator_scapulae"},
    ).text
    assert re.search(
        r'name="sites-0-side"><option value="">Choose…</option><option value="left">', added
    )
    no_side = client.post(
        f"/episodes/{episode.id}/sessions",
        data={**note_form(episode.id, rom="60", intent="save"), **site(0, "upper_trapezius")},
    )
    assert no_side.status_code == 400
    assert 'data-field="rom_side"' in no_side.text
    signed = client.post(
        f"/episodes/{episode.id}/sessions",
        data={
            **note_form(
                episode.id,
                subjective="Neck pain 6/10.",
                plan="DN twice weekly.",
                rom="60",
                rom_side="right",
                nprs="6",
                intent="sign",
                **{"x-groc-item1": "3", "x-psfs-item1": "4", "x-psfs-ctx-activity1": "Driving"},
            ),
            **site(0, "upper_trapezius"),
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    # "Sign note" saves and shows what it will lock; "Sign and lock" signs (issue 15).
    confirm = client.get(signed.headers["location"]).text
    version = re.search(r'name="version" value="(\d+)"', confirm)
    assert version
    signed = client.post(
        signed.headers["location"], data={"version": version[1]}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    with open_reader(engine, clinic.owner.clinic_id, Role.CLINICIAN, clinic.clinician.id) as r:
        groc = patient_measurements(r, patient.id, "groc")
        psfs = patient_measurements(r, patient.id, "psfs")
    assert [m.score for m in groc] == [3]
    assert psfs[0].context == {"activity1": "Driving"}
    done = client.get(signed.headers["location"]).text
    assert f'href="/episodes/{episode.id}/sessions/new?copy=last"' in done  # next note
    second = client.get(f"/episodes/{episode.id}/sessions/new", params={"copy": "last"}).text
    assert 'id="carried"' in second
    assert ">Neck pain 6/10.</textarea>" in second
    assert ">DN twice weekly.</textarea>" in second
    assert '<option value="right" selected>' in second.split('id="f-rom_side"')[1][:400]
    assert 'id="tp-all"' in second  # one control for every site's trigger point


def test_the_analgesic_log_and_the_discharge_are_in_the_app(engine: sa.Engine) -> None:
    clinic = make_clinic(engine)
    client = sign_in(engine, clinic)
    patient, episode = patient_with_episode(clinic)
    today = datetime.now(UTC).date().isoformat()
    assert f'href="/episodes/{episode.id}/care"' in client.get(f"/episodes/{episode.id}").text
    bad = client.post(
        f"/episodes/{episode.id}/medications",
        data={"drug": "Ibuprofen", "drug_class": "nsaid", "days_per_week": "9"},
    )
    assert bad.status_code == 400
    assert 'data-field="days_per_week"' in bad.text
    logged = client.post(
        f"/episodes/{episode.id}/medications",
        data={
            "drug": "Ibuprofen",
            "drug_class": "nsaid",
            "dose_mg": "400",
            "days_per_week": "5",
            "recorded_on": today,
        },
    )
    assert logged.status_code == 200, logged.text
    assert "Ibuprofen" in logged.text
    assert "400 mg" in logged.text
    no_reason = client.post(f"/episodes/{episode.id}/close", data={"closed_on": today})
    assert no_reason.status_code == 400
    assert 'data-field="discharge_reason"' in no_reason.text
    closed = client.post(
        f"/episodes/{episode.id}/close",
        data={"closed_on": today, "discharge_reason": "Goals met; self-managing."},
    )
    assert closed.status_code == 200, closed.text
    assert "New session note" not in closed.text  # a closed episode takes no more notes
    assert f"closed {today}" in closed.text
    with open_reader(engine, clinic.owner.clinic_id, Role.CLINICIAN, clinic.clinician.id) as r:
        assert [m.days_per_week for m in patient_medication(r, patient.id)] == [5]
