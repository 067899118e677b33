"""The analytics page in a real browser: the shell comes at once with a visible
"Computing…" state, the figures arrive by themselves (htmx, no reload), the CSV link
downloads for the signed-in user; the progress page and an error page fit a phone."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from tests.e2e.conftest import shot
from tests.e2e.test_demo_in_browser import sign_in

WIDTHS = (1366, 820, 390)


def no_sideways_scroll(page: Any) -> bool:
    """Nothing in the page's main content reaches past the viewport (a wide table scrolls
    inside its own box). The header's layout is checked where it is built."""
    return bool(
        page.evaluate(
            """() => { const w = document.documentElement.clientWidth;
              return [...document.querySelectorAll('main *')].every(el => {
                const r = el.getBoundingClientRect();
                return r.width === 0 || r.right <= w + 1
                  || el.parentElement.closest('.table-scroll'); }); }"""
        )
    )


def test_analytics_load_with_a_visible_state_and_the_csv_link_downloads(
    page: Any, server: str
) -> None:
    sign_in(page, server)
    page.goto(f"{server}/analytics")
    status = page.locator("#analytics-figures [role=status]").first
    assert "Computing…" in status.inner_text() or page.locator("text=Figures as of").count()
    shot(page, "analytics-computing")
    page.wait_for_selector("text=Figures as of", timeout=300_000)  # swapped in by htmx
    assert page.locator("text=Computing…").count() == 0
    assert page.locator("h2#benefits").count() == 1
    with page.expect_download() as got:
        page.get_by_role("link", name=re.compile(r"^Download the rates by group")).click()
    download = got.value
    assert download.suggested_filename == "benefit-responders.csv"
    with open(download.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert rows
    assert rows[0]["benefit"] == "pain_relief"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)  # layout settles (not a timing assert)
        shot(page, f"analytics-{width}")
        if width == 390:
            assert no_sideways_scroll(page)


def test_progress_and_error_pages_at_three_widths(page: Any, server: str) -> None:
    sign_in(page, server)
    page.goto(f"{server}/patients?q=MRN-000004")
    page.locator("table.list tbody tr").first.get_by_role("link").click()
    page.wait_for_selector("ol.timeline")
    page.get_by_role("link", name="Progress").first.click()
    page.wait_for_selector("h2#benefits-h")
    heads = page.locator("article.benefit h3").all_inner_texts()
    assert len(heads) == 9
    assert not any(h.endswith(": measured") for h in heads)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        shot(page, f"progress-{width}")
        if width == 390:
            assert no_sideways_scroll(page)
    missing = page.goto(f"{server}/no/such/page")
    assert missing is not None
    assert missing.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"not-found-{width}")
        if width == 390:
            assert no_sideways_scroll(page)
