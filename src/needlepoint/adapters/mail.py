"""E-mail over SMTP (stdlib `smtplib`), and a real local SMTP server that catches mail
for the demo and the tests (`aiosmtpd`).

The SMTP server is named by one URL (`NEEDLEPOINT_SMTP_URL`):

* `smtp://host:port` — plain SMTP (a relay on the same machine or network);
* `smtp+starttls://user:password@host:587` — STARTTLS, then log in;
* `smtps://user:password@host:465` — TLS from the start, then log in.

Each message carries a Message-ID made from its outbox id (`message_id`): the same
message sent twice (a worker that died after the server accepted it and before the
outbox recorded it, see `actions.outbox`) is recognisably the same message."""

from __future__ import annotations

import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

SCHEMES = ("smtp", "smtps", "smtp+starttls")
TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to send: parsed from the SMTP URL."""

    host: str
    port: int
    scheme: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError(f"an SMTP URL is {' | '.join(SCHEMES)}://[user:password@]host[:port]")
        default_port = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            scheme=parts.scheme,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def message_id(outbox_id: UUID, domain: str = "needlepoint.invalid") -> str:
    """The Message-ID of an outbox message: the same on every attempt."""
    return f"<{outbox_id}@{domain}>"


def compose(sender: str, recipient: str, subject: str, body: str, outbox_id: UUID) -> EmailMessage:
    """A plain-text e-mail."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = message_id(outbox_id)
    msg.set_content(body)
    return msg


def send(server: SmtpServer, msg: EmailMessage) -> None:
    """Hand one message to the SMTP server; raises `smtplib.SMTPException` or `OSError`
    when it is not accepted."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if server.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            server.host, server.port, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
    with client:
        if server.scheme == "smtp+starttls":
            client.starttls(context=context)
        if server.username:
            client.login(server.username, server.password or "")
        client.send_message(msg)


# -- a local SMTP server that keeps what it receives (demo, tests) ------------------------


@dataclass(frozen=True, slots=True)
class CaughtMail:
    """One message the local server received."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    raw: bytes


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.catcher.keep(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
        return "250 Message accepted for delivery"


class MailCatcher:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, in a thread of its own) that keeps every
    message: in memory, and as `.eml` files in `folder` when given (the demo's page reads
    them, from another process)."""

    def __init__(self, port: int = 0, folder: Path | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.folder = folder
        self.messages: list[CaughtMail] = []
        self._lock = threading.Lock()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=port or _free_port()
        )
        if folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def keep(self, sender: str, recipients: tuple[str, ...], raw: bytes) -> None:
        mail = parse(raw, sender, recipients)
        with self._lock:
            self.messages.append(mail)
            n = len(self.messages)
        if self.folder is not None:
            path = self.folder / f"{n:06d}.eml"
            path.write_bytes(raw)
            path.chmod(0o600)

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse(raw: bytes, sender: str = "", recipients: tuple[str, ...] = ()) -> CaughtMail:
    """A received message's parts."""
    msg = BytesParser(policy=default_policy).parsebytes(raw)
    body_part = msg.get_body(("plain",))
    body = body_part.get_content() if body_part is not None else ""
    return CaughtMail(
        sender=sender or str(msg["From"] or ""),
        recipients=recipients or (str(msg["To"] or ""),),
        subject=str(msg["Subject"] or ""),
        body=str(body),
        message_id=str(msg["Message-ID"] or ""),
        raw=raw,
    )


def read_folder(folder: Path) -> list[CaughtMail]:
    """The messages a catcher kept in `folder`, newest first."""
    if not folder.is_dir():
        return []
    return [parse(p.read_bytes()) for p in sorted(folder.glob("*.eml"), reverse=True)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
