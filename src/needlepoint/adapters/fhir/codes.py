"""Every code system the FHIR export uses, with how each code was verified.

Official URIs only for external systems (HL7 terminology, LOINC, SNOMED CT, ICD-10-CM,
CPT); our own concepts (muscles, techniques, adverse event kinds …) are in local code
systems under `urn:needlepoint:`, never dressed up as a standard code. `docs/fhir.md`
lists the same table for readers; `tests/unit/test_fhir_mapping.py` checks that every
system a resource uses is one of these."""

from __future__ import annotations

from dataclasses import dataclass

from needlepoint.domain.instruments import LOCAL_CODE_SYSTEM as INSTRUMENT_SYSTEM
from needlepoint.domain.instruments import LOINC_SYSTEM

LOINC = LOINC_SYSTEM  # http://loinc.org
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"

# Local code systems (our own concepts; no standard code was verified for them).
INSTRUMENT = INSTRUMENT_SYSTEM  # urn:needlepoint:instrument (already used by the API)
MUSCLE = "urn:needlepoint:muscle"
CONDITION = "urn:needlepoint:condition"
PROCEDURE = "urn:needlepoint:procedure"
TECHNIQUE = "urn:needlepoint:needling-technique"
ADVERSE_EVENT_KIND = "urn:needlepoint:adverse-event-kind"
ADVERSE_EVENT_SEVERITY = "urn:needlepoint:adverse-event-severity"
QUALIFICATION = "urn:needlepoint:qualification"
BODY_REGION = "urn:needlepoint:body-region"
CONSENT_TEMPLATE = "urn:needlepoint:consent-template"
QUESTIONNAIRE = "urn:needlepoint:questionnaire"
EXTENSION = "urn:needlepoint:extension"

# The codes of external systems that the mapping writes, and how each was verified.
CONSENT_DOCUMENT = "59284-0"
LATERALITY_LEFT = "7771000"
LATERALITY_RIGHT = "24028007"
SNOMED_LATERALITY = {"left": LATERALITY_LEFT, "right": LATERALITY_RIGHT}
SNOMED_LATERALITY_DISPLAY = {LATERALITY_LEFT: "Left", LATERALITY_RIGHT: "Right"}


@dataclass(frozen=True, slots=True)
class System:
    uri: str
    name: str
    codes: str
    verified: str


SYSTEMS: tuple[System, ...] = (
    System(
        ICD10CM,
        "ICD-10-CM",
        "the episode's diagnosis (Condition.code)",
        "domain/data/billing.yaml: each code checked against the ICD-10-CM tabular list of "
        "1 April 2026, billable leaf codes only; the URI is HL7's (hl7.org/fhir/R4B/icd.html)",
    ),
    System(
        CPT,
        "CPT",
        "20560, 20561 on the session's claim-relevant Procedure",
        "REFERENCE §4 ✅ (APTA Magazine, Feb 2020); derived by domain/billing.py from the "
        "distinct muscles needled",
    ),
    System(
        LOINC,
        "LOINC",
        "72514-3 (NPRS), 38214-3 (VAS) on Observation.code and Questionnaire.code; "
        "59284-0 Patient Consent on Consent.category",
        "72514-3, 38214-3: REFERENCE §4 ✅, instruments.yaml `loinc.verified: true`; codes "
        "marked ⚠️ there (NDI 82237-9, ODI 97908-8) are NOT exported as LOINC (local code "
        "instead). 59284-0: FHIR R4 value set consent-category (includes LOINC consent "
        "codes), expansion in HL7 Switzerland's ConsentCategoriesVS (tx.fhir.org, LOINC 2.82)",
    ),
    System(
        SNOMED,
        "SNOMED CT",
        "7771000 Left, 24028007 Right (laterality of a needled muscle)",
        "HL7 value set structure-laterality-vs (hl7.org/fhir/extensions, expansion from "
        "SNOMED CT International edition 2025-02-01). Muscles themselves: no SNOMED code "
        "verified, free text + local code",
    ),
    System(CONDITION_CLINICAL, "HL7 condition-clinical", "active, resolved", "FHIR R4B"),
    System(CONDITION_CATEGORY, "HL7 condition-category", "encounter-diagnosis", "FHIR R4B"),
    System(OBSERVATION_CATEGORY, "HL7 observation-category", "survey", "FHIR R4B"),
    System(ACT_CODE, "HL7 v3 ActCode", "AMB (ambulatory encounter)", "FHIR R4B Encounter.class"),
    System(IDENTIFIER_TYPE, "HL7 v2-0203", "MR (chart number), LN (licence)", "FHIR R4B"),
    System(CONSENT_SCOPE, "HL7 consentscope", "treatment", "FHIR R4B Consent.scope"),
    System(DATA_OPERATION, "HL7 v3 DataOperation", "CREATE, UPDATE", "FHIR R4B Provenance"),
    System(
        PROVENANCE_PARTICIPANT, "HL7 provenance-participant-type", "author", "FHIR R4B Provenance"
    ),
    System(
        SIGNATURE_TYPE,
        "ASTM E1762 signature types",
        "1.2.840.10065.1.12.1.1 Author's Signature",
        "FHIR R4B Signature.type (value set signature-type)",
    ),
    System(INSTRUMENT, "local: instrument", "instrument id (nprs, ndi …)", "ours"),
    System(CONDITION, "local: condition", "condition id of domain/data/conditions.yaml", "ours"),
    System(MUSCLE, "local: muscle", "muscle id of domain/data/muscles.yaml", "ours"),
    System(PROCEDURE, "local: procedure", "dry-needling", "ours: no SNOMED concept found"),
    System(TECHNIQUE, "local: needling technique", "static, pistoning …", "ours"),
    System(ADVERSE_EVENT_KIND, "local: adverse event kind", "bruising, bleeding …", "ours"),
    System(
        ADVERSE_EVENT_SEVERITY,
        "local: adverse event severity",
        "mild, significant, serious (White et al.)",
        "ours: REFERENCE §2 classes, not HL7's mild/moderate/severe",
    ),
    System(QUALIFICATION, "local: qualification", "dry-needling-training, licence", "ours"),
    System(BODY_REGION, "local: body region", "neck, low_back …", "ours"),
    System(CONSENT_TEMPLATE, "local: consent template", "template id|version", "ours"),
    System(QUESTIONNAIRE, "local: questionnaire", "Questionnaire.url per instrument", "ours"),
)

KNOWN_SYSTEMS = frozenset(s.uri for s in SYSTEMS)
