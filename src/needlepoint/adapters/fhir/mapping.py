"""Our records → FHIR R4 resources (`fhir.resources.R4B` models), as pure functions.

Input: one patient's record as the read side loads it (`PatientRecord`, entities of
`domain.entities`) and the clinic's practitioners (`Practitioner` below). Output: FHIR JSON
(dicts) each validated by its R4B model (`_make`); nothing here reads a database or a
clock.

Ids: a resource that is one of our rows keeps the row's UUID as its id (Patient,
Encounter = session, EpisodeOfCare = episode, Procedure per needling site, Observation =
measurement, Consent, AdverseEvent, Practitioner = user); a resource derived from a row
gets a stable UUID derived from it (`derived_id`), so a second export gives the same ids.

What is exported: signed notes only (a draft is not yet the record); measurements with
their item answers (QuestionnaireResponse against one Questionnaire per instrument
version) and, when scorable, the score (Observation, LOINC only where verified); each
needling site as its own Procedure, part of the session's claim-relevant Procedure that
carries the CPT code. Codes: see `adapters.fhir.codes`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid5

import orjson
from fhir.resources.R4B.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.resource import Resource

from needlepoint.adapters.fhir import codes
from needlepoint.domain import instruments
from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import conditions, muscles
from needlepoint.domain.entities import (
    AdverseEvent,
    Amendment,
    Consent,
    Episode,
    Measurement,
    NeedlingSite,
    Patient,
    Session,
    TrainingRecord,
    User,
)
from needlepoint.domain.enums import EpisodeStatus, SessionStatus, Sex, Side

Json = dict[str, Any]
"""A resource as FHIR JSON, validated by its R4B model (`_make`)."""


def _make(model: type[Resource], data: Json) -> Json:
    """`data` as the resource `model` (an R4B model class), validated by it: the JSON
    written out is exactly what the model accepted (a ValidationError otherwise).
    Serialising through the model would cost twice as much again (bench/fhir_export.py)."""
    found = {"resourceType": model.get_resource_type()}
    kept = _kept(data)
    found |= {} if kept is _GONE else kept
    model.model_validate(found)
    return found


_GONE = object()
"""What `_kept` answers for a value with nothing left in it."""


def _kept(value: Any) -> Any:
    """`value` without what FHIR forbids, at any depth: blank strings, empty arrays and
    objects, and so extensions left with only their `url` (an episode without written
    goals has no goals extension, rather than an invalid empty one); `_GONE` when
    nothing is left."""
    if isinstance(value, dict):
        pairs = ((k, _kept(v)) for k, v in value.items())
        found = {k: v for k, v in pairs if v is not _GONE}
        return found if found and set(found) != {"url"} else _GONE
    if isinstance(value, list):
        items = [v for v in map(_kept, value) if v is not _GONE]
        return items or _GONE
    if isinstance(value, str) and not value.strip():
        return _GONE
    return value


# The namespace of ids derived from our rows (a fixed, random UUID: never change it).
_DERIVED = UUID("5d0c7a3e-51a4-4a8e-9d53-2f6f2b1c0f17")

RESOURCE_TYPES: tuple[str, ...] = (
    "Patient",
    "Practitioner",
    "Condition",
    "EpisodeOfCare",
    "Encounter",
    "Procedure",
    "Questionnaire",
    "QuestionnaireResponse",
    "Observation",
    "Consent",
    "AdverseEvent",
    "Provenance",
)
"""Every resource type the export writes, in the order of the bulk export's files."""


