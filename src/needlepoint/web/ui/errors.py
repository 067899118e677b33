"""Error pages in the app's layout (404, 405, 500 and the rest), for a browser asking for
a page outside the API (`web.problems.error_page` calls `error_page`; the API keeps its
problem documents), and the favicon at the address browsers ask for by default.

No database work: error handlers run on the event loop, so the page does not look up who
is signed in (it shows the layout without the main navigation, and links back)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from needlepoint.web.ui.forms import render

router = APIRouter(include_in_schema=False)

HEADINGS = {
    400: ("Bad request", "The address or the form was not understood."),
    401: ("Please sign in", "Sign in to see this page."),
    403: ("Not allowed", "Your role does not allow this."),
    404: (
        "Page not found",
        "There is no page at this address. It may have moved, or the link may be mistyped.",
    ),
    405: (
        "Not available this way",
        "This page cannot be used like this (the wrong kind of request).",
    ),
    413: ("Too large", "What was sent is larger than the clinic's records accept."),
    422: ("Check what was entered", "A value is outside what this page accepts:"),
    429: ("Too many requests", "Too many requests in a short time: wait a moment and try again."),
    500: (
        "Something went wrong",
        "Something went wrong on our side; nothing was saved. The error was logged.",
    ),
    503: ("Busy", "The server is busy: try again in a moment."),
}


def error_page(
    request: Request,
    status: int,
    headers: dict[str, str] | None = None,
    details: list[str] | None = None,
) -> Response:
    """The page for an HTTP error `status`, with the app's layout; `details` in words
    (e.g. which value of the address was refused, and why)."""
    heading, message = HEADINGS.get(status, ("Not available", "This page is not available."))
    page = render(
        request,
        "error.html",
        status,
        message=message,
        heading=heading,
        code=status,
        details=details or [],
        request_id=getattr(request.state, "request_id", None),
    )
    page.headers.update(headers or {})
    return page


@router.get("/favicon.ico", response_model=None)
def favicon() -> Response:
    """Browsers ask for /favicon.ico unless a page names its icon: the SVG one."""
    return RedirectResponse("/static/favicon.svg", status_code=308)
