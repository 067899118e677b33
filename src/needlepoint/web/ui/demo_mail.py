"""The demo's mailbox (`needlepoint demo` only): the e-mails the demo's local SMTP server
caught, newest first, so a newcomer can open a questionnaire link as the patient would.
Not served outside a demo."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from needlepoint.adapters.mail import read_folder
from needlepoint.domain.errors import DomainError
from needlepoint.queries.patients import patient_emails
from needlepoint.web.ui.forms import refusal_page, render, signed_in, to_login

router = APIRouter(include_in_schema=False)
_URL = re.compile(r"https?://[^\s<>\"]+")


def _linked(body: str) -> Markup:
    """The body as HTML with its addresses clickable."""
    out, last = [], 0
    for m in _URL.finditer(body):
        out.append(escape(body[last : m.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(m.group(0)))
        last = m.end()
    out.append(escape(body[last:]))
    return Markup("").join(out)


@router.get("/demo/mail", response_model=None)
def demo_mail(request: Request) -> Response:
    folder = getattr(request.app.state, "demo_mail_dir", None)
    if not getattr(request.app.state, "demo", False) or not isinstance(folder, Path):
        from needlepoint.domain.errors import NotFound

        return refusal_page(request, NotFound("only the demo has a mailbox"))
    ctx = signed_in(request)
    if ctx is None:
        return to_login()
    try:
        with ctx.reader() as r:
            own = patient_emails(r)
    except DomainError as err:  # a role that may not see patients' details
        return refusal_page(request, err)
    # Only the mail sent to this clinic's own patients: a demo may hold other clinics,
    # and each link in a mail opens a patient's questionnaires.
    mails = [
        (m, _linked(m.body))
        for m in read_folder(folder)
        if any(to.strip().lower() in own for to in m.recipients)
    ]
    return render(request, "demo_mail.html", mails=mails)
