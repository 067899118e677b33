"""FHIR R4 → import records: a Bundle (`.json`), NDJSON files (`.ndjson`, one resource per
line, as a Bulk Data export writes them), or a folder of either.

Every resource is first parsed with its `fhir.resources.R4B` model: a malformed resource
is a problem naming the file and line (or Bundle entry) and the field, and the patient it
belongs to is not imported. The record is then rebuilt from the resources our export
writes (docs/fhir.md): Patient, Practitioner (matched to the importing clinic's staff by
e-mail), Condition + EpisodeOfCare, Encounter + its Procedures (the claim-relevant one
with the SOAP note, one per needling site), Provenance (signature and amendments),
QuestionnaireResponse (item answers; the Observation's score is passed on so the engine
reports a score it cannot reproduce), AdverseEvent. Consents are not imported (the
import records hold none): a clinic imports consents through its own consent process.

What another system's FHIR does not say in our terms (a muscle without our muscle code, a
measurement without a questionnaire of ours) is a problem naming the resource and the
field: nothing is guessed."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from needlepoint.adapters.fhir import codes
from needlepoint.domain.billing import billing_data
from needlepoint.importing.records import (
    Answer,
    ClinicianRef,
    ImportedAdverseEvent,
    ImportedAmendment,
    ImportedEpisode,
    ImportedMeasurement,
    ImportedPatient,
    ImportedSession,
    ImportedSignature,
    ImportedSite,
    Origin,
    Problem,
    ReadResult,
)

_SOAP = {"Subjective": "subjective", "Objective": "objective", "Assessment": "assessment"}
_SIDE_OF_SNOMED = {v: k for k, v in codes.SNOMED_LATERALITY.items()}


class _Bad(Exception):
    """A value the record cannot be built from: the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass
class _Read:
    """The resources read, by type and id, with where each came from."""

    by_type: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    origin: dict[str, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    bad_patients: set[str] = field(default_factory=set)


def _lines(path: Path) -> Iterator[tuple[Origin, str]]:
    """(origin, JSON text) of every resource or Bundle in a file or folder."""
    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".json", ".ndjson"))
        if (path.is_dir())
        else [path]
    )
    for f in files:
        if f.suffix == ".ndjson":
            with f.open(encoding="utf-8") as lines:
                for n, line in enumerate(lines, start=1):
                    if line.strip():
                        yield Origin(f.name, f"line {n}"), line
        else:
            yield Origin(f.name, "whole file"), f.read_text(encoding="utf-8")


def _patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the Patient a resource belongs to (subject or patient)."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    for key in ("subject", "patient"):
        ref = (resource.get(key) or {}).get("reference", "")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def _add(read: _Read, origin: Origin, resource: Any) -> None:
    if not isinstance(resource, dict) or "resourceType" not in resource:
        read.problems.append(Problem(origin, "resourceType", "not a FHIR resource"))
        return
    kind = str(resource["resourceType"])
    if kind == "Bundle":
        for n, entry in enumerate(resource.get("entry") or []):
            _add(read, Origin(origin.source, f"entry[{n}]"), (entry or {}).get("resource"))
        return
    rid = str(resource.get("id") or "")
    here = Origin(kind, f"{kind}/{rid}" if rid else str(origin))
    patient = _patient_of(resource)
    try:
        model = get_fhir_model_class(kind)
    except KeyError:
        read.problems.append(Problem(here, "resourceType", f"{kind} is not an R4B resource"))
        return
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"]) or "-"
            read.problems.append(Problem(here, where, error["msg"], patient))
        if patient:
            read.bad_patients.add(patient)
        return
    if not rid:
        read.problems.append(Problem(here, "id", "a resource without an id cannot be linked"))
        return
    read.by_type[kind][rid] = resource
    read.origin[f"{kind}/{rid}"] = here


def _ref_id(value: Any, kind: str, field_name: str) -> str:
    ref = (value or {}).get("reference", "")
    if not isinstance(ref, str) or not ref.startswith(f"{kind}/"):
        raise _Bad(field_name, f"expected a reference to a {kind}")
    return ref.split("/", 1)[1]


def _code(concept: Any, system: str) -> str | None:
    for c in (concept or {}).get("coding") or []:
        if c.get("system") == system and c.get("code"):
            return str(c["code"])
    return None


def _ext(resource: dict[str, Any], name: str) -> Any:
    url = f"{codes.EXTENSION}:{name}"
    for e in resource.get("extension") or []:
        if e.get("url") == url:
            return next((v for k, v in e.items() if k.startswith("value")), None)
    return None


def _need(resource: dict[str, Any], name: str) -> Any:
    value = _ext(resource, name)
    if value is None:
        raise _Bad(f"extension {name}", "missing (written by Needlepoint's export)")
    return value


