"""The `needlepoint` command: database upgrades, clinics and tokens, the synthetic
clinic generator, the demo and the server."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from needlepoint.adapters.checkpoints import Checkpoint
    from needlepoint.queries.audit import ChainReport

from needlepoint.commands.outbox import outbox_command
from needlepoint.config import Settings
from needlepoint.domain.errors import DomainError

app = typer.Typer(
    help="Needlepoint: dry needling clinical system.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite file path (default: NEEDLEPOINT_DATABASE_URL "
        "or the data directory's needlepoint.db).",
    ),
]


def _url(db: str | None) -> str:
    from needlepoint.bootstrap import database_url

    return database_url(db) if db else Settings().resolved_database_url()


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Bring the database to the newest schema (creates it when empty), and put back any
    missing or altered protection of the audit trail (triggers, PostgreSQL policies)."""
    from needlepoint.adapters.db.migrate import current_revision, head_revision, upgrade
    from needlepoint.bootstrap import open_database

    engine = open_database(_url(db), migrate=False)
    for repair in upgrade(engine):
        err.print(f"[bold yellow]put back[/]: {repair}")
    rev = current_revision(engine)
    console.print(f"database at revision [bold]{rev}[/] (head {head_revision()})")


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Show the database's schema revision."""
    from needlepoint.adapters.db.migrate import current_revision, head_revision
    from needlepoint.bootstrap import open_database

    engine = open_database(_url(db), migrate=False)
    console.print(f"{current_revision(engine)} (head {head_revision()})")


@app.command("create-clinic")
def create_clinic(
    name: Annotated[str, typer.Option(help="Clinic name")],
    owner_email: Annotated[str, typer.Option(help="Owner's sign-in email")],
    owner_name: Annotated[str, typer.Option(help="Owner's full name")],
    password: Annotated[
        str | None, typer.Option(help="Owner's password (prompted when omitted)")
    ] = None,
    db: DbOption = None,
) -> None:
    """Register a clinic and its owner; prints an API token for the owner."""
    from needlepoint.actions.clinics import issue_operator_token, register_clinic
    from needlepoint.bootstrap import open_database, unit_of_work
    from needlepoint.domain.commands import RegisterClinic

    if password is None:
        password = typer.prompt("Owner password", hide_input=True, confirmation_prompt=True)
    engine = open_database(_url(db))
    try:
        cmd = RegisterClinic(
            name=name, owner_email=owner_email, owner_name=owner_name, owner_password=password
        )
        owner = register_clinic(unit_of_work(engine), cmd)
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
        return
    except DomainError as exc:
        _fail(f"{exc.field}: {exc.detail}" if exc.field else exc.detail)
        return
    token = issue_operator_token(unit_of_work(engine), owner, "created with the clinic")
    console.print(f"clinic {owner.clinic_id} created; owner {owner.email}")
    console.print(f"API token (shown once): [bold]{token}[/]")


class GenerationProtocol(StrEnum):
    ROUTINE = "routine"
    REGISTRY = "registry"


@app.command("generate")
def generate(
    patients: Annotated[int, typer.Option(min=1, max=1_000_000, help="Number of patients")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same clinic)")] = 1,
    practitioners: Annotated[
        int | None, typer.Option(min=1, max=500, help="Number of practitioners")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Where to write the planted effects (default: beside the database)"),
    ] = None,
    protocol: Annotated[
        GenerationProtocol,
        typer.Option(
            help="routine: one episode a patient, the usual measures; registry: returning "
            "patients and pain thresholds, ROM and more function scores at every session"
        ),
    ] = GenerationProtocol.ROUTINE,
    patient_responses: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Simulate patients answering questionnaires from home: the share who answer "
            "an invitation (0 = none; the issue's example is 0.55)",
        ),
    ] = 0.0,
    reminders: Annotated[
        bool, typer.Option(help="With --patient-responses: e-mail reminders (≈ +26 points)")
    ] = True,
    db: DbOption = None,
) -> None:
    """Generate a synthetic clinic (through the actions) with planted effects."""
    from needlepoint.bootstrap import open_database
    from needlepoint.synthetic.clinic import generate_clinic
    from needlepoint.synthetic.model import PROTOCOLS

    url = _url(db)
    engine = open_database(url)
    truth_path = truth or _truth_path_for(url, seed)
    started = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("patients", total=patients)
        report = generate_clinic(
            engine,
            patients_count=patients,
            seed=seed,
            practitioners_count=practitioners,
            truth_path=truth_path,
            on_patient=lambda: progress.advance(task),
            protocol=PROTOCOLS[protocol.value],
        )
    if patient_responses > 0:
        from needlepoint.synthetic.responses import simulate_responses

        answered = simulate_responses(
            engine,
            report.clinic_id,
            seed=seed,
            until=datetime.now(UTC).date(),
            answer_rate=patient_responses,
            reminders=reminders,
            reminder_lift=min(0.26, 1 - patient_responses),
        )
        console.print(
            f"patients answered {answered.submitted} of {answered.asked} questionnaires "
            f"({answered.reminders} reminders, {answered.episodes} episodes; after discharge "
            f"{answered.follow_ups_submitted} of {answered.follow_ups_asked})"
        )
    elapsed = time.perf_counter() - started
    console.print(
        f"clinic {report.clinic_id}: {report.patients} patients, "
        f"{len(report.truth['episodes'])} episodes, {report.sessions} sessions, "
        f"{report.actions} actions in {elapsed:.1f} s"
    )
    console.print(f"planted effects: {report.truth_path}")


