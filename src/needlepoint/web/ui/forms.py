"""What every page of the web app shares: the templates, the signed-in check, the CSRF
field of POST forms, and turning domain and validation errors into messages per field."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from needlepoint.domain import clinic_time
from needlepoint.domain.enums import DrugClass
from needlepoint.domain.errors import DomainError, NotFound, PermissionDenied
from needlepoint.domain.home_reports import DRUG_CLASS_LABELS
from needlepoint.web.context import RequestContext
from needlepoint.web.pages import _web_context

T = TypeVar("T")


@pass_context
def csrf_field(context: Context) -> Markup:
    """The hidden CSRF field of a POST form: the signed-in session's synchroniser token,
    checked by `checked_form` when the form comes back."""
    return Markup('<input type="hidden" name="csrf" value="{}">').format(
        context.get("csrf_token", "")
    )


templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("needlepoint.web", "templates"),
        autoescape=select_autoescape(),
        auto_reload=False,  # templates change only with a release: no stat() per page
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.globals["csrf_field"] = csrf_field


PHRASES = {
    # Adverse events, as Brady et al. 2014 and Boyce et al. 2020 name them (REFERENCE §2):
    # the stored ids alone ("pain during") leave out what it was during.
    "pain_during": "pain during needling",
    "pain_after": "pain after needling",
    "worse_symptoms": "worse symptoms",
}
"""Stored ids whose underscores-to-spaces reading is not yet a clinical phrase."""


def label(value: object) -> str:
    """An enum value or id as words: `tendon_fenestration` → `tendon fenestration`,
    `pain_during` → "pain during needling"."""
    text = str(getattr(value, "value", value))
    return PHRASES.get(text, text.replace("_", " "))


def drug_class_words(value: object) -> str:
    """An analgesic class as the clinician's record names it (`nsaid` → "NSAID (…)")."""
    try:
        return DRUG_CLASS_LABELS[DrugClass(str(getattr(value, "value", value)))]
    except ValueError:
        return label(value)


templates.env.filters["words"] = label
templates.env.filters["drug_class"] = drug_class_words


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the signed-in app."""
    context.setdefault("user_name", getattr(request.state, "user_name", None))
    context.setdefault("clinic_name", getattr(request.state, "clinic_name", None))
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    context.setdefault("errors", {})
    context.setdefault("clinic_tz", getattr(request.state, "clinic_time_zone", None))
    return templates.TemplateResponse(request, name, context, status_code=status)


def signed_in(request: Request) -> RequestContext | None:
    """The request's context when a user is signed in to the web app."""
    return _web_context(request)


def to_login() -> Response:
    return RedirectResponse("/login", status_code=303)


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def refusal_page(request: Request, err: DomainError) -> Response:
    """A read that failed: no such record in the clinic, or not allowed."""
    status = 404 if isinstance(err, NotFound) else 403 if isinstance(err, PermissionDenied) else 400
    message = "No such record in your clinic." if status == 404 else err.detail
    return render(request, "error.html", status, message=message)


Errors = dict[str, list[str]]


UNIT_SUFFIXES = {"mm": "mm", "cm": "cm", "deg": "°", "kg": "kg", "minutes": "minutes"}
BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def field_label(name: str) -> str:
    """A field's name as a form labels it: `depth_mm` → "Depth (mm)"."""
    words = name.split("_")
    unit = UNIT_SUFFIXES.get(words[-1]) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    text = " ".join(words).capitalize() or "This field"
    return f"{text} ({unit})" if unit else text


def plain_error(error: ErrorDetails) -> str:
    """A validation error in a form's words, naming the field and saying what to do
    ("Depth (mm) must be a number"), not the validator's own sentence ("Input should be
    a valid number", "Input should be 'left', 'right' or 'midline'"). Messages of our own
    validators are already in words: kept."""
    name = next((p for p in reversed(error["loc"]) if isinstance(p, str)), "")
    label = field_label(name)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return f"Please fill in {label[0].lower() + label[1:]}"
    if kind in ("float_parsing", "float_type", "decimal_parsing", "decimal_type"):
        return f"{label} must be a number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{label} must be a whole number"
    if kind in ("literal_error", "enum"):
        choices = str(ctx.get("expected", "")).replace("'", "").replace("_", " ")
        return (
            f"Choose the {label.lower()}: {choices}" if choices else f"Choose the {label.lower()}"
        )
    if kind in BOUNDS and BOUNDS[kind][1] in ctx:
        words, key = BOUNDS[kind]
        return f"{label} must be {words} {ctx[key]}"
    return str(error["msg"]).removeprefix("Value error, ")


