"""`needlepoint outbox`: run the outbox worker (send queued e-mails, queue reminders) in
the foreground; and the wiring that starts it beside the server (`serve`, `demo`)."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console

from needlepoint.adapters.mail import SmtpServer
from needlepoint.config import Settings
from needlepoint.outbox import OutboxWorker

console = Console()


def worker_for(settings: Settings, engine: sa.Engine) -> OutboxWorker | None:
    """The outbox worker for these settings, or None without an SMTP server."""
    if not settings.smtp_url:
        return None
    return OutboxWorker(
        engine,
        SmtpServer.from_url(settings.smtp_url),
        sender=settings.mail_from,
        base_url=settings.public_url,
    )


def outbox_command(
    db: Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file path")] = None,
    once: Annotated[bool, typer.Option(help="Send what is due once, then stop")] = False,
    poll: Annotated[float, typer.Option(min=0.2, help="Seconds between passes")] = 2.0,
) -> None:
    """Send the e-mails waiting in the outbox through NEEDLEPOINT_SMTP_URL, and queue
    the reminders that are due (links at NEEDLEPOINT_PUBLIC_URL)."""
    from needlepoint.bootstrap import database_url, open_database

    settings = Settings()
    url = database_url(db) if db else settings.resolved_database_url()
    worker = worker_for(settings, open_database(url))
    if worker is None:
        console.print("[red]set NEEDLEPOINT_SMTP_URL[/] (e.g. smtp+starttls://user:pass@host:587)")
        raise typer.Exit(2)
    if once:
        done = worker.run_once()
        console.print(
            f"sent {done.sent}, failed {done.failed} (will retry), reminders queued "
            f"{done.reminders}"
        )
        return
    console.print("outbox worker running; Ctrl+C stops it (unsent messages wait safely)")
    try:
        worker.run_forever(poll)
    except KeyboardInterrupt:
        worker.stop()


DEMO_PATIENT_EMAIL = "nora.example@patient.example"


def demo_patient(engine: sa.Engine, clinician_user_id: object, clinic_id: object) -> str:
    """A synthetic patient with an e-mail address and an open neck-pain episode, for the
    demo's questionnaire from home; returns how the demo names her."""
    from datetime import UTC, datetime, timedelta
    from uuid import UUID

    from needlepoint.actions import consent, episodes, patients, screening
    from needlepoint.actions.context import Actor
    from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
    from needlepoint.domain.commands import (
        OpenEpisode,
        PlanItemIn,
        RecordConsent,
        RecordScreening,
        RegisterPatient,
    )
    from needlepoint.domain.enums import ConsentMethod, Modality, Sex
    from needlepoint.domain.screening import questionnaire

    actor = Actor(UUID(str(clinician_user_id)), UUID(str(clinic_id)), source="cli")
    today = datetime.now(UTC).date()
    p = patients.register_patient(
        SqlUnitOfWork(engine),
        actor,
        RegisterPatient(
            mrn="DEMO-Q-1",
            given_name="Nora",
            family_name="Example",
            birth_date=today.replace(year=today.year - 41),
            sex=Sex.FEMALE,
            email=DEMO_PATIENT_EMAIL,
        ),
    )
    # Screened (all clear) and consented a week ago, as every demo patient under way is.
    before = datetime.now(UTC) - timedelta(days=7, hours=1)
    screening.record_screening(
        SqlUnitOfWork(engine),
        actor,
        RecordScreening(
            patient_id=p.id,
            answers={q.id: False for q in questionnaire().questions},
            screened_at=before,
        ),
    )
    consent.record_consent(
        SqlUnitOfWork(engine),
        actor,
        RecordConsent(
            patient_id=p.id,
            template_id="dry_needling",
            template_version="1.0",
            signer_name="Nora Example",
            method=ConsentMethod.TYPED_NAME,
            signed_at=before,
            copy_given=True,
        ),
    )
    episodes.open_episode(
        SqlUnitOfWork(engine),
        actor,
        OpenEpisode(
            patient_id=p.id,
            condition="neck_pain",
            onset_date=today - timedelta(days=30),
            opened_on=today - timedelta(days=7),
            goals="Turn the head to reverse the car without pain",
            plan=[PlanItemIn(modality=Modality.EXERCISE, description="Deep neck flexor training")],
        ),
    )
    return "Example, Nora (chart number DEMO-Q-1)"
