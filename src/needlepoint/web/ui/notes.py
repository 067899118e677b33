"""The session note, built for speed: SOAP, needling sites picked on the body chart or by
search, quick outcomes, adverse events, a draft saved as you type, and signing.

Every save builds the same `RecordSession` / `UpdateSession` the API uses. The autosave
keeps whatever can be kept: a site still being filled in, or one a safety rule refuses,
is left out of the saved draft (and shown with its problem), so the rest of the note is
never lost. An explicit save or sign saves all or nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from needlepoint.actions.sessions import amend_session, record_session, update_session
from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import conditions, muscles
from needlepoint.domain.clinic_time import clock
from needlepoint.domain.commands import (
    AdverseEventIn,
    AmendSession,
    CoInterventionIn,
    MeasurementIn,
    NeedlingSiteIn,
    RecordSession,
    ScreeningAnswers,
    UpdateSession,
)
from needlepoint.domain.entities import Episode, NeedlingSite, Session
from needlepoint.domain.enums import (
    AdverseEventKind,
    Approach,
    Modality,
    SessionStatus,
    Severity,
    Side,
    Technique,
    Tolerance,
    TriggerPoint,
)
from needlepoint.domain.errors import DomainError, NotAuthenticated, SafetyRefusal, StaleVersion
from needlepoint.domain.instruments import library
from needlepoint.domain.screening import current_screening
from needlepoint.domain.site_safety import review_sites, site_rules
from needlepoint.queries import templates
from needlepoint.queries.episodes import episode_detail
from needlepoint.queries.outcomes import patient_measurements
from needlepoint.queries.patients import get_patient
from needlepoint.queries.reader import Reader
from needlepoint.queries.screening import needling_status, patient_screenings
from needlepoint.queries.sessions import episode_sessions, session_detail
from needlepoint.web.context import RequestContext
from needlepoint.web.ui import body_chart, questionnaires
from needlepoint.web.ui.forms import (
    Errors,
    checked_form,
    clinic_zone,
    field_errors,
    in_thread,
    local_input,
    now,
    parse_local,
    posted_form,
    refusal_page,
    render,
    see_other,
    signed_in,
    submitted_form,
    text,
    to_login,
)
from needlepoint.web.ui.sign_refusals import sign_problems
from needlepoint.web.ui.signed_notes import signed_page as _signed_page

router = APIRouter(include_in_schema=False)
SITE_FIELDS = (
    "muscle_id",
    "side",
    "trigger_point",
    "technique",
    "needle_gauge_mm",
    "needle_length_mm",
    "depth_mm",
    "insertions",
    "local_twitch_responses",
    "tolerance",
    "notes",
    "override_reason",
    "override_code",
    "approach",
    "mark",
    "estim_hz",
    "estim_ma",
    "estim_min",
)
SITE_DEFAULTS = {
    "side": "",  # never a silent default: the chart click or the clinician says which side
    "trigger_point": "active",
    "technique": "pistoning",
    "needle_gauge_mm": "0.25",
    "needle_length_mm": "30",
    "local_twitch_responses": "0",
    "tolerance": "good",
}
DUE_AFTER = timedelta(days=28)
_SITE_KEY = re.compile(r"^sites-(\d+)-muscle_id$")
_AE_KEY = re.compile(r"^ae-(\d+)-kind$")
_CO_KEY = re.compile(r"^co-(\d+)-modality$")


# --- reading the form ---------------------------------------------------------------------


@dataclass
class NoteForm:
    """The note as the clinician typed it: plain strings, kept whatever their validity."""

    started_at: str
    soap: dict[str, str]
    sites: list[dict[str, str]]
    adverse_events: list[dict[str, str]]
    co_interventions: list[dict[str, str]]
    nprs: str = ""
    rom: str = ""
    rom_side: str = ""
    due: dict[str, str] = field(default_factory=dict)
    due_instrument: str = ""
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    """Questionnaires added on demand: instrument id → its `itemN` and `ctx-KEY` fields."""


def read_form(form: dict[str, Any]) -> NoteForm:
    def rows(pattern: re.Pattern[str], prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
        idx = sorted({int(m.group(1)) for k in form if (m := pattern.match(k))})
        return [{n: text(form, f"{prefix}-{i}-{n}") for n in names} for i in idx]

    sites = rows(_SITE_KEY, "sites", (*SITE_FIELDS, "estim"))
    return NoteForm(
        started_at=text(form, "started_at"),
        soap={k: text(form, k) for k in ("subjective", "objective", "assessment", "plan")},
        sites=[s for s in sites if s["muscle_id"]],
        adverse_events=rows(
            _AE_KEY, "ae", ("kind", "severity", "description", "action_taken", "reportable")
        ),
        co_interventions=rows(_CO_KEY, "co", ("modality", "description", "minutes", "on")),
        nprs=text(form, "nprs"),
        rom=text(form, "rom"),
        rom_side=text(form, "rom_side"),
        due={k[4:]: text(form, k) for k in form if k.startswith("due-")},
        due_instrument=text(form, "due_instrument"),
        extra=questionnaires.read_extra(form),
    )


def _num(value: str) -> str | None:
    return value.replace(",", ".") if value else None


def site_command(row: dict[str, str]) -> NeedlingSiteIn:
    estim = row.get("estim") == "on"
    data: dict[str, Any] = {
        "muscle_id": row["muscle_id"],
        "side": row["side"],
        "trigger_point": row["trigger_point"],
        "technique": row["technique"],
        "needle_gauge_mm": _num(row["needle_gauge_mm"]),
        "needle_length_mm": _num(row["needle_length_mm"]),
        "depth_mm": _num(row["depth_mm"]),
        "insertions": row["insertions"] or None,
        "local_twitch_responses": row["local_twitch_responses"] or 0,
        "tolerance": row["tolerance"],
        "electrical_stimulation": estim,
        "notes": body_chart.join_mark(row.get("mark", ""), row.get("notes", "")),
        "override_reason": row.get("override_reason") or None,
        "override_code": row.get("override_code") or None,
        "approach": row.get("approach") or None,
    }
    if estim:
        data["estim_params"] = {
            "frequency_hz": _num(row.get("estim_hz", "")),
            "intensity_ma": _num(row.get("estim_ma", "")),
            "minutes": _num(row.get("estim_min", "")),
        }
    return NeedlingSiteIn.model_validate(data)


@dataclass
class Built:
    """The note as a command's fields, with the problems found on the way."""

    data: dict[str, Any]
    site_index: list[int]  # command site i → form site row
    measurement_keys: list[str]
    errors: Errors


