"""The de-identified research export (owner only): a disclosure of the clinic's care.

It writes no clinical record, yet it is an act with consequences, so it is an action: one
transaction that checks the permission, reads the clinic's records, builds the release
(`domain.research.deidentify`) and writes one `research.exported` audit event. Writing
the files (Parquet, CSV, the data dictionary) is the entrypoint's job, after the commit
(`adapters/research_files.py`)."""

from __future__ import annotations

import random

from needlepoint.actions.context import Actor, audit, authorize, load
from needlepoint.actions.registry import action
from needlepoint.domain.entities import (
    AdverseEvent,
    Clinic,
    Episode,
    Measurement,
    MedicationUse,
    NeedlingSite,
    Patient,
    Session,
)
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission
from needlepoint.domain.research import ClinicRecords, ExportResearch, ResearchRelease, deidentify
from needlepoint.ports import UnitOfWork


@action(Permission.EXPORT_RESEARCH, AuditAction.RESEARCH_EXPORTED)
def export_research(
    uow: UnitOfWork,
    actor: Actor,
    cmd: ExportResearch,
    *,
    rng: random.Random | None = None,
) -> ResearchRelease:
    """A de-identified release of the clinic's signed care (HIPAA Safe Harbor, k-anonymous
    on age band, sex, condition and region). `rng` is for tests: by default study ids and
    date shifts come from the operating system's random source."""
    source = rng if rng is not None else random.SystemRandom()
    with uow:
        authorize(uow, actor, Permission.EXPORT_RESEARCH)
        clinic = load(uow, Clinic, actor.clinic_id, actor, field="clinic_id")
        cid = actor.clinic_id
        records = ClinicRecords(
            time_zone=clinic.time_zone,
            patients=uow.list_by(Patient, cid),
            episodes=uow.list_by(Episode, cid),
            sessions=uow.list_by(Session, cid),
            sites=uow.list_by(NeedlingSite, cid),
            measurements=uow.list_by(Measurement, cid),
            adverse_events=uow.list_by(AdverseEvent, cid),
            medication=uow.list_by(MedicationUse, cid),
        )
        release = deidentify(records, k=cmd.k, dates=cmd.dates, rng=source)
        audit(uow, actor, cid, AuditAction.RESEARCH_EXPORTED, clinic)
        uow.commit()
    return release