def _when(value: Any, field_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise _Bad(field_name, f"{value!r} is not a date and time") from None
    if moment.tzinfo is None:
        raise _Bad(field_name, f"{value!r} has no time zone")
    return moment


def _day(value: Any, field_name: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise _Bad(field_name, f"{value!r} is not a date") from None


class _Builder:
    def __init__(self, read: _Read) -> None:
        self.read = read
        self.at = Origin("FHIR", "?")  # the resource being read, for a problem's origin
        self.used: set[str] = set()  # "Type/id" of the resources a record was built from
        self.t = read.by_type
        self.emails = {
            pid: next(
                (c.get("value") for c in p.get("telecom") or [] if c.get("system") == "email"),
                None,
            )
            for pid, p in self.t["Practitioner"].items()
        }
        self.by_patient: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for kind, resources in self.t.items():
            for r in resources.values():
                owner = _patient_of(r)
                if owner is not None:
                    self.by_patient[owner][kind].append(r)
        self.sessions_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.sites_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for proc in self.t["Procedure"].values():
            enc = _ref_id_or_none(proc.get("encounter"), "Encounter")
            if enc is None:
                continue
            (self.sites_of if proc.get("partOf") else self.sessions_of)[enc].append(proc)
        self.provenance_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for prov in self.t["Provenance"].values():
            for target in prov.get("target") or []:
                enc = _ref_id_or_none(target, "Encounter")
                if enc is not None:
                    self.provenance_of[enc].append(prov)
        self.by_encounter: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for kind in ("QuestionnaireResponse", "AdverseEvent"):
            for r in self.t[kind].values():
                enc = _ref_id_or_none(r.get("encounter"), "Encounter")
                if enc is not None:
                    self.by_encounter[enc][kind].append(r)
        self.score_of: dict[str, float] = {}
        for obs in self.t["Observation"].values():
            value = (obs.get("valueQuantity") or {}).get("value")
            for d in obs.get("derivedFrom") or []:
                qr = _ref_id_or_none(d, "QuestionnaireResponse")
                if qr is not None and value is not None:
                    self.score_of[qr] = float(value)

    def clinician(self, value: Any, field_name: str) -> ClinicianRef:
        pid = _ref_id(value, "Practitioner", field_name)
        email = self.emails.get(pid)
        if email is None:
            raise _Bad(field_name, f"Practitioner/{pid} is not in the export or has no e-mail")
        return ClinicianRef(email=email, external_id=pid)

    def patient(self, p: dict[str, Any]) -> ImportedPatient:
        self.at = self.read.origin[f"Patient/{p['id']}"]
        pid = str(p["id"])
        mine = self.by_patient[pid]
        identifiers = p.get("identifier") or []
        mrn = next(
            (
                i.get("value")
                for i in identifiers
                if _code(i.get("type"), codes.IDENTIFIER_TYPE) == "MR"
            ),
            identifiers[0].get("value") if identifiers else None,
        )
        if not mrn:
            raise _Bad("identifier", "no chart number (an identifier of type MR)")
        name = (p.get("name") or [{}])[0]
        if not name.get("family") or not name.get("given"):
            raise _Bad("name", "a family name and a given name are needed")
        if not p.get("birthDate"):
            raise _Bad("birthDate", "missing")
        telecom = {c.get("system"): c.get("value") for c in p.get("telecom") or []}
        episodes = tuple(self.episode(e, mine) for e in mine["EpisodeOfCare"])
        for kind, where in (("QuestionnaireResponse", "encounter"), ("AdverseEvent", "encounter")):
            for r in mine[kind]:
                if f"{kind}/{r['id']}" not in self.used:
                    self.at = self.read.origin[f"{kind}/{r['id']}"]
                    raise _Bad(where, "belongs to no note or episode of this export: not imported")
        return ImportedPatient(
            external_id=pid,
            mrn=str(mrn),
            given_name=" ".join(name["given"]),
            family_name=name["family"],
            birth_date=_day(p["birthDate"], "birthDate"),
            sex=p.get("gender") or "unknown",
            phone=telecom.get("phone"),
            email=telecom.get("email"),
            episodes=episodes,
            origin=self.read.origin[f"Patient/{pid}"],
        )

    def episode(self, e: dict[str, Any], mine: dict[str, list[dict[str, Any]]]) -> ImportedEpisode:
        self.at = self.read.origin[f"EpisodeOfCare/{e['id']}"]
        eid = str(e["id"])
        diagnosis = (e.get("diagnosis") or [{}])[0].get("condition")
        cid = _ref_id(diagnosis, "Condition", "diagnosis.condition")
        condition = self.t["Condition"].get(cid)
        if condition is None:
            raise _Bad("diagnosis.condition", f"Condition/{cid} is not in the export")
        icd10 = _code(condition.get("code"), codes.ICD10CM)
        ours = _code(condition.get("code"), codes.CONDITION) or _condition_of_icd10(icd10)
        if ours is None:
            raise _Bad("Condition.code", "neither our condition code nor a known ICD-10-CM code")
        period = e.get("period") or {}
        if not period.get("start"):
            raise _Bad("period.start", "missing")
        if not condition.get("onsetDateTime"):
            raise _Bad("Condition.onsetDateTime", "missing")
        sessions = tuple(
            self.session(enc)
            for enc in mine["Encounter"]
            if any(
                _ref_id_or_none(x, "EpisodeOfCare") == eid for x in enc.get("episodeOfCare") or []
            )
        )
        measurements = tuple(
            self.measurement(qr)
            for qr in mine["QuestionnaireResponse"]
            if qr.get("encounter") is None
            and _ref_id_or_none(_ext(qr, "episode"), "EpisodeOfCare") == eid
        )
        return ImportedEpisode(
            external_id=eid,
            condition=ours,
            onset_date=_day(condition["onsetDateTime"], "Condition.onsetDateTime"),
            opened_on=_day(period["start"], "period.start"),
            clinician=self.clinician(e.get("careManager"), "careManager"),
            icd10_code=icd10,
            body_region=_code((condition.get("bodySite") or [{}])[0], codes.BODY_REGION),
            goals=_ext(e, "goals") or "",
            closed_on=_day(period["end"], "period.end") if period.get("end") else None,
            discharge_reason=_ext(e, "discharge-reason"),
            sessions=sessions,
            measurements=measurements,
            origin=self.read.origin[f"EpisodeOfCare/{eid}"],
        )

    def session(self, enc: dict[str, Any]) -> ImportedSession:
        self.at = self.read.origin[f"Encounter/{enc['id']}"]
        sid = str(enc["id"])
        soap = {v: "" for v in (*_SOAP.values(), "plan")}
        for proc in self.sessions_of.get(sid, []):
            for note in proc.get("note") or []:
                title, _, text = str(note.get("text", "")).partition(": ")
                key = _SOAP.get(title) or ("plan" if title == "Plan" else None)
                if key is not None:
                    soap[key] = text
        signature = None
        amendments = []
        for prov in self.provenance_of.get(sid, []):
            op = _code(prov.get("activity"), codes.DATA_OPERATION)
            signed = (prov.get("signature") or [{}])[0]
            if op == "CREATE" and signed.get("who"):
                signature = ImportedSignature(
                    self.clinician(signed["who"], "Provenance.signature.who"),
                    _when(signed.get("when"), "Provenance.signature.when"),
                )
            elif op == "UPDATE":
                author = (prov.get("agent") or [{}])[0].get("who")
                amendments.append(
                    ImportedAmendment(
                        author=self.clinician(author, "Provenance.agent.who"),
                        written_at=_when(prov.get("recorded"), "Provenance.recorded"),
                        reason=((prov.get("reason") or [{}])[0]).get("text") or "",
                        text=_need(prov, "amendment-text"),
                        origin=self.read.origin[f"Provenance/{prov['id']}"],
                    )
                )
        participant = (enc.get("participant") or [{}])[0].get("individual")
        recorded = self.by_encounter.get(sid, {})
        measurements = tuple(
            self.measurement(qr) for qr in recorded.get("QuestionnaireResponse", [])
        )
        events = tuple(self.adverse_event(a) for a in recorded.get("AdverseEvent", []))
        return ImportedSession(
            external_id=sid,
            started_at=_when((enc.get("period") or {}).get("start"), "Encounter.period.start"),
            clinician=self.clinician(participant, "Encounter.participant.individual"),
            sites=tuple(self.site(p) for p in self.sites_of.get(sid, [])),
            adverse_events=events,
            measurements=measurements,
            signature=signature,
            amendments=tuple(sorted(amendments, key=lambda a: a.written_at)),
            origin=self.read.origin[f"Encounter/{sid}"],
            subjective=soap["subjective"],
            objective=soap["objective"],
            assessment=soap["assessment"],
            plan=soap["plan"],
        )

    def site(self, proc: dict[str, Any]) -> ImportedSite:
        self.at = self.read.origin[f"Procedure/{proc['id']}"]
        body = (proc.get("bodySite") or [{}])[0]
        muscle = _code(body, codes.MUSCLE)
        if muscle is None:
            raise _Bad("bodySite", "no muscle code of ours (urn:needlepoint:muscle)")
        side = _ext(proc, "side")
        if side is None:
            laterality = (body.get("extension") or [{}])[0].get("valueCodeableConcept")
            side = _SIDE_OF_SNOMED.get(_code(laterality, codes.SNOMED) or "")
        if side is None:
            raise _Bad("bodySite", "no side (laterality)")
        technique = _code((proc.get("usedCode") or [{}])[0], codes.TECHNIQUE)
        if technique is None:
            raise _Bad("usedCode", "no needling technique code of ours")
        return ImportedSite(
            muscle_id=muscle,
            side=side,
            trigger_point=_need(proc, "trigger-point"),
            technique=technique,
            needle_gauge_mm=float(_need(proc, "needle-gauge-mm")),
            needle_length_mm=float(_need(proc, "needle-length-mm")),
            depth_mm=float(_need(proc, "depth-mm")),
            insertions=int(_need(proc, "insertions")),
            tolerance=_need(proc, "tolerance"),
            local_twitch_responses=int(_ext(proc, "local-twitch-responses") or 0),
            electrical_stimulation=bool(_ext(proc, "electrical-stimulation")),
            estim_frequency_hz=_ext(proc, "estim-frequency-hz"),
            estim_intensity_ma=_ext(proc, "estim-intensity-ma"),
            estim_minutes=_ext(proc, "estim-minutes"),
            notes=_ext(proc, "site-note"),
            approach=_ext(proc, "approach"),
            override_reason=_ext(proc, "override-reason"),
            override_code=_ext(proc, "override-code"),
            origin=self.read.origin[f"Procedure/{proc['id']}"],
        )

    def measurement(self, qr: dict[str, Any]) -> ImportedMeasurement:
        self.at = self.read.origin[f"QuestionnaireResponse/{qr['id']}"]
        self.used.add(f"QuestionnaireResponse/{qr['id']}")
        canonical = str(qr.get("questionnaire") or "")
        prefix = f"{codes.QUESTIONNAIRE}:"
        if not canonical.startswith(prefix):
            raise _Bad("questionnaire", f"{canonical!r} is not one of our instruments")
        instrument = canonical[len(prefix) :].split("|", 1)[0]
        answers: dict[str, Answer] = {}
        for item in qr.get("item") or []:
            answer = (item.get("answer") or [{}])[0]
            value = answer.get("valueInteger", answer.get("valueDecimal"))
            answers[str(item.get("linkId"))] = value
        context = _ext(qr, "context")
        return ImportedMeasurement(
            instrument_id=instrument,
            answers=answers,
            taken_at=_when(qr.get("authored"), "authored"),
            score=self.score_of.get(str(qr["id"])),
            context=json.loads(context) if context else None,
            origin=self.read.origin[f"QuestionnaireResponse/{qr['id']}"],
        )

    def adverse_event(self, a: dict[str, Any]) -> ImportedAdverseEvent:
        self.at = self.read.origin[f"AdverseEvent/{a['id']}"]
        self.used.add(f"AdverseEvent/{a['id']}")
        kind = _code(a.get("event"), codes.ADVERSE_EVENT_KIND)
        severity = _code(a.get("severity"), codes.ADVERSE_EVENT_SEVERITY)
        if kind is None or severity is None:
            raise _Bad("event", "no adverse event kind and severity of ours")
        reported = _ext(a, "reported-at")
        return ImportedAdverseEvent(
            kind=kind,
            severity=severity,
            onset_at=_when(a.get("date"), "date"),
            description=_ext(a, "description") or "",
            action_taken=_ext(a, "action-taken"),
            reportable=bool(_ext(a, "reportable")),
            reported_at=_when(reported, "reported-at") if reported else None,
            origin=self.read.origin[f"AdverseEvent/{a['id']}"],
        )


def _ref_id_or_none(value: Any, kind: str) -> str | None:
    ref = (value or {}).get("reference", "") if isinstance(value, dict) else ""
    return ref.split("/", 1)[1] if isinstance(ref, str) and ref.startswith(f"{kind}/") else None


def _condition_of_icd10(code: str | None) -> str | None:
    """Our condition whose suggested ICD-10-CM codes hold `code` (the first one)."""
    if code is None:
        return None
    for condition, found in billing_data().icd10cm.by_condition.items():
        if any(c.code == code for c in found):
            return condition
    return None


def read_fhir(path: Path) -> ReadResult:
    """Import records from a FHIR Bundle, NDJSON files or a folder of them."""
    read = _Read()
    for origin, text in _lines(path):
        try:
            resource = json.loads(text)
        except json.JSONDecodeError as exc:
            read.problems.append(Problem(origin, "-", f"not JSON: {exc.msg}"))
            continue
        _add(read, origin, resource)
    builder = _Builder(read)
    patients = []
    for pid, p in sorted(read.by_type["Patient"].items()):
        if pid in read.bad_patients:
            continue
        try:
            patients.append(builder.patient(p))
        except _Bad as bad:
            read.problems.append(Problem(builder.at, bad.field, bad.reason, pid))
    return ReadResult(tuple(patients), tuple(read.problems))