def field_errors(err: DomainError | ValidationError, prefix: str = "") -> Errors:
    """Messages by the field they name (`sites.2.depth_mm`); "" holds the others."""
    out: Errors = {}
    if isinstance(err, ValidationError):
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            out.setdefault(prefix + loc if loc else "", []).append(plain_error(e))
        return out
    if isinstance(err, PermissionDenied):  # about who asks, not about a field's value
        out.setdefault("", []).append(err.detail)
        return out
    if err.errors:
        for item in err.errors:
            field = str(item.get("field") or "")
            out.setdefault(prefix + field if field else "", []).append(str(item.get("message", "")))
    else:
        out.setdefault(prefix + err.field if err.field else "", []).append(err.detail)
    return out


async def submitted_form(request: Request) -> dict[str, Any]:
    """The submitted form: one string per field, a list for repeated fields (reading the
    body is the only part of a POST done on the event loop)."""
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


def checked_form(request: Request, submitted: dict[str, Any]) -> dict[str, Any]:
    """The form without its CSRF field, once that field is checked against the signed-in
    session's token (403 when missing or wrong). Call after `signed_in`."""
    out = dict(submitted)
    expected = str(getattr(request.state, "csrf_token", "") or "")
    token = out.pop("csrf", "")
    if not expected or not isinstance(token, str):
        raise HTTPException(403, "this form did not come from your session: reload the page")
    if not secrets.compare_digest(token, expected):
        raise HTTPException(403, "this form did not come from your session: reload the page")
    return out


async def posted_form(request: Request, handler: Callable[..., Response], *args: Any) -> Response:
    """Handle a POST form of the app: the body read on the event loop; then, in a worker
    thread (database work never blocks the loop), the signed-in user (else the sign-in
    page), the CSRF check and `handler(request, ctx, *args, form)`."""
    submitted = await submitted_form(request)

    def work() -> Response:
        ctx = signed_in(request)
        if ctx is None:
            return to_login()
        try:
            return handler(request, ctx, *args, checked_form(request, submitted))
        except DomainError as err:  # e.g. refused again while re-showing the form
            return refusal_page(request, err)

    return await in_thread(work)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop."""
    return await run_in_threadpool(fn, *args)


def text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key, "")
    return (value[-1] if isinstance(value, list) else str(value)).strip()


def many(form: Mapping[str, Any], key: str) -> list[str]:
    value = form.get(key, [])
    return [v for v in (value if isinstance(value, list) else [value]) if v]


def optional(value: str) -> str | None:
    return value or None


# --- the clinic's local time (issue 15): forms show and accept it, storage stays UTC ------


def clinic_zone(where: RequestContext | Request | str | None) -> ZoneInfo:
    """The clinic's zone: from the request's context (`ctx.time_zone`), the signed-in
    request (`request.state`), or a zone name; UTC when none is known."""
    if isinstance(where, RequestContext):
        name: object = where.time_zone
    elif isinstance(where, Request):
        name = getattr(where.state, "clinic_time_zone", None)
    else:
        name = where
    return clinic_time.zone(name if isinstance(name, str) else clinic_time.DEFAULT_ZONE)


def now() -> datetime:
    """The time now, to the microsecond as stored records are: a time cut to whole
    seconds would read a record made earlier in the same second as not made yet (the
    chart just after a screening, the review of a re-screening)."""
    return datetime.now(UTC)


def local_input(moment: datetime, tz: ZoneInfo) -> str:
    """A stored time as a `datetime-local` input shows it, in the clinic's zone."""
    return clinic_time.input_value(moment, tz)


def parse_local(value: str, tz: ZoneInfo) -> datetime | str:
    """A `datetime-local` value as an aware UTC time (read in the clinic's zone); the raw
    text when it does not parse, so the command's validation names the field."""
    parsed = clinic_time.parse_input(value, tz)
    return value if parsed is None else parsed


def today(tz: ZoneInfo) -> date:
    """The clinic's date now (an evening in Los Angeles is still today there)."""
    return clinic_time.local_date(now(), tz)


@pass_context
def _when(context: Context, moment: datetime | None) -> str:
    """`2026-11-27 21:30 PST`: a stored time in the page's clinic zone, with its zone."""
    if moment is None:
        return ""
    return clinic_time.when(moment, clinic_zone(context.get("clinic_tz")))


@pass_context
def _clock(context: Context, moment: datetime | None) -> str:
    """`21:30 PST`."""
    if moment is None:
        return ""
    return clinic_time.clock(moment, clinic_zone(context.get("clinic_tz")))


@pass_context
def _local_date(context: Context, moment: datetime | date | None) -> str:
    """`2026-11-27`, the clinic's date of a stored time (a calendar date as it is)."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.isoformat()
    return clinic_time.local_date(moment, clinic_zone(context.get("clinic_tz"))).isoformat()


templates.env.filters["when"] = _when
templates.env.filters["clock"] = _clock
templates.env.filters["local_date"] = _local_date