def _truth_path_for(url: str, seed: int) -> Path:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db_path = Path(parsed.database)
        return db_path.with_name(f"{db_path.stem}.truth-seed{seed}.json")
    return Settings().data_dir / f"truth-{parsed.database or 'db'}-seed{seed}.json"


@app.command("demo")
def demo(
    path: Annotated[
        Path | None, typer.Option(help="Folder for the demo database (default: data directory)")
    ] = None,
    patients: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    seed: Annotated[int, typer.Option()] = 42,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve after creating")] = True,
) -> None:
    """Create a demo clinic of synthetic patients whose records end today, print the
    sign-ins (a clinician and the clinic's owner), and serve it (with the "synthetic
    demonstration data" notice on every page)."""
    from needlepoint.actions.clinics import issue_operator_token, register_user
    from needlepoint.actions.context import Actor
    from needlepoint.bootstrap import open_database, unit_of_work
    from needlepoint.domain.catalogue import Region
    from needlepoint.domain.commands import RegisterUser, TrainingCourse
    from needlepoint.domain.enums import Role
    from needlepoint.synthetic.clinic import generate_clinic

    folder = (path or Settings().data_dir / "demo").expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "demo.db"
    for stale in folder.glob("demo.db*"):
        stale.unlink()
    url = f"sqlite:///{db_file}"
    engine = open_database(url)
    email, password = "demo@needlepoint.example", "needlepoint-demo"
    owner_email, owner_password = "owner@needlepoint.example", "needlepoint-owner"
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("generating the demo clinic", total=patients)
        report = generate_clinic(
            engine,
            patients_count=patients,
            seed=seed,
            truth_path=folder / "demo.truth.json",
            on_patient=lambda: progress.advance(task),
            clinic_name="Needlepoint Demo Clinic",
            anchor=datetime.now(UTC).date(),  # the records end today: screenings current
            owner_email=owner_email,
            owner_password=owner_password,
        )
    owner = Actor(report.owner_id, report.clinic_id, source="cli")
    user = register_user(
        unit_of_work(engine),
        owner,
        RegisterUser(
            email=email,
            full_name="Demo Clinician",
            role=Role.CLINICIAN,
            password=password,
            licence_number="PT-DEMO-0001",
            licence_date=date(2018, 6, 1),
            training=[
                TrainingCourse(
                    provider="Synthetic Institute of Dry Needling",
                    course="Dry needling levels 1 and 2",
                    hours_in_person=54,
                    hours_online=12,
                    completed_on=date(2019, 9, 1),
                    exam_passed=True,
                    regions=list(get_args(Region)),
                )
            ],
        ),
    )
    token = issue_operator_token(unit_of_work(engine), user, "demo")
    # Simulated patients answer from home (55 %, reminders +26 points): completion rates
    # and patient-reported scores on the analytics page (`synthetic.responses`).
    from needlepoint.synthetic.responses import simulate_responses

    simulate_responses(engine, report.clinic_id, seed=seed, until=datetime.now(UTC).date())
    # Questionnaires from home: a real SMTP server catches the mail (shown at /demo/mail).
    from needlepoint.adapters.mail import MailCatcher
    from needlepoint.commands.outbox import demo_patient

    for stale in (folder / "mail").glob("*.eml"):
        stale.unlink()
    catcher = MailCatcher(folder=folder / "mail").start()
    nora = demo_patient(engine, user.id, report.clinic_id)
    # One process: a demo has one user, and the processes' settings travel by environment.
    settings = Settings(
        database_url=url,
        data_dir=folder,
        host=host,
        port=port,
        workers=1,
        demo=True,
        smtp_url=catcher.url,
        public_url=f"http://{host}:{port}",
    )
    console.print(
        f"\n[bold]Needlepoint demo[/] — {report.patients} synthetic patients in {db_file}"
    )
    console.print(f"  open      http://{host}:{port}/")
    console.print(f"  sign in   {email} / {password}  (a clinician)")
    console.print(f"  owner     {owner_email} / {owner_password}  (the clinic's owner)")
    console.print(f"  API token {token}  (API docs: http://{host}:{port}/api/docs)")
    console.print(
        f"  patient   {nora}: open her episode, 'Questionnaires from home', send; the mail "
        f"arrives at http://{host}:{port}/demo/mail ({catcher.url})\n"
    )
    if serve_:
        _serve(settings)