def build(note: NoteForm, episode: Episode, tz: ZoneInfo) -> Built:
    errors: Errors = {}
    started = parse_local(note.started_at, tz)  # the clinic's local time, stored as UTC
    sites: list[NeedlingSiteIn] = []
    site_index: list[int] = []
    for i, row in enumerate(note.sites):
        try:
            sites.append(site_command(row))
            site_index.append(i)
        except ValidationError as err:
            for k, v in field_errors(err, f"sites.{i}.").items():
                errors.setdefault(k, []).extend(v)
    aes: list[AdverseEventIn] = []
    for i, row in enumerate(note.adverse_events):
        if not row["kind"]:
            continue
        try:
            aes.append(
                AdverseEventIn.model_validate(
                    {
                        "kind": row["kind"],
                        "severity": row["severity"],
                        "onset_at": started,
                        "description": row["description"],
                        "action_taken": row["action_taken"] or None,
                        "reportable": row["reportable"] == "on",
                    }
                )
            )
        except ValidationError as err:
            for k, v in field_errors(err, f"ae.{i}.").items():
                errors.setdefault(k, []).extend(v)
    co: list[CoInterventionIn] = []
    for i, row in enumerate(note.co_interventions):
        if row["on"] != "on":
            continue
        try:
            co.append(
                CoInterventionIn.model_validate(
                    {
                        "modality": row["modality"],
                        "description": row["description"],
                        "minutes": row["minutes"] or None,
                    }
                )
            )
        except ValidationError as err:
            for k, v in field_errors(err, f"co.{i}.").items():
                errors.setdefault(k, []).extend(v)
    measures: list[dict[str, Any]] = []
    keys: list[str] = []
    if note.nprs:
        measures.append({"instrument_id": "nprs", "answers": {"item1": note.nprs}})
        keys.append("nprs")
    cond = conditions().get(episode.condition)
    if note.rom and cond and cond.rom:
        side = note.rom_side or ("midline" if cond.rom.joint == "lumbar_spine" else "")
        if not side:  # never silently "left": the side measured is said
            errors.setdefault("rom_side", []).append("Choose the side measured (left or right).")
        ctx = {"joint": cond.rom.joint, "movement": cond.rom.movement, "side": side}
        measures.append(
            {"instrument_id": "rom", "answers": {"item1": _num(note.rom)}, "context": ctx}
        )
        keys.append("rom")
    if note.due_instrument and any(note.due.values()):
        answers = {k: _num(v) for k, v in note.due.items()}
        measures.append({"instrument_id": note.due_instrument, "answers": answers})
        keys.append("due")
    for iid, entered in note.extra.items():
        measures.append(questionnaires.measurement(iid, entered))
        keys.append(f"x-{iid}")
    measurements: list[MeasurementIn] = []
    for key, m in zip(keys, measures, strict=True):
        try:
            measurements.append(MeasurementIn.model_validate(m))
        except ValidationError as err:
            for k, v in field_errors(err, f"{key}.").items():
                errors.setdefault(k, []).extend(v)
    data = {
        "started_at": started,
        **note.soap,
        "sites": sites,
        "co_interventions": co,
        "adverse_events": aes,
        "measurements": measurements,
    }
    return Built(data, site_index, keys, errors)


