"""Printable documents (issue 17 item 3): the signed session note, the progress /
discharge report for the referrer or insurer, and the patient's copy of a signed consent,
each as a print-friendly page (`…/print`, the browser's Print) and as a PDF (`…/pdf`).

Both forms are drawn from one `adapters.documents.model.Document`, built here from the
read side, so the page and the file say the same thing. Access is the pages': signed in,
the READ_CLINICAL permission, this clinic's records only (another clinic's is "not
found"), the care-team rule; every record opened is on the audit trail as a read, and a
PDF download is also recorded as `record.document_exported` (a copy of health
information left the system as a file). A draft note has no printable form: only a
signed note is a record."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from needlepoint.adapters.documents.model import (
    Block,
    Document,
    Facts,
    Figure,
    Heading,
    Paragraph,
    Signature,
    Table,
)
from needlepoint.adapters.documents.pdf import render_pdf
from needlepoint.adapters.documents.plots import Series, measure_png
from needlepoint.domain import clinic_time
from needlepoint.domain.benefits import BenefitSummary, MeasureSummary, summarise_episode
from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import conditions, muscles
from needlepoint.domain.consent import METHOD_WORDS, templates
from needlepoint.domain.entities import Consent, NeedlingSite, Patient
from needlepoint.domain.enums import AuditAction, SessionStatus
from needlepoint.domain.errors import DomainError, NotFound
from needlepoint.domain.instruments import library
from needlepoint.domain.permissions import Permission
from needlepoint.queries.benefits import episode_records
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.patients import get_patient, referrals_of
from needlepoint.queries.reader import Reader
from needlepoint.queries.sessions import session_detail
from needlepoint.queries.signatures import Signatory, follow_ups, signatories
from needlepoint.web.context import RequestContext
from needlepoint.web.ui.forms import (
    clinic_zone,
    label,
    now,
    refusal_page,
    render,
    signed_in,
    to_login,
)
from needlepoint.web.ui.progress import first_change, fmt, headline, meaningful_change, verdict
from needlepoint.web.ui.signed_notes import FOLLOW_UP_WORDS

router = APIRouter(include_in_schema=False)

NBSP = "\u00a0"
RELATIONSHIP_WORDS = {
    "patient": "the patient",
    "parent": "a parent",
    "legal_guardian": "a legal guardian",
}


class DraftNote(NotFound):
    """A draft has no printed form: it is not yet part of the record (404)."""


@dataclass(frozen=True, slots=True)
class Printed:
    """A document and the patient it is about (the print page links back to them)."""

    document: Document
    patient_id: UUID


# --- words -------------------------------------------------------------------------------


def number(value: float) -> str:
    """A measurement without trailing zeros: 0.3, 40, 12.5."""
    return f"{round(value, 2):g}"


def with_unit(value: float | None, unit: str) -> str:
    """A value with its unit spaced ("25 mm", "34 %"); a fraction or an angle stays
    attached ("4/10", "59°"); a dash when there is none."""
    if value is None:
        return "—"
    u = unit.strip()
    if not u or u.startswith(("/", "°")):
        return f"{number(value)}{u}"
    return f"{number(value)}{NBSP}{u}"  # a value and its unit never part at a line's end


def person(p: Signatory | None) -> str:
    """A person as a signed record names them: name, credential, licence, training."""
    if p is None:
        return "a former member of the clinic"
    training = (
        f"; dry needling training: {p.training}"
        if p.training
        else "; no dry needling training recorded"
    )
    return f"{p.full_name}, {p.credential}, {p.licence}{training}"


def patient_line(patient: Patient) -> str:
    return (
        f"{patient.family_name}, {patient.given_name} · born "
        f"{patient.birth_date.isoformat()} · chart {patient.mrn}"
    )


def patient_facts(patient: Patient) -> list[tuple[str, str]]:
    return [
        ("Patient", f"{patient.family_name}, {patient.given_name}"),
        ("Date of birth", patient.birth_date.isoformat()),
        ("Chart number", patient.mrn),
    ]


def _muscle_names() -> dict[str, str]:
    return {m.id: m.name for m in muscles().muscles}


def needle(site: NeedlingSite) -> str:
    """The needle as the note records it: diameter × length, "0.3 × 40 mm"."""
    return f"{number(site.needle_gauge_mm)}{NBSP}×{NBSP}{number(site.needle_length_mm)}{NBSP}mm"


def estim(site: NeedlingSite) -> str:
    if not site.electrical_stimulation:
        return "no"
    params = site.estim_params or {}
    parts = []
    if params.get("frequency_hz") is not None:
        parts.append(f"{params['frequency_hz']}{NBSP}Hz")
    if params.get("minutes") is not None:
        parts.append(f"{params['minutes']}{NBSP}min")
    return ", ".join(parts) or "yes"


def _produced(ctx: RequestContext, reader: Reader, tz: ZoneInfo) -> str:
    me = signatories(reader, [ctx.actor.user_id]).get(ctx.actor.user_id)
    who = me.full_name if me else "a member of the clinic"
    return f"Produced {clinic_time.when(now(), tz)} by {who} from the signed record"


# --- (a) the signed session note -----------------------------------------------------------


def note_document(ctx: RequestContext, session_id: UUID, *, export: bool) -> Printed:
    """The signed note: who signed with credentials, the time with the zone, the sites
    needled, outcomes and events, amendments with their authors. NotFound for a draft."""
    tz = clinic_zone(ctx)
    with ctx.reader() as r:
        d = session_detail(r, session_id)
        s = d.session
        if s.status is not SessionStatus.SIGNED or s.signed_at is None:
            raise DraftNote(
                "This note is a draft: only a signed note is printed. Sign it first.",
                field="session_id",
            )
        episode = episode_detail(r, s.episode_id).episode
        patient = get_patient(r, s.patient_id)
        clinic = r.clinic()
        entries = follow_ups(r, [a.id for a in d.adverse_events])
        people = signatories(
            r,
            [
                s.clinician_id,
                *([s.signed_by] if s.signed_by else []),
                *(a.author_id for a in d.amendments),
                *(a.recorded_by for a in d.adverse_events),
                *(f.recorded_by for fs in entries.values() for f in fs),
            ],
        )
        produced = _produced(ctx, r, tz)
        if export:
            r.note(AuditAction.DOCUMENT_EXPORTED, "session_note", s.id, s.patient_id)

    def when(moment: datetime) -> str:
        return clinic_time.when(moment, tz)

    names = _muscle_names()
    condition = conditions().get(episode.condition)
    cpt = next((c for c in billing_data().cpt.codes if c.code == s.cpt_code), None)
    signer = people.get(s.signed_by) if s.signed_by else None
    clinician = people.get(s.clinician_id)
    facts = [
        *patient_facts(patient),
        (
            "Condition",
            f"{condition.label if condition else label(episode.condition)} "
            f"(ICD-10-CM {episode.icd10_code})",
        ),
        ("Session", when(s.started_at)),
        ("Signed", f"{when(s.signed_at)} · locked"),
        ("Signed by", person(signer)),
    ]
    if clinician is None or signer is None or clinician.user_id != signer.user_id:
        facts.append(("Clinician of record", f"{person(clinician)} (co-signed)"))
    facts.append(
        (
            "Billing",
            f"CPT {s.cpt_code}: {cpt.descriptor if cpt else ''} ({s.billing_muscles} muscle"
            f"{'' if s.billing_muscles == 1 else 's'} billed)"
            if s.cpt_code
            else "no dry needling billed (no sites)",
        )
    )
    blocks: list[Block] = [
        Facts(facts),
        Heading("SOAP"),
        Facts(
            [
                ("Subjective", s.subjective or "—"),
                ("Objective", s.objective or "—"),
                ("Assessment", s.assessment or "—"),
                ("Plan", s.plan or "—"),
            ]
        ),
        Heading(f"Dry needling ({len(d.sites)} site{'' if len(d.sites) == 1 else 's'})"),
    ]
    if d.sites:
        rows = []
        for site in d.sites:
            muscle = names.get(site.muscle_id, label(site.muscle_id))
            extra = [site.notes] if site.notes else []
            if site.override_reason:
                code = f" ({label(site.override_code)})" if site.override_code else ""
                extra.append(f"Override{code}: {site.override_reason}")
            rows.append(
                [
                    "\n".join([muscle, *extra]),
                    site.side.value,
                    site.trigger_point.value,
                    label(site.technique),
                    needle(site),
                    with_unit(site.depth_mm, "mm"),
                    label(site.approach) if site.approach else "not recorded",
                    str(site.insertions),
                    str(site.local_twitch_responses),
                    estim(site),
                    site.tolerance.value,
                ]
            )
        blocks.append(
            Table(
                [
                    "Muscle",
                    "Side",
                    "Trigger point",
                    "Technique",
                    "Needle",
                    "Depth",
                    "Approach",
                    "Insertions",
                    "Twitches",
                    "E-stim",
                    "Tolerance",
                ],
                rows,
                widths=[18, 7, 10, 13, 18, 9, 12, 13, 12, 9, 13],
                caption="Needle: diameter × length. Twitches: local twitch responses.",
            )
        )
    else:
        blocks.append(Paragraph("No needling in this session."))
    for f in s.safety_flags:
        site_no = f.get("site")
        where = ""
        message = str(f.get("message") or label(f.get("rule")))
        if isinstance(site_no, int) and 0 <= site_no < len(d.sites):
            site = d.sites[site_no]
            muscle = names.get(site.muscle_id, label(site.muscle_id))
            where = "" if message.startswith(muscle) else f"{muscle}, {site.side.value}: "
        action = f.get("action")
        tail = " (overridden)" if action == "overridden" else " (precaution)"
        tail = tail if action in ("overridden", "precaution") else ""
        blocks.append(Paragraph(f"Safety flag: {where}{message}{tail}", "hint"))
    blocks.append(Heading("Outcomes and events"))
    instruments = library()
    outcome_rows = []
    for m in d.measurements:
        inst = instruments.get(m.instrument_id)
        name = inst.name if inst else label(m.instrument_id)
        ctx_words = ""
        if m.context and m.context.get("joint"):
            ctx_words = " ({})".format(
                " ".join(label(m.context.get(k, "")) for k in ("joint", "movement", "side")).strip()
            )
        outcome_rows.append([f"{name}{ctx_words}", with_unit(m.score, inst.unit if inst else "")])
    if outcome_rows:
        blocks.append(Table(["Measure", "Score"], outcome_rows, widths=[3, 1]))
    for c in d.co_interventions:
        minutes = f" ({c.minutes}{NBSP}min)" if c.minutes else ""
        blocks.append(Paragraph(f"{label(c.modality).capitalize()}: {c.description}{minutes}"))
    for a in d.adverse_events:
        recorded = people.get(a.recorded_by)
        later = a.created_at > s.signed_at
        blocks.append(
            Paragraph(
                f"Adverse event ({'recorded after signing, ' if later else ''}onset "
                f"{when(a.onset_at)}): {label(a.kind)}, {a.severity.value}: {a.description}"
                f"{'; ' + a.action_taken if a.action_taken else ''}"
                f"{'; reportable' if a.reportable else ''}. Recorded by "
                f"{recorded.full_name if recorded else 'a former member of the clinic'}.",
                "warning",
            )
        )
        for entry in entries.get(a.id, []):
            who = people.get(entry.recorded_by)
            blocks.append(
                Paragraph(
                    f"{FOLLOW_UP_WORDS.get(entry.kind, label(entry.kind))}, "
                    f"{when(entry.occurred_at)}: {entry.text} "
                    f"({who.full_name if who else 'a former member of the clinic'})",
                    "hint",
                )
            )
    if not (d.measurements or d.co_interventions or d.adverse_events):
        blocks.append(Paragraph("None recorded."))
    blocks.append(Heading("Amendments"))
    for am in d.amendments:
        blocks.append(Heading(f"{when(am.created_at)} — {am.reason}", 3))
        blocks.append(Paragraph(am.text))
        blocks.append(Paragraph(f"Amended by {person(people.get(am.author_id))}.", "hint"))
    if not d.amendments:
        blocks.append(Paragraph("None."))
    local_day = clinic_time.local_date(s.started_at, tz).isoformat()
    return Printed(
        Document(
            title="Session note",
            subject=patient_line(patient),
            clinic=clinic.name,
            produced=produced,
            blocks=blocks,
            filename=f"session-note-{local_day}.pdf",
        ),
        patient.id,
    )


# --- (b) the progress / discharge report ---------------------------------------------------


def _series(m: MeasureSummary, sessions: list[datetime]) -> Series:
    inst = library().get(m.instrument_id)
    mcid = meaningful_change(m)
    band = None
    band_label = ""
    if m.baseline is not None and mcid is not None:
        better = m.baseline - mcid if m.higher_is == "worse" else m.baseline + mcid
        band = (m.baseline, better)
        band_label = (
            f"change smaller than the {(m.threshold_basis or 'threshold').upper()} "
            f"({with_unit(mcid, m.unit)})"
        )
    value_range = None
    if inst is not None and m.instrument_id not in ("rom", "ppt") and inst.score_range:
        lo, hi = inst.score_range
        value_range = (float(lo), float(hi)) if hi - lo <= 100 else None
    return Series(
        title=m.label,
        unit=m.unit,
        higher_is=m.higher_is,
        points=[(p.taken_at, p.score) for p in m.points],
        baseline=m.baseline,
        band=band,
        band_label=band_label,
        sessions=sessions,
        value_range=value_range,
    )


def _benefit_blocks(b: BenefitSummary) -> list[Block]:
    beside = " (reported beside the eight benefits)" if b.reported_beside else ""
    out: list[Block] = [Heading(f"{b.name}{beside}: {headline(b)}", 3)]
    for m in b.measures:
        first = f"; {first_change(m)}" if first_change(m) else ""
        out.append(
            Paragraph(f"{m.label}: {fmt(m, m.baseline)} → {fmt(m, m.latest)} ({verdict(m)}){first}")
        )
        if m.threshold_basis:
            unverified = "" if m.threshold_verified else " (unverified)"
            out.append(
                Paragraph(
                    f"Judged against the {m.threshold}; source: {m.threshold_source}{unverified}",
                    "hint",
                )
            )
    for f in b.facts:
        value = "not known" if f.value is None else str(f.value)
        unit = f.unit[:-1] if f.value == 1 and f.unit.endswith("s") else f.unit
        out.append(Paragraph(f"{f.label}: {value}{' ' + unit if unit else ''}"))
    if not b.measured and b.id != "tissue_healing":
        out.append(Paragraph(f"Nothing recorded in this episode informs {b.name.lower()}."))
    ev = b.evidence
    if ev.cited:
        caveat = "" if ev.verified else " (not all seen first-hand: verify before relying on them)"
        source = f"Sources: {ev.source}{caveat}"
    else:
        source = ev.source
    out.append(Paragraph(f"Evidence ({ev.level}): {ev.note} {source}", "hint"))
    return out


def report_document(ctx: RequestContext, episode_id: UUID, *, export: bool) -> Printed:
    """The progress report (a discharge report once the episode is closed): identifiers,
    diagnosis, plan, needling by visit and by muscle, each outcome plotted against its
    responder threshold, the benefit summary with its "not measured" rows, the signers.
    Only signed notes count."""
    tz = clinic_zone(ctx)
    with ctx.reader() as r:
        records = episode_records(r, episode_id)
        episode = records.episode
        patient = get_patient(r, episode.patient_id)
        referrals = referrals_of(r, patient.id)
        clinic = r.clinic()
        people = signatories(
            r,
            [
                episode.clinician_id,
                ctx.actor.user_id,
                *(s.signed_by for s in records.sessions if s.signed_by),
            ],
        )
        produced = _produced(ctx, r, tz)
        if export:
            r.note(AuditAction.DOCUMENT_EXPORTED, "progress_report", episode.id, patient.id)
    summary = summarise_episode(records)

    def day(moment: datetime) -> str:
        return clinic_time.local_date(moment, tz).isoformat()

    names = _muscle_names()
    condition = conditions().get(episode.condition)
    closed = episode.closed_on is not None
    title = "Discharge report" if closed else "Progress report"
    diagnosis = (
        f"{episode.icd10_code} — {condition.icd10.title}"
        if condition and condition.icd10.code == episode.icd10_code
        else episode.icd10_code
    )
    facts = [
        *patient_facts(patient),
        ("Sex", label(patient.sex)),
        (
            "Referred by",
            "; ".join(
                f"{ref.referrer_name}, received {ref.received_on.isoformat()}: {ref.reason}"
                for ref in referrals
            )
            or "no referral recorded",
        ),
        ("Condition", condition.label if condition else label(episode.condition)),
        ("Diagnosis (ICD-10-CM)", diagnosis),
        ("Body region", label(episode.body_region)),
        ("Onset", episode.onset_date.isoformat()),
        ("Episode opened", episode.opened_on.isoformat()),
        (
            "Episode closed",
            f"{episode.closed_on.isoformat()}: {episode.discharge_reason or 'no reason recorded'}"
            if episode.closed_on
            else "open",
        ),
        ("Clinician of record", person(people.get(episode.clinician_id))),
        ("Signed sessions", str(len(records.sessions))),
    ]
    blocks: list[Block] = [Facts(facts), Heading("Goals"), Paragraph(episode.goals or "—")]
    blocks.append(Heading("Plan"))
    if records.plan:
        blocks.append(
            Table(
                ["Modality", "What", "Sessions per week"],
                [
                    [
                        label(p.modality).capitalize(),
                        p.description,
                        "—" if p.sessions_per_week is None else number(p.sessions_per_week),
                    ]
                    for p in records.plan
                ],
                widths=[2, 5, 2],
            )
        )
    else:
        blocks.append(Paragraph("No plan items recorded."))
    # Needling by visit, then by muscle (signed notes only).
    sites_of: dict[UUID, list[NeedlingSite]] = {}
    for site in records.sites:
        sites_of.setdefault(site.session_id, []).append(site)
    blocks.append(Heading("Needling by visit"))
    visit_rows = []
    for s in records.sessions:
        here = sorted(sites_of.get(s.id, []), key=lambda x: x.position)
        signer = people.get(s.signed_by) if s.signed_by else None
        visit_rows.append(
            [
                clinic_time.when(s.started_at, tz),
                "; ".join(
                    f"{names.get(x.muscle_id, label(x.muscle_id))} ({x.side.value}, "
                    f"{x.insertions} insertion{'' if x.insertions == 1 else 's'}, "
                    f"{with_unit(x.depth_mm, 'mm')})"
                    for x in here
                )
                or "no needling",
                f"CPT {s.cpt_code}" if s.cpt_code else "—",
                signer.full_name if signer else "—",
            ]
        )
    if visit_rows:
        blocks.append(
            Table(["Visit", "Sites needled", "Billing", "Signed by"], visit_rows, [4, 9, 2, 4])
        )
    else:
        blocks.append(Paragraph("No signed sessions in this episode yet."))
    session_day = {s.id: s.started_at for s in records.sessions}
    by_muscle: dict[tuple[str, str], list[NeedlingSite]] = {}
    for site in records.sites:
        by_muscle.setdefault((site.muscle_id, site.side.value), []).append(site)
    if by_muscle:
        blocks.append(Heading("Needling by muscle"))
        muscle_rows = []
        for (muscle_id, side), sites in sorted(
            by_muscle.items(), key=lambda kv: (names.get(kv[0][0], kv[0][0]), kv[0][1])
        ):
            visits = sorted(
                {session_day[x.session_id] for x in sites if x.session_id in session_day}
            )
            muscle_rows.append(
                [
                    names.get(muscle_id, label(muscle_id)),
                    side,
                    str(len(visits)),
                    str(sum(x.insertions for x in sites)),
                    str(sum(x.local_twitch_responses for x in sites)),
                    f"{day(visits[0])} to {day(visits[-1])}" if visits else "—",
                ]
            )
        blocks.append(
            Table(
                ["Muscle", "Side", "Visits", "Insertions", "Twitches", "First and last visit"],
                muscle_rows,
                [6, 2, 2, 3, 3, 6],
            )
        )
    # Outcomes plotted against the threshold.
    blocks.append(Heading("Outcomes over time"))
    session_times = [s.started_at for s in records.sessions]
    seen: set[str] = set()
    for b in summary.benefits:
        for m in b.measures:
            if not m.points or m.label in seen:
                continue
            seen.add(m.label)
            series = _series(m, session_times)
            caption = (
                f"{m.label}: baseline {fmt(m, m.baseline)}, latest {fmt(m, m.latest)} over "
                f"{m.administrations} administration{'' if m.administrations == 1 else 's'}: "
                f"{verdict(m)}."
            )
            if series.band is not None:
                caption += (
                    f" Shaded: {series.band_label}; source: {m.threshold_source or 'not known'}."
                )
            else:
                caption += " No published threshold: no band is drawn."
            blocks.append(Figure(measure_png(series, tz), caption, alt=caption))
    if not seen:
        blocks.append(Paragraph("No measurements in this episode yet."))
    blocks.append(Heading("The eight benefits, and function beside them"))
    blocks.append(
        Paragraph(
            'A benefit that nothing in this episode measured is shown as "not measured": it '
            "is not a finding that the benefit did not happen.",
            "hint",
        )
    )
    blocks.append(
        Table(
            ["Benefit", "Result", "Measured by"],
            [
                [
                    b.name,
                    headline(b),
                    ", ".join(dict.fromkeys(m.name for m in b.measures)) or "—",
                ]
                for b in summary.benefits
            ],
            widths=[5, 5, 6],
        )
    )
    for b in summary.benefits:
        blocks.extend(_benefit_blocks(b))
    blocks.append(Heading("Signature"))
    signers = {s.signed_by for s in records.sessions if s.signed_by}
    if signers:
        blocks.append(
            Paragraph(
                "The notes this report reads were signed by: "
                + "; ".join(person(people.get(u)) for u in sorted(signers))
                + "."
            )
        )
    blocks.append(Paragraph(f"Report prepared by {person(people.get(ctx.actor.user_id))}."))
    blocks.append(Paragraph("Signature: ______________________________    Date: ______________"))
    return Printed(
        Document(
            title=title,
            subject=patient_line(patient),
            clinic=clinic.name,
            produced=produced,
            blocks=blocks,
            filename=f"{title.lower().replace(' ', '-')}-{clinic_time.local_date(now(), tz)}.pdf",
        ),
        patient.id,
    )


# --- (c) the patient's copy of a signed consent --------------------------------------------


def consent_document(ctx: RequestContext, consent_id: UUID, *, export: bool) -> Printed:
    """The signed consent as the patient's copy: the form's full text at the version
    signed, who signed, how and when, the witness, the drawn signature, and whether it
    was withdrawn."""
    tz = clinic_zone(ctx)
    with ctx.reader() as r:
        r.require(Permission.READ_CLINICAL)
        consent = r.one(Consent, consent_id, field="consent_id")
        patient = r.patient_record(consent.patient_id)
        clinic = r.clinic()
        people = signatories(r, [consent.recorded_by])
        produced = _produced(ctx, r, tz)
        if export:
            r.note(AuditAction.DOCUMENT_EXPORTED, "consent", consent.id, patient.id)

    def when(moment: datetime) -> str:
        return clinic_time.when(moment, tz)

    template = next(
        (
            t
            for t in templates()
            if t.id == consent.template_id and t.version == consent.template_version
        ),
        None,
    )
    form_title = template.title if template else label(consent.template_id).capitalize()
    blocks: list[Block] = [
        Facts(
            [
                *patient_facts(patient),
                ("Form", f"{form_title}, version {consent.template_version}"),
            ]
        )
    ]
    if template is None:
        blocks.append(Paragraph("The text of this form version is not on file.", "warning"))
    else:
        for section in template.sections:
            blocks += [Heading(section.heading, 3), Paragraph(section.text)]
    relationship = RELATIONSHIP_WORDS.get(consent.signer_relationship or "", "")
    signed = [
        (
            "Signed by",
            f"{consent.signer_name}{', ' + relationship if relationship else ''}",
        ),
        ("How", METHOD_WORDS[consent.method]),
        ("Signed", when(consent.signed_at)),
    ]
    if consent.witness_name:
        signed.append(("Witness", consent.witness_name))
    signed += [
        ("Copy given at signing", "yes" if consent.copy_given else "no"),
        ("Recorded by", person(people.get(consent.recorded_by))),
        (
            "Status",
            f"withdrawn {when(consent.withdrawn_at)}" if consent.withdrawn_at else "in force",
        ),
    ]
    blocks.append(Heading("Signature"))
    if consent.signature and consent.signature.lstrip().startswith("M"):
        blocks.append(Signature(consent.signature, f"Signature of {consent.signer_name}"))
    elif consent.signature:
        blocks.append(Paragraph("A signature image was captured (not reproduced here).", "hint"))
    blocks.append(Facts(signed))
    return Printed(
        Document(
            title="Informed consent — patient's copy",
            subject=patient_line(patient),
            clinic=clinic.name,
            produced=produced,
            blocks=blocks,
            filename=f"consent-{clinic_time.local_date(consent.signed_at, tz).isoformat()}.pdf",
        ),
        patient.id,
    )


# --- the routes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shown:
    """A block as the print page shows it (a picture as a data: URI)."""

    kind: str
    block: Block
    uri: str = ""


def _shown(block: Block) -> _Shown:
    if isinstance(block, Figure):
        return _Shown(
            "figure", block, "data:image/png;base64," + base64.b64encode(block.png).decode()
        )
    kinds = {Heading: "heading", Paragraph: "paragraph", Facts: "facts", Table: "table"}
    return _Shown(kinds.get(type(block), "signature"), block)


Builder = Callable[..., Printed]


def _print(request: Request, build: Builder, record_id: UUID, pdf_url: str, back: str) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        printed = build(ctx, record_id, export=False)
    except DraftNote as err:
        return render(request, "error.html", 404, message=err.detail)
    except DomainError as err:
        return refusal_page(request, err)
    doc = printed.document
    return render(
        request,
        "document.html",
        doc=doc,
        blocks=[_shown(b) for b in doc.blocks],
        pdf_url=pdf_url,
        back=back or f"/patients/{printed.patient_id}",
        patient_url=f"/patients/{printed.patient_id}",
    )


def _pdf(request: Request, build: Builder, record_id: UUID) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        doc = build(ctx, record_id, export=True).document
    except DraftNote as err:
        return render(request, "error.html", 404, message=err.detail)
    except DomainError as err:
        return refusal_page(request, err)
    return Response(
        render_pdf(doc),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{doc.filename}"'},
    )


@router.get("/sessions/{session_id}/print", response_model=None)
def note_print(request: Request, session_id: UUID) -> Response:
    """The signed note, ready to print."""
    return _print(
        request, note_document, session_id, f"/sessions/{session_id}/pdf", f"/sessions/{session_id}"
    )


@router.get("/sessions/{session_id}/pdf", response_model=None)
def note_pdf(request: Request, session_id: UUID) -> Response:
    """The signed note as a PDF."""
    return _pdf(request, note_document, session_id)


@router.get("/episodes/{episode_id}/report", response_model=None)
def report_print(request: Request, episode_id: UUID) -> Response:
    """The progress / discharge report, ready to print."""
    return _print(
        request,
        report_document,
        episode_id,
        f"/episodes/{episode_id}/report/pdf",
        f"/episodes/{episode_id}/progress",
    )


@router.get("/episodes/{episode_id}/report/pdf", response_model=None)
def report_pdf(request: Request, episode_id: UUID) -> Response:
    """The progress / discharge report as a PDF."""
    return _pdf(request, report_document, episode_id)


@router.get("/consents/{consent_id}/print", response_model=None)
def consent_print(request: Request, consent_id: UUID) -> Response:
    """The signed consent as the patient's copy, ready to print."""
    return _print(request, consent_document, consent_id, f"/consents/{consent_id}/pdf", "")


@router.get("/consents/{consent_id}/pdf", response_model=None)
def consent_pdf(request: Request, consent_id: UUID) -> Response:
    """The signed consent as the patient's copy, a PDF."""
    return _pdf(request, consent_document, consent_id)