@app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Serving processes (default: one per core)",
        ),
    ] = None,
) -> None:
    """Serve an existing database (migrating it to head first)."""
    options: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    if db:
        options["database_url"] = _url(db)
    _serve(Settings(**options))


def _serve(settings: Settings) -> None:
    """Run the server: one process, or (`workers` > 1) uvicorn's supervisor with that
    many processes, each building its app from the environment."""
    import uvicorn

    from needlepoint.bootstrap import build_app, open_database
    from needlepoint.commands.outbox import worker_for

    if not settings.public_url:
        console.print(
            "NEEDLEPOINT_PUBLIC_URL is not set: links e-mailed to patients will start "
            f"with {settings.resolved_public_url()}"
        )
    workers = settings.resolved_workers()
    if workers == 1:
        web = build_app(settings)
        mailer = worker_for(settings, web.state.engine)
        if mailer is not None:  # sends what the actions queued; nothing sent from requests
            mailer.start()
        uvicorn.run(web, **settings.server_options())
        return
    url = settings.resolved_database_url()
    open_database(url).dispose()  # migrate once, before any worker starts
    mailer = worker_for(settings, open_database(url, migrate=False))
    if mailer is not None:  # one outbox worker, in the supervisor: state is in the database
        mailer.start()
    # The workers read their settings from the environment (they are new processes).
    os.environ["NEEDLEPOINT_DATABASE_URL"] = url
    os.environ["NEEDLEPOINT_SECRET_KEY"] = settings.resolved_secret_key()
    os.environ["NEEDLEPOINT_SEALING_KEY"] = settings.resolved_sealing_key_text()
    for name in (
        "pool_size",
        "pool_overflow",
        "pool_timeout",
        "lock_timeout",
        "max_in_flight",
        "threads",
        "max_body_bytes",
        "rate_limit",
        "rate_burst",
    ):
        if getattr(settings, name) is None:
            continue
        os.environ[f"NEEDLEPOINT_{name.upper()}"] = str(getattr(settings, name))
    os.environ["NEEDLEPOINT_SECURE_COOKIES"] = str(settings.secure_cookies).lower()
    os.environ["NEEDLEPOINT_ACCESS_LOG"] = str(settings.access_log).lower()
    os.environ["NEEDLEPOINT_WORKERS"] = str(workers)  # each knows it is one of several
    os.environ["NEEDLEPOINT_DEMO"] = str(settings.demo).lower()
    os.environ["NEEDLEPOINT_PUBLIC_URL"] = settings.resolved_public_url()
    uvicorn.run(
        "needlepoint.bootstrap:app_from_environment",
        factory=True,
        workers=workers,
        **settings.server_options(),
    )


@app.command("openapi")
def openapi() -> None:
    """Print the API's OpenAPI document."""
    from needlepoint.bootstrap import open_database
    from needlepoint.web.app import create_app

    application = create_app(open_database("sqlite://", migrate=False), secret_key="x" * 32)
    console.print_json(json.dumps(application.openapi()))