@dataclass(frozen=True, slots=True)
class Practitioner:
    """A member of staff with their dry needling training records."""

    user: User
    training: Sequence[TrainingRecord] = ()


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Everything of one patient that the export maps (signed notes only)."""

    patient: Patient
    episodes: Sequence[Episode] = ()
    sessions: Sequence[Session] = ()
    sites: Mapping[UUID, Sequence[NeedlingSite]] = field(default_factory=dict)
    amendments: Mapping[UUID, Sequence[Amendment]] = field(default_factory=dict)
    measurements: Sequence[Measurement] = ()
    consents: Sequence[Consent] = ()
    adverse_events: Sequence[AdverseEvent] = ()

    def staff_ids(self) -> set[UUID]:
        """The users this record refers to (authors, signers, clinicians)."""
        found: set[UUID] = {e.clinician_id for e in self.episodes}
        for s in self.sessions:
            found.add(s.clinician_id)
            if s.signed_by is not None:
                found.add(s.signed_by)
        found |= {a.author_id for amendments in self.amendments.values() for a in amendments}
        found |= {m.recorded_by for m in self.measurements}
        found |= {c.recorded_by for c in self.consents}
        found |= {a.recorded_by for a in self.adverse_events}
        return found


def derived_id(row_id: UUID, what: str) -> str:
    """The stable id of a resource derived from one of our rows (not the row itself)."""
    return str(uuid5(_DERIVED, f"{row_id}/{what}"))


def ref(resource_type: str, resource_id: UUID | str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if codings:
        found["coding"] = list(codings)
    if text:
        found["text"] = text
    return found


def ext(name: str, **value: Any) -> dict[str, Any]:
    """One of our extensions (`urn:needlepoint:extension:{name}`), e.g.
    `ext("depth-mm", valueDecimal=15)`: the values a reader needs to rebuild the record
    (`importing.fhir_reader`), beside the text a person reads."""
    return {"url": f"{codes.EXTENSION}:{name}", **value}


def instant(moment: datetime) -> str:
    """An instant in FHIR form (UTC, with its zone)."""
    return moment.astimezone(UTC).isoformat()


def _day(value: date) -> str:
    return value.isoformat()


# -- people --------------------------------------------------------------------------------

_GENDER = {Sex.FEMALE: "female", Sex.MALE: "male", Sex.OTHER: "other", Sex.UNKNOWN: "unknown"}


def mrn_system(clinic_id: UUID) -> str:
    """The identifier system of one clinic's chart numbers."""
    return f"urn:needlepoint:clinic:{clinic_id}:mrn"


def patient_resource(p: Patient) -> Json:
    telecom = []
    if p.phone:
        telecom.append({"system": "phone", "value": p.phone})
    if p.email:
        telecom.append({"system": "email", "value": p.email})
    return _make(
        FhirPatient,
        {
            "id": str(p.id),
            "identifier": [
                {
                    "use": "usual",
                    "type": concept(coding(codes.IDENTIFIER_TYPE, "MR", "Medical record number")),
                    "system": mrn_system(p.clinic_id),
                    "value": p.mrn,
                }
            ],
            "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
            "gender": _GENDER[p.sex],
            "birthDate": _day(p.birth_date),
            **({"telecom": telecom} if telecom else {}),
        },
    )


def _training_text(t: TrainingRecord) -> str:
    hours = f"{t.hours_in_person:g} h in person, {t.hours_online:g} h online"
    exam = "exam passed" if t.exam_passed else "no exam passed"
    regions = ", ".join(str(r) for r in t.regions) if t.regions else "no regions listed"
    return f"Dry needling training: {t.course} ({t.provider}); {hours}; {exam}; regions: {regions}"


def practitioner_resource(pr: Practitioner) -> Json:
    u = pr.user
    qualifications: list[dict[str, Any]] = []
    identifiers: list[dict[str, Any]] = []
    if u.licence_number:
        licence = {
            "type": concept(coding(codes.IDENTIFIER_TYPE, "LN", "License number")),
            "system": f"urn:needlepoint:clinic:{u.clinic_id}:licence",
            "value": u.licence_number,
        }
        identifiers.append(licence)
        qualifications.append(
            {
                "identifier": [licence],
                "code": concept(
                    coding(codes.QUALIFICATION, "licence", "Professional licence"),
                    text="Professional licence",
                ),
                **({"period": {"start": _day(u.licence_date)}} if u.licence_date else {}),
            }
        )
    for t in pr.training:
        qualifications.append(
            {
                "identifier": [{"system": "urn:needlepoint:training-record", "value": str(t.id)}],
                "code": concept(
                    coding(codes.QUALIFICATION, "dry-needling-training", "Dry needling training"),
                    text=_training_text(t),
                ),
                "period": {"start": _day(t.completed_on)},
                "issuer": {"display": t.provider},
            }
        )
    name: dict[str, Any] = {"text": u.full_name}  # one string in our record: not split
    return _make(
        FhirPractitioner,
        {
            "id": str(u.id),
            "active": u.is_active,
            "telecom": [{"system": "email", "value": u.email, "use": "work"}],
            "name": [name],
            **({"identifier": identifiers} if identifiers else {}),
            **({"qualification": qualifications} if qualifications else {}),
        },
    )