def _map_errors(errors: Errors, built: Built) -> Errors:
    """Command field paths (`sites.1.depth_mm`, `measurements.0.answers`) → form rows."""
    out: Errors = {}
    for key, msgs in errors.items():
        m = re.match(r"^sites\.(\d+)\.(.*)$", key)
        if m and int(m.group(1)) < len(built.site_index):
            key = f"sites.{built.site_index[int(m.group(1))]}.{m.group(2)}"
        m = re.match(r"^measurements\.(\d+)\.?(.*)$", key)
        if m and int(m.group(1)) < len(built.measurement_keys):
            key = built.measurement_keys[int(m.group(1))]
        out.setdefault(key, []).extend(msgs)
    return out


# --- saving ---------------------------------------------------------------------------------


@dataclass
class Saved:
    session: Session | None
    errors: Errors
    left_out: list[int]  # form site rows not in the saved draft
    stale: bool = False


def save(
    ctx: RequestContext,
    episode: Episode,
    session_id: UUID | None,
    version: int | None,
    note: NoteForm,
    *,
    partial: bool,
) -> Saved:
    """Record or update the draft. `partial` (autosave) leaves out the sites that are
    incomplete or refused and saves the rest; otherwise all or nothing."""
    built = build(note, episode, clinic_zone(ctx))
    errors = dict(built.errors)
    if errors and not partial:
        return Saved(None, errors, [])
    left_out = sorted(set(range(len(note.sites))) - set(built.site_index))
    for attempt in range(2):
        try:
            if session_id is None:
                session = record_session(
                    ctx.uow(), ctx.actor, RecordSession(episode_id=episode.id, **built.data)
                )
            else:
                cmd = UpdateSession(
                    session_id=session_id, expected_version=version or 0, **built.data
                )
                session = update_session(ctx.uow(), ctx.actor, cmd)
            return Saved(session, errors, left_out)
        except StaleVersion as err:
            return Saved(None, {"": [err.detail]}, left_out, stale=True)
        except ValidationError as err:
            return Saved(None, {**errors, **_map_errors(field_errors(err), built)}, left_out)
        except SafetyRefusal as err:
            mapped = _map_errors(field_errors(err), built)
            for k, v in mapped.items():
                errors.setdefault(k, []).extend(v)
            if not partial or attempt:
                return Saved(None, errors, left_out)
            refused = {int(m.group(1)) for k in mapped if (m := re.match(r"^sites\.(\d+)\.", k))}
            if any(not k.startswith("sites.") for k in mapped) or not refused:
                refused = set(built.site_index)  # the note as a whole may not be needled
            keep = [
                (s, i)
                for s, i in zip(built.data["sites"], built.site_index, strict=True)
                if i not in refused
            ]
            built.data["sites"] = [s for s, _ in keep]
            built.site_index = [i for _, i in keep]
            left_out = sorted(set(left_out) | refused)
        except DomainError as err:
            return Saved(None, {**errors, **_map_errors(field_errors(err), built)}, left_out)
    return Saved(None, errors, left_out)  # pragma: no cover - the loop always returns


# --- what the page shows ----------------------------------------------------------------------