# --- batch scoring for researchers ------------------------------------------------------


class OutputFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@app.command("score")
def score(
    instrument: Annotated[
        str, typer.Argument(help="nprs, vas, ndi, odi, quickdash, lefs, psfs (see docs)")
    ],
    file: Annotated[Path, typer.Argument(help="CSV: optional id column, item1 … itemN")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="csv or json")] = OutputFormat.CSV,
) -> None:
    """Score a CSV of item answers: writes id, score, error per row to standard output.

    Exit status 0 when every row scored, 1 when any row has an error, 2 for unusable input."""
    from needlepoint.scoring_batch import UnusableInput, run

    try:
        status = run(instrument, file, fmt.value, sys.stdout)
    except UnusableInput as exc:
        _fail(str(exc))
    raise typer.Exit(status)


# -- audit trail ------------------------------------------------------------------------------
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        envvar="NEEDLEPOINT_AUDIT_KEY",
        help="The checkpoint signing key (private; keep it off the web server)",
    ),
]
LogOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints",
        envvar="NEEDLEPOINT_AUDIT_CHECKPOINTS",
        help="The checkpoint log (append-only, outside the database)",
    ),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        envvar="NEEDLEPOINT_AUDIT_PUBLIC_KEY",
        help="The checkpoints' public key (`<key>.pub`); the private key works too",
    ),
]


@audit_app.command("keygen")
def audit_keygen(
    key: Annotated[Path, typer.Argument(help="Where to write the private key (0600)")],
) -> None:
    """Make the Ed25519 key that signs audit checkpoints: the private key at KEY, the
    public key at KEY.pub. Keep the private key with the operator, never on the web
    server."""
    from needlepoint.adapters.checkpoints import CheckpointError, generate_key

    try:
        private, public = generate_key(key)
    except CheckpointError as exc:
        _fail(str(exc))
        return
    console.print(f"checkpoint key written: {private} (private, 0600) and {public} (public)")


def _checked_trail(db: str | None, clinic: str | None, anchor: Checkpoint | None) -> ChainReport:
    from uuid import UUID

    import sqlalchemy as sa

    from needlepoint.bootstrap import open_database
    from needlepoint.queries.audit import verify_chains

    try:
        clinic_id = UUID(clinic) if clinic else None
    except ValueError:
        _fail(f"--clinic {clinic!r} is not a clinic id")
        raise
    engine = open_database(_url(db), migrate=False)
    with engine.connect() as conn:
        if clinic_id is None and engine.dialect.name == "postgresql":
            hidden = conn.execute(sa.text("SELECT row_security_active('audit_events')"))
            if hidden.scalar_one():
                _fail(
                    "this role sees audit events only under row-level security: connect as "
                    "the owner (maintenance) role, or name one clinic with --clinic"
                )
        return verify_chains(conn, clinic_id, checkpoint=anchor)


def _missing_protections(db: str | None) -> list[str]:
    """The audit trail's protective triggers, policies and privileges that are missing
    or altered (printed as UNPROTECTED)."""
    from needlepoint.adapters.db import protections
    from needlepoint.bootstrap import open_database

    engine = open_database(_url(db), migrate=False)
    with engine.connect() as conn:
        missing = protections.inspect(conn)
    for problem in missing:
        console.print(f"[bold red]UNPROTECTED[/] {problem} (`needlepoint db upgrade` puts it back)")
    return missing


def _print_breaks(report: ChainReport) -> None:
    for b in report.breaks:
        event = f"event {b.event_id} (seq {b.seq})" if b.event_id else f"seq {b.seq}"
        console.print(f"[bold red]BROKEN[/] clinic {b.clinic_id}: {event}: {b.reason}")
    for r in report.records:
        console.print(
            f"[bold red]ALTERED[/] clinic {r.clinic_id}: record {r.record_id}: {r.reason}"
        )


