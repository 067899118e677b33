"""The printable documents in a real browser: from the progress page to the report's
print view; on paper (print media) the app's navigation and the page's own links are
gone and the plots stay; at 1366 px and 390 px nothing runs off the side; the PDF link
downloads a PDF. Screenshots: `artifacts/screenshots/document-*.png`."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import ARTIFACTS, shot
from tests.e2e.test_analytics_in_browser import no_sideways_scroll
from tests.e2e.test_demo_in_browser import sign_in


def test_the_report_prints_without_the_app_around_it(page: Any, server: str) -> None:
    sign_in(page, server)
    page.goto(f"{server}/patients?q=MRN-000004")
    page.locator("table.list tbody tr").first.get_by_role("link").click()
    page.wait_for_selector("ol.timeline")
    page.get_by_role("link", name="Progress").first.click()
    page.wait_for_selector("h2#benefits-h")
    page.locator("#report-link").click()
    page.wait_for_selector("article.document h1")
    assert page.locator("article.document h1").inner_text() in (
        "Progress report",
        "Discharge report",
    )
    assert page.locator("article.document figure.doc-figure img").count() >= 1
    assert page.locator("text=not measured").count() >= 1
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)  # layout settles (not a timing assert)
        shot(page, f"document-report-{width}")
        if width == 390:
            assert no_sideways_scroll(page)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 1366, "height": 900})
    assert not page.locator("header.top").is_visible()
    assert not page.locator("p.no-print").is_visible()
    assert page.locator("article.document figure.doc-figure img").first.is_visible()
    shot(page, "document-report-print")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(ARTIFACTS / "document-report-printed.pdf"), format="A4")
    page.emulate_media(media="screen")
    with page.expect_download() as got:
        page.locator("#pdf-link").click()
    download = got.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"