def site_rows(sites: list[NeedlingSite]) -> list[dict[str, str]]:
    """Stored sites as form rows."""
    rows = []
    for s in sites:
        mark, notes = body_chart.split_mark(s.notes)
        estim = s.estim_params or {}
        rows.append(
            {
                "muscle_id": s.muscle_id,
                "side": s.side.value,
                "trigger_point": s.trigger_point.value,
                "technique": s.technique.value,
                "needle_gauge_mm": f"{s.needle_gauge_mm:g}",
                "needle_length_mm": f"{s.needle_length_mm:g}",
                "depth_mm": f"{s.depth_mm:g}",
                "insertions": str(s.insertions),
                "local_twitch_responses": str(s.local_twitch_responses),
                "tolerance": s.tolerance.value,
                "notes": notes,
                "override_reason": s.override_reason or "",
                "override_code": s.override_code.value if s.override_code else "",
                "approach": s.approach.value if s.approach else "",
                "mark": mark or "",
                "estim": "on" if s.electrical_stimulation else "",
                "estim_hz": f"{estim.get('frequency_hz', '') or ''}",
                "estim_ma": f"{estim.get('intensity_ma', '') or ''}",
                "estim_min": f"{estim.get('minutes', '') or ''}",
            }
        )
    return rows


def site_findings(
    reader: Reader, episode: Episode, note: NoteForm
) -> tuple[dict[int, list[dict[str, Any]]], list[str]]:
    """What the screening's site rules say about each site row (refusals and warnings,
    with sources), and what stops needling for the whole note."""
    status = needling_status(reader, episode.patient_id, now())
    blockers = [f"Needling cannot be recorded: {b}." for b in status.blockers]
    screening = current_screening(
        patient_screenings(reader, episode.patient_id),
        now(),
        reader.clinic().screening_valid_days,
    )
    answers = ScreeningAnswers.model_validate(screening.answers) if screening else None
    rows: list[NeedlingSiteIn] = []
    index: list[int] = []
    for i, row in enumerate(note.sites):
        try:
            probe = dict(row)
            probe["depth_mm"] = probe["depth_mm"] or "1"
            probe["insertions"] = probe["insertions"] or "1"
            rows.append(site_command(probe))
            index.append(i)
        except ValidationError:
            continue
    out: dict[int, list[dict[str, Any]]] = {}
    for f in review_sites(rows, answers):
        if f.site is not None:
            out.setdefault(index[f.site], []).append(f.as_dict())
    return out, blockers


def _due(reader: Reader, episode: Episode, session: Session | None) -> Any:
    cond = conditions().get(episode.condition)
    if cond is None or not cond.function_instrument:
        return None
    instrument = library().get(cond.function_instrument)
    if instrument is None:
        return None
    taken = [
        m.taken_at
        for m in patient_measurements(reader, episode.patient_id, instrument.id)
        if m.episode_id == episode.id and (session is None or m.session_id != session.id)
    ]
    last = max(taken) if taken else None
    due = last is None or now() - last >= DUE_AFTER
    return {"instrument": instrument, "last": last, "due": due}


@dataclass(frozen=True)
class Carried:
    """What a new note starts from: the last signed note's subjective and plan (edited by
    the clinician, never signed unseen: the page says where they come from) and the side
    its range of motion was measured on."""

    started_at: datetime
    subjective: str
    plan: str
    rom_side: str


def carry_forward(reader: Reader, episode_id: UUID) -> Carried | None:
    """The episode's last signed note as a starting point, or None before the first."""
    signed = [s for s in episode_sessions(reader, episode_id) if s.status is SessionStatus.SIGNED]
    if not signed:
        return None
    last = signed[-1]
    rom = [m for m in session_detail(reader, last.id).measurements if m.instrument_id == "rom"]
    side = str((rom[0].context or {}).get("side", "")) if rom else ""
    return Carried(last.started_at, last.subjective, last.plan, side)


def _last_sites(reader: Reader, episode: Episode, exclude: UUID | None) -> list[NeedlingSite]:
    for s in reversed(episode_sessions(reader, episode.id)):
        if s.id == exclude:
            continue
        sites = session_detail(reader, s.id).sites
        if sites:
            return sites
    return []


def cpt_table() -> list[dict[str, Any]]:
    return [
        {"code": c.code, "min": c.min_muscles, "max": c.max_muscles, "descriptor": c.descriptor}
        for c in billing_data().cpt.codes
    ]


