"""The FHIR mapping's rules, without a database: each resource parses with its R4B model,
codes come only from verified or local systems, and what is not known is not claimed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given
from hypothesis import strategies as st

from needlepoint.adapters.fhir import codes, mapping
from needlepoint.domain import instruments
from needlepoint.domain.entities import (
    Consent,
    Episode,
    Measurement,
    NeedlingSite,
    Patient,
    Session,
)
from needlepoint.domain.enums import (
    ConsentMethod,
    EpisodeStatus,
    SessionStatus,
    Sex,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)

CLINIC, CLINICIAN = uuid4(), uuid4()
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def parse(resource: dict[str, Any]) -> Any:
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def patient(**changes: Any) -> Patient:
    data: dict[str, Any] = {
        "id": uuid4(),
        "clinic_id": CLINIC,
        "mrn": "A-1",
        "given_name": "Ada",
        "family_name": "Unitperson",
        "birth_date": date(1980, 1, 2),
        "sex": Sex.FEMALE,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Patient(**{**data, **changes})


def session(p: Patient, status: SessionStatus = SessionStatus.SIGNED) -> Session:
    signed = status == SessionStatus.SIGNED
    return Session(
        id=uuid4(),
        clinic_id=CLINIC,
        patient_id=p.id,
        episode_id=uuid4(),
        clinician_id=CLINICIAN,
        started_at=NOW,
        subjective="s",
        objective="o",
        assessment="a",
        plan="p",
        status=status,
        created_at=NOW,
        updated_at=NOW,
        signed_by=CLINICIAN if signed else None,
        signed_at=NOW if signed else None,
        cpt_code="20560" if signed else None,
        billing_muscles=1 if signed else None,
    )


def site(s: Session, side: Side, muscle_id: str = "upper_trapezius") -> NeedlingSite:
    return NeedlingSite(
        id=uuid4(),
        clinic_id=CLINIC,
        session_id=s.id,
        position=1,
        muscle_id=muscle_id,
        side=side,
        trigger_point=TriggerPoint.ACTIVE,
        technique=Technique.PISTONING,
        needle_gauge_mm=0.25,
        needle_length_mm=30,
        depth_mm=15,
        insertions=3,
        local_twitch_responses=1,
        electrical_stimulation=False,
        tolerance=Tolerance.GOOD,
    )


def measurement(
    p: Patient, instrument_id: str, answers: dict[str, Any], score: float | None
) -> Measurement:
    return Measurement(
        id=uuid4(),
        clinic_id=CLINIC,
        patient_id=p.id,
        instrument_id=instrument_id,
        instrument_version=instruments.get(instrument_id).version,
        answers=answers,
        taken_at=NOW,
        recorded_by=CLINICIAN,
        created_at=NOW,
        score=score,
    )


def test_laterality_is_snomed_for_left_and_right_and_text_only_for_the_midline() -> None:
    p = patient()
    s = session(p)
    left = mapping.site_procedure_resource(s, site(s, Side.LEFT))
    right = mapping.site_procedure_resource(s, site(s, Side.RIGHT))
    midline = mapping.site_procedure_resource(s, site(s, Side.MIDLINE))
    for resource in (left, right, midline):
        parse(resource)

    def laterality(resource: dict[str, Any]) -> tuple[str, str]:
        c = resource["bodySite"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]
        return c["system"], c["code"]

    assert laterality(left) == ("http://snomed.info/sct", "7771000")
    assert laterality(right) == ("http://snomed.info/sct", "24028007")
    assert "extension" not in midline["bodySite"][0]
    assert midline["bodySite"][0]["text"] == "Upper trapezius, midline"
    # the muscle itself: our code and its name, never a SNOMED CT code we did not verify
    assert left["bodySite"][0]["coding"] == [
        {"system": codes.MUSCLE, "code": "upper_trapezius", "display": "Upper trapezius"}
    ]


def test_only_verified_loinc_codes_are_used_for_scores() -> None:
    p = patient()
    nprs = mapping.observation_resource(
        measurement(p, "nprs", {"item1": 6}, 6.0), instruments.get("nprs")
    )
    ndi_instrument = instruments.get("ndi")
    answers = {name: 2 for name in ndi_instrument.item_names}
    ndi = mapping.observation_resource(measurement(p, "ndi", answers, 40.0), ndi_instrument)
    assert nprs is not None
    assert ndi is not None
    assert nprs["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "72514-3",
        "display": "Numeric Pain Rating Scale",
    }
    # NDI's LOINC 82237-9 is unverified (REFERENCE ⚠️): the local code, not LOINC
    assert ndi_instrument.loinc is not None
    assert not ndi_instrument.loinc.verified
    assert ndi["code"]["coding"][0]["system"] == codes.INSTRUMENT
    assert ndi["code"]["coding"][0]["code"] == "ndi"


def test_an_unscorable_form_has_its_answers_but_no_score() -> None:
    p = patient()
    ndi = instruments.get("ndi")
    m = measurement(p, "ndi", {"item1": 3}, None)
    assert mapping.observation_resource(m, ndi) is None
    response = mapping.response_resource(m, ndi)
    parse(response)
    answered = [i for i in response["item"] if "answer" in i]
    assert [i["linkId"] for i in answered] == ["item1"]
    assert response["questionnaire"] == f"urn:needlepoint:questionnaire:ndi|{ndi.version}"


def test_a_draft_note_has_no_signature_provenance() -> None:
    p = patient()
    assert mapping.signature_provenance(session(p, SessionStatus.DRAFT), []) is None
    signed = mapping.signature_provenance(session(p), [])
    assert signed is not None
    parse(signed)


def test_a_withdrawn_consent_is_inactive_from_its_withdrawal() -> None:
    p = patient()
    withdrawn = datetime(2026, 4, 1, tzinfo=UTC)
    c = Consent(
        id=uuid4(),
        clinic_id=CLINIC,
        patient_id=p.id,
        template_id="dry_needling",
        template_version="1.0",
        signer_name="Ada Unitperson",
        method=ConsentMethod.TYPED_NAME,
        signed_at=NOW,
        copy_given=True,
        recorded_by=CLINICIAN,
        created_at=NOW,
        withdrawn_at=withdrawn,
    )
    resource = mapping.consent_resource(c)
    parse(resource)
    assert resource["status"] == "inactive"
    assert resource["provision"]["period"]["end"] == withdrawn.isoformat()


def test_every_questionnaire_of_the_library_is_valid_and_uses_known_systems() -> None:
    for q in mapping.all_questionnaires():
        parse(q)
        assert {c["system"] for c in q["code"]} <= codes.KNOWN_SYSTEMS


def test_closed_episode_is_a_resolved_condition_and_a_finished_episode_of_care() -> None:
    p = patient()
    e = Episode(
        id=uuid4(),
        clinic_id=CLINIC,
        patient_id=p.id,
        clinician_id=CLINICIAN,
        condition="neck_pain",
        icd10_code="M54.2",
        body_region="neck",
        onset_date=date(2026, 1, 1),
        opened_on=date(2026, 1, 5),
        goals="g",
        status=EpisodeStatus.CLOSED,
        created_at=NOW,
        updated_at=NOW,
        closed_on=date(2026, 3, 1),
    )
    condition, episode = mapping.condition_resource(e), mapping.episode_resource(e)
    parse(condition)
    parse(episode)
    assert condition["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert condition["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "M54.2",
        "display": "Cervicalgia",
    }
    assert episode["status"] == "finished"
    assert episode["period"] == {"start": "2026-01-05", "end": "2026-03-01"}


def test_official_uris_for_the_external_code_systems() -> None:
    assert codes.LOINC == "http://loinc.org"
    assert codes.SNOMED == "http://snomed.info/sct"
    assert codes.ICD10CM == "http://hl7.org/fhir/sid/icd-10-cm"
    assert codes.CPT == "http://www.ama-assn.org/go/cpt"
    local = {s.uri for s in codes.SYSTEMS if s.uri.startswith("urn:needlepoint:")}
    external = codes.KNOWN_SYSTEMS - local
    assert all(uri.startswith(("http://", "urn:iso-astm:")) for uri in external)


@given(
    sex=st.sampled_from(list(Sex)),
    phone=st.none() | st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s),
    given_name=st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=30),
)
def test_any_patient_maps_to_a_valid_patient_resource(
    sex: Sex, phone: str | None, given_name: str
) -> None:
    p = patient(sex=sex, phone=phone, given_name=given_name)
    resource = mapping.patient_resource(p)
    parsed = parse(resource)
    assert parsed.id == str(p.id)
    assert parsed.name[0].given == [given_name]


def test_derived_ids_are_stable_and_distinct() -> None:
    row = UUID("00000000-0000-0000-0000-000000000001")
    assert mapping.derived_id(row, "procedure") == mapping.derived_id(row, "procedure")
    assert mapping.derived_id(row, "procedure") != mapping.derived_id(row, "signature")


@given(goals=st.sampled_from(["", " ", "\n\t"]), discharge=st.sampled_from([None, "", "  "]))
def test_blank_free_text_is_left_out_not_exported_empty(goals: str, discharge: str | None) -> None:
    """FHIR has no empty strings: an episode without written goals (or with blanks only)
    exports without its goals extension, and still validates (it was a 422 on
    `$everything` for such a patient)."""
    p = patient()
    e = Episode(
        id=uuid4(),
        clinic_id=CLINIC,
        patient_id=p.id,
        clinician_id=CLINICIAN,
        condition="neck_pain",
        icd10_code="M54.2",
        body_region="neck",
        onset_date=date(2026, 1, 1),
        opened_on=date(2026, 1, 5),
        goals=goals,
        status=EpisodeStatus.CLOSED if discharge is not None else EpisodeStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
        closed_on=date(2026, 3, 1) if discharge is not None else None,
        discharge_reason=discharge,
    )
    episode = mapping.episode_resource(e)
    parse(episode)
    assert "extension" not in episode