# -- episodes and diagnoses ------------------------------------------------------------------


def _icd10_title(code: str) -> str | None:
    data = billing_data().icd10cm
    for c in [*data.myofascial, *(c for cs in data.by_condition.values() for c in cs)]:
        if c.code == code:
            return c.title
    return None


def condition_resource(e: Episode) -> Json:
    label = conditions().get(e.condition)
    text = label.label if label is not None else e.condition.replace("_", " ")
    closed = e.status == EpisodeStatus.CLOSED
    return _make(
        Condition,
        {
            "id": derived_id(e.id, "condition"),
            "clinicalStatus": concept(
                coding(codes.CONDITION_CLINICAL, "resolved" if closed else "active")
            ),
            "category": [
                concept(
                    coding(codes.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
                )
            ],
            "code": concept(
                coding(codes.ICD10CM, e.icd10_code, _icd10_title(e.icd10_code)),
                coding(codes.CONDITION, e.condition, text),
                text=text,
            ),
            "bodySite": [
                concept(
                    coding(codes.BODY_REGION, e.body_region),
                    text=e.body_region.replace("_", " "),
                )
            ],
            "subject": ref("Patient", e.patient_id),
            "onsetDateTime": _day(e.onset_date),
            "recordedDate": instant(e.created_at),
            "recorder": ref("Practitioner", e.clinician_id),
            **({"abatementDateTime": _day(e.closed_on)} if e.closed_on else {}),
        },
    )


def episode_resource(e: Episode) -> Json:
    closed = e.status == EpisodeStatus.CLOSED
    period: dict[str, str] = {"start": _day(e.opened_on)}
    if e.closed_on:
        period["end"] = _day(e.closed_on)
    return _make(
        EpisodeOfCare,
        {
            "id": str(e.id),
            "status": "finished" if closed else "active",
            "diagnosis": [{"condition": ref("Condition", derived_id(e.id, "condition"))}],
            "patient": ref("Patient", e.patient_id),
            "period": period,
            "careManager": ref("Practitioner", e.clinician_id),
            "extension": [
                ext("goals", valueString=e.goals),
                *(
                    [ext("discharge-reason", valueString=e.discharge_reason)]
                    if e.discharge_reason
                    else []
                ),
            ],
        },
    )


# -- sessions: encounter, procedures, signatures and amendments --------------------------------


def encounter_resource(s: Session) -> Json:
    return _make(
        Encounter,
        {
            "id": str(s.id),
            "status": "finished",
            "class": coding(codes.ACT_CODE, "AMB", "ambulatory"),
            "subject": ref("Patient", s.patient_id),
            "episodeOfCare": [ref("EpisodeOfCare", s.episode_id)],
            "participant": [{"individual": ref("Practitioner", s.clinician_id)}],
            "period": {"start": instant(s.started_at)},
            "reasonReference": [ref("Condition", derived_id(s.episode_id, "condition"))],
        },
    )


_DRY_NEEDLING = coding(codes.PROCEDURE, "dry-needling", "Dry needling")


def _cpt_descriptor(code: str) -> str | None:
    for c in billing_data().cpt.codes:
        if c.code == code:
            return c.descriptor
    return None


def _annotation(text: str, moment: datetime, author: UUID | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"text": text, "time": instant(moment)}
    if author is not None:
        found["authorReference"] = ref("Practitioner", author)
    return found


def session_procedure_resource(s: Session, amendments: Sequence[Amendment] = ()) -> Json:
    """The session's claim-relevant procedure: the CPT code (when the note billed one),
    the SOAP note and its amendments as annotations."""
    code_codings = [_DRY_NEEDLING]
    if s.cpt_code:
        code_codings.append(coding(codes.CPT, s.cpt_code, _cpt_descriptor(s.cpt_code)))
    soap = [
        ("Subjective", s.subjective),
        ("Objective", s.objective),
        ("Assessment", s.assessment),
        ("Plan", s.plan),
    ]
    notes = [
        _annotation(f"{title}: {text}", s.signed_at or s.started_at, s.signed_by)
        for title, text in soap
        if text
    ]
    notes += [
        _annotation(f"Amendment ({a.reason}): {a.text}", a.created_at, a.author_id)
        for a in amendments
    ]
    muscles_text = (
        f"{s.billing_muscles} muscle(s) counted for billing" if s.billing_muscles else None
    )
    return _make(
        Procedure,
        {
            "id": derived_id(s.id, "procedure"),
            "status": "completed",
            "code": concept(*code_codings, text="Dry needling session"),
            "subject": ref("Patient", s.patient_id),
            "encounter": ref("Encounter", s.id),
            "performedDateTime": instant(s.started_at),
            "performer": [{"actor": ref("Practitioner", s.clinician_id)}],
            "reasonReference": [ref("Condition", derived_id(s.episode_id, "condition"))],
            **({"outcome": {"text": muscles_text}} if muscles_text else {}),
            **({"note": notes} if notes else {}),
        },
    )


def body_site(site: NeedlingSite) -> dict[str, Any]:
    """The needled muscle: local code and its name (no SNOMED CT code verified for the
    muscles), laterality in SNOMED CT (verified codes) as an extension; midline: text."""
    muscle = muscles().get(site.muscle_id)
    name = muscle.name if muscle is not None else site.muscle_id.replace("_", " ")
    side_text = {Side.LEFT: "left", Side.RIGHT: "right", Side.MIDLINE: "midline"}[site.side]
    found = concept(coding(codes.MUSCLE, site.muscle_id, name), text=f"{name}, {side_text}")
    laterality = codes.SNOMED_LATERALITY.get(str(site.side))
    if laterality is not None:
        found["extension"] = [
            {
                "url": f"{codes.EXTENSION}:laterality",
                "valueCodeableConcept": concept(
                    coding(codes.SNOMED, laterality, codes.SNOMED_LATERALITY_DISPLAY[laterality]),
                    text=side_text,
                ),
            }
        ]
    return found


def _site_text(site: NeedlingSite) -> str:
    parts = [
        f"needle {site.needle_gauge_mm:g} × {site.needle_length_mm:g} mm",
        f"depth {site.depth_mm:g} mm",
        f"{site.insertions} insertion(s)",
        f"{site.local_twitch_responses} local twitch response(s)",
        f"trigger point {site.trigger_point}",
        "electrical stimulation" if site.electrical_stimulation else "no electrical stimulation",
    ]
    if site.approach:
        parts.append(f"approach {site.approach}")
    return "; ".join(parts)


def site_procedure_resource(s: Session, site: NeedlingSite) -> Json:
    notes = [_annotation(_site_text(site), s.started_at)]
    if site.notes:
        notes.append(_annotation(site.notes, s.started_at))
    if site.override_reason:
        notes.append(_annotation(f"Site caution overridden: {site.override_reason}", s.started_at))
    return _make(
        Procedure,
        {
            "id": str(site.id),
            "partOf": [ref("Procedure", derived_id(s.id, "procedure"))],
            "status": "completed",
            "code": concept(_DRY_NEEDLING, text="Dry needling of one muscle"),
            "subject": ref("Patient", s.patient_id),
            "encounter": ref("Encounter", s.id),
            "performedDateTime": instant(s.started_at),
            "performer": [{"actor": ref("Practitioner", s.clinician_id)}],
            "bodySite": [body_site(site)],
            "usedCode": [
                concept(
                    coding(codes.TECHNIQUE, str(site.technique)),
                    text=f"technique: {str(site.technique).replace('_', ' ')}",
                )
            ],
            "outcome": {"text": f"tolerance: {site.tolerance}"},
            "note": notes,
            "extension": _site_extensions(site),
        },
    )


def _site_extensions(site: NeedlingSite) -> list[dict[str, Any]]:
    """The site's values, machine-readable (the annotation says the same in words)."""
    found = [
        ext("side", valueCode=str(site.side)),
        ext("trigger-point", valueCode=str(site.trigger_point)),
        ext("needle-gauge-mm", valueDecimal=site.needle_gauge_mm),
        ext("needle-length-mm", valueDecimal=site.needle_length_mm),
        ext("depth-mm", valueDecimal=site.depth_mm),
        ext("insertions", valueInteger=site.insertions),
        ext("local-twitch-responses", valueInteger=site.local_twitch_responses),
        ext("electrical-stimulation", valueBoolean=site.electrical_stimulation),
        ext("tolerance", valueCode=str(site.tolerance)),
    ]
    if site.approach:
        found.append(ext("approach", valueCode=str(site.approach)))
    for key, value in sorted((site.estim_params or {}).items()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            found.append(ext(f"estim-{key.replace('_', '-')}", valueDecimal=value))
    if site.notes:
        found.append(ext("site-note", valueString=site.notes))
    if site.override_reason:
        found.append(ext("override-reason", valueString=site.override_reason))
    if site.override_code:
        found.append(ext("override-code", valueCode=str(site.override_code)))
    return found


_AUTHOR_SIGNATURE = coding(codes.SIGNATURE_TYPE, "1.2.840.10065.1.12.1.1", "Author's Signature")


def signature_provenance(s: Session, sites: Sequence[NeedlingSite]) -> Json | None:
    """Who signed the note and when (None for a note not signed)."""
    if s.status != SessionStatus.SIGNED or s.signed_by is None or s.signed_at is None:
        return None
    targets = [ref("Encounter", s.id), ref("Procedure", derived_id(s.id, "procedure"))]
    targets += [ref("Procedure", site.id) for site in sites]
    signer = ref("Practitioner", s.signed_by)
    return _make(
        Provenance,
        {
            "id": derived_id(s.id, "signature"),
            "target": targets,
            "recorded": instant(s.signed_at),
            "activity": concept(coding(codes.DATA_OPERATION, "CREATE", "create")),
            "agent": [
                {
                    "type": concept(coding(codes.PROVENANCE_PARTICIPANT, "author", "Author")),
                    "who": signer,
                }
            ],
            "signature": [
                {"type": [_AUTHOR_SIGNATURE], "when": instant(s.signed_at), "who": signer}
            ],
        },
    )


def amendment_provenance(s: Session, a: Amendment) -> Json:
    author = ref("Practitioner", a.author_id)
    return _make(
        Provenance,
        {
            "id": str(a.id),
            "target": [ref("Encounter", s.id), ref("Procedure", derived_id(s.id, "procedure"))],
            "recorded": instant(a.created_at),
            "activity": concept(coding(codes.DATA_OPERATION, "UPDATE", "revise")),
            "reason": [concept(text=a.reason)],
            "extension": [ext("amendment-text", valueString=a.text)],
            "agent": [
                {
                    "type": concept(coding(codes.PROVENANCE_PARTICIPANT, "author", "Author")),
                    "who": author,
                }
            ],
            "signature": [
                {"type": [_AUTHOR_SIGNATURE], "when": instant(a.created_at), "who": author}
            ],
        },
    )


# -- outcomes: questionnaires, responses, scores ------------------------------------------------


def questionnaire_url(instrument_id: str) -> str:
    return f"{codes.QUESTIONNAIRE}:{instrument_id}"


def questionnaire_id(instrument_id: str, version: str) -> str:
    return f"{instrument_id}-{version}".replace("_", "-")


def _score_coding(instrument: instruments.Instrument) -> dict[str, str]:
    """LOINC only where verified (instruments.yaml), else the local instrument code."""
    if instrument.loinc is not None and instrument.loinc.verified:
        return coding(codes.LOINC, instrument.loinc.code, instrument.name)
    return coding(codes.INSTRUMENT, instrument.id, instrument.name)


def questionnaire_resource(instrument: instruments.Instrument) -> Json:
    item_type = "integer" if instrument.integer else "decimal"
    return _make(
        Questionnaire,
        {
            "id": questionnaire_id(instrument.id, instrument.version),
            "url": questionnaire_url(instrument.id),
            "version": instrument.version,
            "name": "".join(w.capitalize() for w in instrument.id.split("_")),
            "title": instrument.name,
            "status": "active",
            "subjectType": ["Patient"],
            "code": [_score_coding(instrument)],
            "item": [
                {"linkId": name, "text": label, "type": item_type}
                for name, label in zip(instrument.item_names, instrument.item_labels, strict=True)
            ],
        },
    )


def _answer(instrument: instruments.Instrument, value: Any) -> dict[str, Any]:
    if instrument.integer and float(value).is_integer():
        return {"valueInteger": int(value)}
    return {"valueDecimal": float(value)}


def _context_text(context: Mapping[str, Any] | None) -> str | None:
    if not context:
        return None
    return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(context.items()))


def response_resource(m: Measurement, instrument: instruments.Instrument) -> Json:
    items = []
    for name, label in zip(instrument.item_names, instrument.item_labels, strict=True):
        value = m.answers.get(name)
        item: dict[str, Any] = {"linkId": name, "text": label}
        if value is not None:
            item["answer"] = [_answer(instrument, value)]
        items.append(item)
    return _make(
        QuestionnaireResponse,
        {
            "id": derived_id(m.id, "response"),
            "questionnaire": f"{questionnaire_url(instrument.id)}|{m.instrument_version}",
            "status": "completed",
            "subject": ref("Patient", m.patient_id),
            **({"encounter": ref("Encounter", m.session_id)} if m.session_id else {}),
            "authored": instant(m.taken_at),
            "author": ref("Practitioner", m.recorded_by),
            "item": items,
            "extension": [
                *(
                    [ext("episode", valueReference=ref("EpisodeOfCare", m.episode_id))]
                    if m.episode_id
                    else []
                ),
                *(
                    [
                        ext(
                            "context",
                            valueString=orjson.dumps(
                                m.context, option=orjson.OPT_SORT_KEYS
                            ).decode(),
                        )
                    ]
                    if m.context
                    else []
                ),
            ],
        },
    )


def observation_resource(m: Measurement, instrument: instruments.Instrument) -> Json | None:
    """The score, when the answers were scorable (None: not scorable, no Observation)."""
    if m.score is None:
        return None
    context = _context_text(m.context)
    return _make(
        Observation,
        {
            "id": str(m.id),
            "status": "final",
            "category": [concept(coding(codes.OBSERVATION_CATEGORY, "survey", "Survey"))],
            "code": concept(_score_coding(instrument), text=instrument.name),
            "subject": ref("Patient", m.patient_id),
            **({"encounter": ref("Encounter", m.session_id)} if m.session_id else {}),
            "effectiveDateTime": instant(m.taken_at),
            "performer": [ref("Practitioner", m.recorded_by)],
            "valueQuantity": {"value": m.score, "unit": instrument.unit.strip()},
            "derivedFrom": [ref("QuestionnaireResponse", derived_id(m.id, "response"))],
            **({"note": [{"text": context}]} if context else {}),
        },
    )


# -- consent and adverse events ------------------------------------------------------------------


def consent_resource(c: Consent) -> Json:
    signer = c.signer_name + (f" ({c.signer_relationship})" if c.signer_relationship else "")
    return _make(
        FhirConsent,
        {
            "id": str(c.id),
            "status": "inactive" if c.withdrawn_at else "active",
            "scope": concept(coding(codes.CONSENT_SCOPE, "treatment", "Treatment")),
            "category": [concept(coding(codes.LOINC, codes.CONSENT_DOCUMENT, "Patient Consent"))],
            "patient": ref("Patient", c.patient_id),
            "dateTime": instant(c.signed_at),
            "performer": [{"display": signer}],
            "policyRule": concept(
                coding(
                    codes.CONSENT_TEMPLATE,
                    f"{c.template_id}|{c.template_version}",
                    f"Dry needling consent, version {c.template_version}",
                )
            ),
            "provision": {
                "type": "permit",
                "period": {
                    "start": instant(c.signed_at),
                    **({"end": instant(c.withdrawn_at)} if c.withdrawn_at else {}),
                },
                "action": [concept(text="dry needling")],
            },
            "extension": [
                {"url": f"{codes.EXTENSION}:consent-method", "valueCode": str(c.method)},
                {"url": f"{codes.EXTENSION}:copy-given", "valueBoolean": c.copy_given},
                *(
                    [{"url": f"{codes.EXTENSION}:witness", "valueString": c.witness_name}]
                    if c.witness_name
                    else []
                ),
            ],
        },
    )


def adverse_event_resource(a: AdverseEvent) -> Json:
    kind = str(a.kind)
    return _make(
        FhirAdverseEvent,
        {
            "id": str(a.id),
            "actuality": "actual",
            "event": concept(coding(codes.ADVERSE_EVENT_KIND, kind), text=kind.replace("_", " ")),
            "subject": ref("Patient", a.patient_id),
            **({"encounter": ref("Encounter", a.session_id)} if a.session_id else {}),
            "date": instant(a.onset_at),
            "recordedDate": instant(a.created_at),
            "recorder": ref("Practitioner", a.recorded_by),
            "severity": concept(
                coding(codes.ADVERSE_EVENT_SEVERITY, str(a.severity)),
                text=f"{a.severity} (White et al. classes)",
            ),
            "extension": [
                {"url": f"{codes.EXTENSION}:description", "valueString": a.description},
                {"url": f"{codes.EXTENSION}:reportable", "valueBoolean": a.reportable},
                *(
                    [{"url": f"{codes.EXTENSION}:action-taken", "valueString": a.action_taken}]
                    if a.action_taken
                    else []
                ),
                *(
                    [
                        {
                            "url": f"{codes.EXTENSION}:reported-at",
                            "valueDateTime": instant(a.reported_at),
                        }
                    ]
                    if a.reported_at
                    else []
                ),
            ],
        },
    )


# -- one patient's resources ----------------------------------------------------------------------


def patient_resources(record: PatientRecord) -> Iterator[Json]:
    """Every resource of one patient's record (Practitioners and Questionnaires are the
    clinic's: `practitioner_resource`, `questionnaires_for`)."""
    yield patient_resource(record.patient)
    for e in record.episodes:
        yield condition_resource(e)
        yield episode_resource(e)
    for s in record.sessions:
        sites = record.sites.get(s.id, ())
        amendments = record.amendments.get(s.id, ())
        yield encounter_resource(s)
        yield session_procedure_resource(s, amendments)
        for site in sites:
            yield site_procedure_resource(s, site)
        signed = signature_provenance(s, sites)
        if signed is not None:
            yield signed
        for a in amendments:
            yield amendment_provenance(s, a)
    for m in record.measurements:
        instrument = instruments.library().get(m.instrument_id)
        if instrument is None:
            continue
        yield response_resource(m, instrument)
        observation = observation_resource(m, instrument)
        if observation is not None:
            yield observation
    for c in record.consents:
        yield consent_resource(c)
    for event in record.adverse_events:
        yield adverse_event_resource(event)


def questionnaires_for(measurements: Sequence[Measurement]) -> list[Json]:
    """One Questionnaire per instrument the measurements used."""
    used = sorted({m.instrument_id for m in measurements})
    library = instruments.library()
    return [questionnaire_resource(library[i]) for i in used if i in library]


def all_questionnaires() -> list[Json]:
    """One Questionnaire per instrument of the library."""
    return [questionnaire_resource(i) for _, i in sorted(instruments.library().items())]