def _options() -> dict[str, Any]:
    return {
        "sides": [s.value for s in Side],
        "trigger_points": [t.value for t in TriggerPoint],
        "techniques": [t.value for t in Technique],
        "tolerances": [t.value for t in Tolerance],
        "approaches": [a.value for a in Approach],
        "override_codes": site_rules().override_reasons.codes,
        "ae_kinds": [k.value for k in AdverseEventKind],
        "severities": [s.value for s in Severity],
        "regions": body_chart.regions(),
        "by_region": body_chart.muscles_by_region(),
        "region_name": body_chart.region_name,
        "chart_keys": body_chart.chart_keys,
        "catalogue": {m.id: m for m in muscles().muscles},
        "cpt": cpt_table(),
        "blank_site": {**dict.fromkeys((*SITE_FIELDS, "estim"), ""), **SITE_DEFAULTS},
    }


def chart_marks(note: NoteForm) -> list[dict[str, str]]:
    """The trigger point marks of the note's sites, to draw on the chart."""
    out = []
    catalogue = muscles()
    for row in note.sites:
        mark = row.get("mark", "")
        if ":" in mark and "," in mark:
            view, xy = mark.split(":", 1)
            x, y = xy.split(",", 1)
            m = catalogue.get(row["muscle_id"])
            out.append({"view": view, "x": x, "y": y, "name": m.name if m else row["muscle_id"]})
    return out


def _note_page(
    request: Request,
    ctx: RequestContext,
    episode_id: UUID,
    session: Session | None,
    note: NoteForm,
    errors: Errors,
    *,
    status: int = 200,
    message: str | None = None,
    left_out: list[int] | None = None,
    region: str = "",
    sign_refused: bool = False,
    carried: Carried | None = None,
) -> Response:
    with ctx.reader() as r:
        detail = episode_detail(r, episode_id)
        episode = detail.episode
        patient = get_patient(r, episode.patient_id)
        findings, blockers = site_findings(r, episode, note)
        due = _due(r, episode, session)
        has_last = bool(_last_sites(r, episode, session.id if session else None))
        screening = current_screening(
            patient_screenings(r, episode.patient_id), now(), r.clinic().screening_valid_days
        )
        kept = templates.snippets(r)
        favs = templates.favourites(r)
    cond = conditions().get(episode.condition)
    problems = sign_problems(errors, note.sites) if sign_refused else []
    if problems:  # listed below the save status instead of above it (issue 15)
        errors = {k: v for k, v in errors.items() if k}
    options = _options()
    if favs.needles:  # a new site starts from the clinician's first needle size
        gauge, length = favs.needles[0]
        options["blank_site"] = {
            **options["blank_site"],
            "needle_gauge_mm": gauge,
            "needle_length_mm": length,
        }
    catalogue = options["catalogue"]
    return render(
        request,
        "note.html",
        status,
        patient=patient,
        episode=episode,
        plan=detail.plan,
        condition=cond,
        session=session,
        note=note,
        errors=errors,
        findings=findings,
        blockers=blockers,
        due=due,
        has_last=has_last,
        message=message,
        left_out=left_out or [],
        marks=chart_marks(note),
        region=region if region in body_chart.muscles_by_region() else "",
        sign_problems=problems,
        carried=carried,
        screening_answers=screening.answers if screening else None,
        snippets=kept,
        favourite_muscles=[catalogue[m] for m in favs.muscles if m in catalogue],
        answer_choices=questionnaires.choices,
        extra_instruments=questionnaires.on_demand(cond.function_instrument if cond else None),
        **options,
    )


def _co_rows(plan_modalities: list[Modality], stored: list[CoInterventionIn] | None = None) -> Any:
    rows = [
        {
            "modality": c.modality.value,
            "description": c.description,
            "minutes": str(c.minutes or ""),
            "on": "on",
        }
        for c in stored or []
    ]
    have = {r["modality"] for r in rows}
    for m in plan_modalities:
        if m is not Modality.DRY_NEEDLING and m.value not in have:
            words = {
                "exercise": "Supervised exercise",
                "manual_therapy": "Manual therapy",
                "education": "Education",
            }.get(m.value, m.value.replace("_", " "))
            rows.append({"modality": m.value, "description": words, "minutes": "", "on": ""})
    return rows