@audit_app.command("verify")
def audit_verify(
    db: DbOption = None,
    clinic: Annotated[str | None, typer.Option(help="Only this clinic's chain (its id)")] = None,
    checkpoints: LogOption = None,
    public_key: PublicKeyOption = None,
) -> None:
    """Recompute the audit trail's hash chains and check them against the newest signed
    checkpoint, and signed notes against the digests recorded when they were signed:
    exit 1 naming the first altered, inserted or deleted event of each broken chain, a
    truncated, rewritten or deleted chain, and each changed signed note; otherwise print
    OK with the counts."""
    from needlepoint.adapters.checkpoints import CheckpointError, latest_checkpoint

    anchor = None
    if checkpoints is not None:
        if public_key is None:
            _fail("--checkpoints needs --public-key (the checkpoints' key) to trust them")
            return
        try:
            anchor = latest_checkpoint(checkpoints, _public_key(public_key))
        except CheckpointError as exc:
            console.print(f"[bold red]BROKEN[/] {exc}")
            raise typer.Exit(1) from exc
        if anchor is None:
            _fail(f"the checkpoint log {checkpoints} holds no checkpoint yet")
            return
    report = _checked_trail(db, clinic, anchor)
    _print_breaks(report)
    missing = _missing_protections(db)
    if not report.ok:
        console.print(
            f"{len(report.breaks)} of {report.clinics} chains broken, "
            f"{len(report.records)} signed records altered; {report.events} events read"
        )
        raise typer.Exit(1)
    if missing:
        console.print(
            f"{len(missing)} protections of the audit trail missing or altered; "
            f"{report.events} events in {report.clinics} chains verified"
        )
        raise typer.Exit(1)
    console.print(
        f"OK: {report.events} events in {report.clinics} chains verified; "
        f"{report.notes_checked} signed notes match their signatures; "
        "the audit trail's protections are in place"
    )
    if report.notes_unsealed:
        console.print(
            f"  {report.notes_unsealed} notes were signed before signatures covered their "
            "sites and measurements: their note text is checked, the rest cannot be"
        )
    if anchor is not None:
        console.print(
            f"  anchored: checkpoint {anchor.line} of {anchor.written_at:%Y-%m-%d %H:%M} UTC "
            f"matches; {report.unanchored_events} events written since"
        )
    else:
        console.print(
            "  [yellow]not anchored[/]: without --checkpoints a chain cut short or "
            "recomputed from scratch by someone with full database rights cannot be seen"
        )
    for cid, (seq, head) in report.heads.items():
        console.print(f"  clinic {cid}: head seq {seq} hash {head}")


def _public_key(path: Path) -> Ed25519PublicKey:
    from needlepoint.adapters.checkpoints import CheckpointError, load_public_key

    try:
        return load_public_key(path)
    except CheckpointError as exc:
        _fail(str(exc))
        raise


@audit_app.command("checkpoint")
def audit_checkpoint(
    db: DbOption = None,
    key: KeyOption = None,
    checkpoints: LogOption = None,
) -> None:
    """Verify the whole audit trail (against the previous checkpoint too), then append a
    signed checkpoint of every clinic's chain head to the checkpoint log. Run it as the
    owner role, e.g. hourly, from an account the web server cannot use."""
    from needlepoint.adapters.checkpoints import (
        CheckpointError,
        append_checkpoint,
        latest_checkpoint,
        load_private_key,
    )

    if key is None or checkpoints is None:
        _fail("give --key (the signing key) and --checkpoints (the checkpoint log)")
        return
    try:
        private = load_private_key(key)
        previous = latest_checkpoint(checkpoints, private.public_key())
    except CheckpointError as exc:
        _fail(str(exc))
        return
    report = _checked_trail(db, None, previous)
    if not report.ok:
        _print_breaks(report)
        _fail("the audit trail does not verify: no checkpoint written")
        return
    written = append_checkpoint(checkpoints, private, report.heads, events=report.events)
    console.print(
        f"checkpoint {written.line} written to {checkpoints}: {len(written.chains)} chains, "
        f"{written.events} events, sha256 {written.digest}"
    )


# -- backup and restore -----------------------------------------------------------------------
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Encrypt/decrypt with the passphrase in this file (first line) instead of the "
        "backup key",
    ),
]
PassphraseOption = Annotated[
    bool,
    typer.Option("--passphrase", help="Ask for a passphrase instead of using the backup key"),
]