def _blank_note(plan_modalities: list[Modality], tz: ZoneInfo) -> NoteForm:
    return NoteForm(
        started_at=local_input(now(), tz),
        soap={"subjective": "", "objective": "", "assessment": "", "plan": ""},
        sites=[],
        adverse_events=[],
        co_interventions=_co_rows(plan_modalities),
    )


def _stored_note(ctx: RequestContext, session_id: UUID) -> tuple[Session, NoteForm]:
    with ctx.reader() as r:
        d = session_detail(r, session_id)
    s = d.session
    with ctx.reader() as r:
        cond = conditions().get(episode_detail(r, s.episode_id).episode.condition)
    function_instrument = cond.function_instrument if cond else None
    extra: dict[str, dict[str, str]] = {}
    nprs = rom = rom_side = ""
    due: dict[str, str] = {}
    due_instrument = ""
    for m in d.measurements:
        first = next(iter(m.answers.values()), None)
        value = "" if first is None else f"{first:g}"
        if m.instrument_id == "nprs":
            nprs = value
        elif m.instrument_id == "rom":
            rom, rom_side = value, str((m.context or {}).get("side", ""))
        elif m.instrument_id == function_instrument:
            due_instrument = m.instrument_id
            due = {k: "" if v is None else f"{v:g}" for k, v in m.answers.items()}
        else:
            extra[m.instrument_id] = questionnaires.entered(m.answers, m.context)
    note = NoteForm(
        started_at=local_input(s.started_at, clinic_zone(ctx)),
        soap={
            "subjective": s.subjective,
            "objective": s.objective,
            "assessment": s.assessment,
            "plan": s.plan,
        },
        sites=site_rows(d.sites),
        adverse_events=[
            {
                "kind": a.kind.value,
                "severity": a.severity.value,
                "description": a.description,
                "action_taken": a.action_taken or "",
                "reportable": "on" if a.reportable else "",
            }
            for a in d.adverse_events
        ],
        co_interventions=[
            {
                "modality": c.modality.value,
                "description": c.description,
                "minutes": str(c.minutes or ""),
                "on": "on",
            }
            for c in d.co_interventions
        ],
        nprs=nprs,
        rom=rom,
        rom_side=rom_side,
        due=due,
        due_instrument=due_instrument,
        extra=extra,
    )
    return s, note


# --- routes ----------------------------------------------------------------------------------


@router.get("/episodes/{episode_id}/sessions/new", response_model=None)
def new_note(request: Request, episode_id: UUID, copy: str = "", region: str = "") -> Response:
    """A blank note for the episode; `?copy=last` starts from the last session's needling."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            detail = episode_detail(r, episode_id)
            last = _last_sites(r, detail.episode, None) if copy == "last" else []
            carried = carry_forward(r, episode_id)
        note = _blank_note([p.modality for p in detail.plan], clinic_zone(ctx))
        if carried is not None:
            note.soap["subjective"] = carried.subjective
            note.soap["plan"] = carried.plan
            note.rom_side = carried.rom_side
        note.sites = [
            {**row, "override_reason": "", "override_code": ""} for row in site_rows(last)
        ]
        return _note_page(request, ctx, episode_id, None, note, {}, region=region, carried=carried)
    except DomainError as err:
        return refusal_page(request, err)


@router.get("/sessions/{session_id}", response_model=None)
def show_note(request: Request, session_id: UUID, copy: str = "", region: str = "") -> Response:
    """A draft opens for editing; a signed note reads as signed, with its amendments."""
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        session, note = _stored_note(ctx, session_id)  # the care-team rule: in the query
        if session.status is SessionStatus.SIGNED:
            return _signed_page(request, ctx, session_id)
        if copy == "last":
            with ctx.reader() as r:
                episode = episode_detail(r, session.episode_id).episode
                last = _last_sites(r, episode, session.id)
            note.sites += [
                {**row, "override_reason": "", "override_code": ""} for row in site_rows(last)
            ]
        return _note_page(request, ctx, session.episode_id, session, note, {}, region=region)
    except DomainError as err:
        return refusal_page(request, err)


@router.post("/episodes/{episode_id}/sessions", response_model=None)
async def post_new_note(request: Request, episode_id: UUID) -> Response:
    return await posted_form(request, _post_note, episode_id, None)


@router.post("/sessions/{session_id}", response_model=None)
async def post_note(request: Request, session_id: UUID) -> Response:
    return await posted_form(request, _post_note, None, session_id)


def _post_note(
    request: Request,
    ctx: RequestContext,
    episode_id: UUID | None,
    session_id: UUID | None,
    form: dict[str, Any],
) -> Response:
    try:
        with ctx.reader() as r:
            if session_id is not None:
                episode_id = r.one(Session, session_id, field="session_id").episode_id
            assert episode_id is not None
            episode = episode_detail(r, episode_id).episode
    except DomainError as err:
        return refusal_page(request, err)
    note = read_form(form)
    version = int(text(form, "version") or 0) or None
    session = None
    add = text(form, "add_muscle")
    if add:  # without JavaScript: a muscle button adds a site row and shows the form again
        note.sites.append(
            {**dict.fromkeys((*SITE_FIELDS, "estim"), ""), **SITE_DEFAULTS, "muscle_id": add}
        )
        if session_id is not None:
            session, _ = _stored_note(ctx, session_id)
        return _note_page(request, ctx, episode.id, session, note, {})
    saved = save(ctx, episode, session_id, version, note, partial=False)
    if saved.session is None:
        if session_id is not None:
            session, _ = _stored_note(ctx, session_id)
        message = (
            "This note was changed in another tab or by a colleague; reload it to see the "
            "latest version (your input below was not saved)."
            if saved.stale
            else None
        )
        return _note_page(
            request,
            ctx,
            episode.id,
            session,
            note,
            saved.errors,
            status=400,
            message=message,
            sign_refused=text(form, "intent") == "sign" and not saved.stale,
        )
    if text(form, "intent") == "sign":  # saved: the summary to confirm before locking
        return see_other(f"/sessions/{saved.session.id}/sign")
    return see_other(f"/sessions/{saved.session.id}")


@router.post("/notes/autosave", response_model=None)
async def autosave(request: Request) -> Response:
    """Save the draft as the clinician types (JSON for `static/note.js`)."""
    submitted = await submitted_form(request)
    return await in_thread(_autosave, request, submitted)


def _autosave(request: Request, submitted: dict[str, Any]) -> Response:
    ctx = signed_in(request)
    if ctx is None:
        return JSONResponse({"error": "signed out"}, status_code=401)
    form = checked_form(request, submitted)
    note = read_form(form)
    try:
        episode_id = UUID(text(form, "episode_id"))
        session_id = UUID(text(form, "session_id")) if text(form, "session_id") else None
        version = int(text(form, "version") or 0) or None
        with ctx.reader() as r:
            episode = episode_detail(r, episode_id).episode
            findings, blockers = site_findings(r, episode, note)
    except (ValueError, DomainError) as err:
        return JSONResponse({"saved": False, "errors": {"": [str(err)]}}, status_code=400)
    try:
        saved = save(ctx, episode, session_id, version, note, partial=True)
    except NotAuthenticated:
        return JSONResponse({"error": "signed out"}, status_code=401)
    body: dict[str, Any] = {
        "saved": saved.session is not None,
        "stale": saved.stale,
        "errors": saved.errors,
        "left_out": saved.left_out,
        "findings": {str(k): v for k, v in findings.items()},
        "blockers": blockers,
    }
    if saved.session is not None:
        body.update(
            session_id=str(saved.session.id),
            version=saved.session.version,
            url=f"/sessions/{saved.session.id}",
            action=f"/sessions/{saved.session.id}",
            saved_at=clock(saved.session.updated_at, clinic_zone(ctx)),
        )
    return JSONResponse(body, status_code=409 if saved.stale else 200)


@router.post("/sessions/{session_id}/amend", response_model=None)
async def amend(request: Request, session_id: UUID) -> Response:
    """Append an amendment to a signed note; the note itself never changes."""
    return await posted_form(request, _amend, session_id)


def _amend(
    request: Request, ctx: RequestContext, session_id: UUID, form: dict[str, Any]
) -> Response:
    entered = {"reason": text(form, "reason"), "text": text(form, "text")}
    try:
        amend_session(ctx.uow(), ctx.actor, AmendSession(session_id=session_id, **entered))
    except (DomainError, ValidationError) as err:
        return _signed_page(request, ctx, session_id, field_errors(err), entered, status=400)
    return see_other(f"/sessions/{session_id}#amendments")