def _backup_key(passphrase: bool, passphrase_file: Path | None, *, confirm: bool) -> Any:
    """The passphrase asked for or read from a file, else the configured backup key
    (NEEDLEPOINT_BACKUP_KEY, or the data directory's backup.key made on first use)."""
    from needlepoint.adapters.db.backup import BackupError, BackupKey
    from needlepoint.adapters.sealing import SealingError

    try:
        if passphrase_file is not None:
            try:
                lines = passphrase_file.read_text().splitlines()
            except OSError as exc:
                _fail(f"--passphrase-file: {exc.strerror}: {passphrase_file}")
            return BackupKey(passphrase=lines[0] if lines else "")
        if passphrase:
            return BackupKey(
                passphrase=typer.prompt(
                    "Backup passphrase", hide_input=True, confirmation_prompt=confirm
                )
            )
        return BackupKey(key=Settings().resolved_backup_key())
    except (BackupError, SealingError) as exc:
        _fail(f"backup key: {exc}")
        raise  # unreachable: _fail exits


@app.command("backup")
def backup_cmd(
    out: Annotated[Path, typer.Argument(help="The backup file to write")],
    db: DbOption = None,
    passphrase: PassphraseOption = False,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Write an encrypted, consistent backup of the database while it keeps working
    (SQLite: the online backup API; PostgreSQL: pg_dump --format=custom), readable by
    its owner only. Keep the backup key (or passphrase) somewhere other than the backups."""
    from needlepoint.adapters.db.backup import BackupError, backup
    from needlepoint.bootstrap import configure_sealing

    configure_sealing()
    key = _backup_key(passphrase, passphrase_file, confirm=True)
    try:
        result = backup(_url(db), out, key)
    except BackupError as exc:
        _fail(str(exc))
        return
    console.print(
        f"backup written: {result.path} ({result.bytes} bytes, sha256 {result.sha256}), "
        f"encrypted with {result.encrypted_with}"
    )


def _verify_copy(engine: Any) -> list[str]:
    """The audit chains of a staged copy, as problems (empty when every chain verifies)."""
    from needlepoint.queries.audit import verify_chains

    with engine.connect() as conn:
        report = verify_chains(conn)
    return [f"clinic {b.clinic_id}, seq {b.seq}: {b.reason}" for b in report.breaks]


@app.command("restore")
def restore_cmd(
    source: Annotated[Path, typer.Argument(help="A file written by `needlepoint backup`")],
    db: DbOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    passphrase: PassphraseOption = False,
    passphrase_file: PassphraseFileOption = None,
    unencrypted: Annotated[
        bool,
        typer.Option(
            "--unencrypted",
            help="Accept an unencrypted backup from an older version (not authenticated: "
            "only if you know where it has been)",
        ),
    ] = False,
) -> None:
    """Replace the database's whole content with a backup. Nothing is replaced until the
    backup has been authenticated, recognised as Needlepoint's and its audit trail
    verified in a staged copy; then it is swapped in at once. Stop the server first."""
    from needlepoint.adapters.db.backup import BackupError, read_header, restore
    from needlepoint.bootstrap import configure_sealing, open_database
    from needlepoint.queries.audit import verify_chains

    configure_sealing()
    url = _url(db)
    if not source.is_file():
        _fail(f"no backup at {source}")
    try:
        header = read_header(source)
    except (BackupError, OSError) as exc:
        _fail(f"{source}: {exc}")
        return
    key = None
    if header is not None:
        key = _backup_key(passphrase, passphrase_file, confirm=False)
    if not yes:
        typer.confirm(f"Replace everything in {url} with {source}?", abort=True)
    try:
        result = restore(url, source, key, _verify_copy, unencrypted=unencrypted)
    except BackupError as exc:
        _fail(str(exc))
        return
    engine = open_database(url, migrate=False)
    with engine.connect() as conn:
        report = verify_chains(conn)
    console.print(f"restored {source} into {engine.url.render_as_string(hide_password=True)}")
    for repair in result.repaired:
        err.print(f"[bold yellow]put back[/]: {repair} (it was missing from the backup)")
    if not report.ok:
        err.print(f"[bold red]the restored audit trail does not verify[/]: {report.breaks[0]}")
        raise typer.Exit(1)
    console.print(f"audit trail OK: {report.events} events in {report.clinics} chains")


from needlepoint.commands.research_export import export_research  # noqa: E402

app.command("export-research")(export_research)

from needlepoint.commands.importing import import_records  # noqa: E402

app.command("import")(import_records)

app.command("outbox")(outbox_command)


if __name__ == "__main__":
    app()
