"""A clinician's whole day with one new patient, in a real Chromium: sign in → new patient
→ screening → consent → episode → a session note with three muscles picked on the body
chart and an NPRS → sign → the progress page. Screenshots of every page are kept in
`artifacts/screenshots/`, and the clicks and keystrokes that documenting the session took
are counted (goal: at most 25 from the open chart to the signed note)."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import ARTIFACTS, shot
from tests.e2e.test_demo_in_browser import sign_in

INTERACTION_GOAL = 25


class Counted:
    """Performs the clinician's interactions and counts them: each click, each fill (one
    typed entry) and each key press is one."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.count = 0

    def click(self, locator: Any) -> None:
        locator.click()
        self.count += 1

    def fill(self, locator: Any, value: str) -> None:
        locator.fill(value)
        self.count += 1

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.count += 1


def _register_patient(page: Any, given: str, family: str, mrn: str, shots: bool = True) -> None:
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("Given name").fill(given)
    page.get_by_label("Family name").fill(family)
    page.get_by_label("Date of birth").fill("1984-05-17")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Chart number (MRN)").fill(mrn)
    if shots:
        shot(page, "10-new-patient")
    page.get_by_role("button", name="Register patient").click()
    page.wait_for_selector(f"h1:has-text('{family}, {given}')")


def _screen(page: Any, shots: bool = True) -> None:
    page.get_by_role("link", name="Screen now").click()
    questions = page.locator("fieldset.question")
    for i in range(questions.count()):
        questions.nth(i).get_by_label("No", exact=True).check()
    if shots:
        shot(page, "11-screening-questions")
    page.get_by_role("button", name="Review decision").click()
    page.wait_for_selector("#decision-h")
    assert "clear" in page.locator("#decision-h").inner_text()
    if shots:
        shot(page, "12-screening-review")
    page.get_by_role("button", name="Record screening").click()
    page.wait_for_selector("text=Screening: clear")


def _consent(page: Any, shots: bool = True) -> None:
    page.get_by_role("link", name="Record consent").click()
    assert page.locator("article.consent-text h3").count() >= 3  # the template, in full
    page.get_by_label("The patient read this form").check()
    page.locator("#signature-pad").scroll_into_view_if_needed()  # below the signer fields
    box = page.locator("#signature-pad").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 120)
    page.mouse.down()
    for k in range(12):
        page.mouse.move(box["x"] + 40 + 25 * k, box["y"] + 80 + (30 if k % 2 else -20))
    page.mouse.up()
    assert page.locator("#f-signature").input_value().startswith("M ")
    page.get_by_label("A copy was given to the patient").check()
    if shots:
        shot(page, "13-consent")
    page.get_by_role("button", name="Record consent").click()
    page.wait_for_selector("text=Dry needling: may proceed")


def _episode(page: Any, family: str, shots: bool = True) -> None:
    page.get_by_role("link", name="Open an episode").click()
    page.get_by_label("Condition").select_option("neck_pain")
    page.get_by_label("Onset").fill("2026-09-01")
    page.get_by_label("Goals").fill("Pain below 3/10; full rotation for driving")
    page.get_by_label("Exercise", exact=True).check()
    if shots:
        shot(page, "14-episode-new")
    page.get_by_role("button", name="Open episode").click()
    page.wait_for_selector("text=Plan")
    if shots:
        shot(page, "15-episode")
    page.get_by_role("link", name=re.compile(family)).click()
    page.wait_for_selector("ol.timeline")


def _add_site(u: Counted, view: str, key: str, muscle: str, depth: str, insertions: str) -> None:
    """Click a region of the chart, pick its muscle, type depth and insertions."""
    page = u.page
    u.click(page.locator(f"svg[data-view={view}] a.region[data-chart-key={key}][data-side=left]"))
    u.click(page.locator("#muscle-list").get_by_role("button", name=muscle, exact=True))
    site = page.locator("#sites li.site").last
    u.fill(site.get_by_label("Depth (mm)"), depth)
    u.fill(site.get_by_label("Insertions"), insertions)


def test_clinician_documents_a_session_from_new_patient_to_progress(
    page: Any, clinic_server: str
) -> None:
    server = clinic_server
    sign_in(page, server)
    _register_patient(page, "Nadia", "Okafor", "MRN-E2E-001")
    _screen(page)
    _consent(page)
    _episode(page, "Okafor")
    shot(page, "16-patient-chart")

    # --- from the open chart to a signed note: every interaction counted --------------
    u = Counted(page)
    u.click(page.get_by_role("link", name="New session note"))
    page.wait_for_selector("#note")
    u.fill(page.get_by_label("Subjective"), "Neck pain 6/10, worse after desk work.")
    _add_site(u, "back", "trapezius", "Upper trapezius", "12", "4")
    # Safety rules appear inline at the site they concern (lung apex over the thorax).
    page.wait_for_selector("#site-0 .finding.action-warn")
    _add_site(u, "back", "trapezius", "Levator scapulae", "15", "3")
    # The third muscle by typing in the catalogue search instead of the chart.
    u.fill(page.get_by_label("Find a muscle"), "splenius cap")
    u.click(page.locator("#muscle-list").get_by_role("button", name="Splenius capitis"))
    site = page.locator("#sites li.site").last
    u.fill(site.get_by_label("Depth (mm)"), "20")
    u.fill(site.get_by_label("Insertions"), "3")
    u.click(page.locator("label[for=nprs-6]"))
    page.wait_for_selector("#save-status:has-text('Draft saved')")
    assert "/sessions/" in page.url  # the draft exists: a closed tab loses nothing
    assert "CPT 20561" in page.locator("#cpt-preview").inner_text()
    shot(page, "17-session-note")
    u.click(page.get_by_role("button", name="Sign note"))
    page.wait_for_selector("#billing")
    interactions = u.count
    # -----------------------------------------------------------------------------------

    print(f"\nInteractions from open chart to signed note: {interactions}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "interactions.txt").write_text(
        f"{interactions} interactions from the open patient chart to a signed note "
        f"(3 muscles, NPRS); goal <= {INTERACTION_GOAL}\n"
    )
    assert interactions <= INTERACTION_GOAL
    assert "CPT 20561" in page.locator("#billing").inner_text()
    assert "locked" in page.locator("#signed-h").inner_text()
    assert page.locator("text=Numeric Pain Rating Scale: 6/10").count() == 1
    assert page.locator("table.list tbody tr").count() == 3
    assert page.locator("form#note").count() == 0  # a signed note has no edit form
    assert page.locator(".chart.static circle.tp-mark").count() == 2  # two clicked points
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 820  # no sideways scroll
    shot(page, "18-signed-note")

    page.get_by_label("Reason for the amendment").fill("Omitted home exercise advice")
    page.get_by_label("Amendment", exact=True).fill("Advised chin tucks 3x10 daily.")
    page.get_by_role("button", name="Append amendment").click()
    page.wait_for_selector("text=Advised chin tucks 3x10 daily.")

    page.get_by_role("link", name="Progress").click()
    page.wait_for_selector("svg.plot")
    assert page.locator("figure.measure").first.inner_text().startswith("Numeric Pain Rating")
    assert page.locator("svg.plot rect.band").count() >= 1  # below the responder threshold
    # the eight benefits, and function / disability on its own row beside them
    assert page.locator("article.benefit").count() == 9
    assert page.locator(".not-measured").count() >= 1  # said honestly
    healing = page.locator("#benefit-tissue_healing").inner_text()
    assert "not measured" in healing
    assert page.locator("article.benefit .hint").first.inner_text().startswith("Evidence")
    shot(page, "19-progress")


def test_a_refused_site_is_shown_at_that_site_with_the_input_kept(
    page: Any, clinic_server: str
) -> None:
    server = clinic_server
    """Both sides of the thorax in one note: the second side is refused unless a written
    reason overrides it; the refusal appears at that site and nothing typed is lost. On a
    tablet held upright, and the chart works from the keyboard too."""
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, server)
    page.get_by_label("Search by name or chart number").fill("MRN-000003")  # no Enter
    page.wait_for_selector("p.count:has-text('1 patient matching')")  # instant search
    assert page.locator("table.list tbody tr").count() == 1
    _register_patient(page, "Tomas", "Lindqvist", "MRN-E2E-002", shots=False)
    _screen(page, shots=False)
    _consent(page, shots=False)
    _episode(page, "Lindqvist", shots=False)
    page.get_by_role("link", name="New session note").click()
    page.get_by_label("Subjective").fill("Bilateral upper trapezius pain.")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 768  # no sideways scroll
    # Keyboard: tab to a chart region and press Enter; its muscles are listed.
    page.locator("svg[data-view=front] a.region[data-chart-key=chest]").first.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none" or (
        page.evaluate(
            "getComputedStyle(document.activeElement.querySelector('polygon')).fill"
        ).replace(" ", "")
        == "rgb(240,162,2)"
    )
    page.keyboard.press("Enter")
    assert "Pectoralis major" in page.locator("#muscle-list li:not([hidden])").all_inner_texts()
    for side in ("left", "right"):
        region = f"svg[data-view=back] a.region[data-chart-key=trapezius][data-side={side}]"
        page.locator(region).click()
        page.locator("#muscle-list").get_by_role("button", name="Upper trapezius").click()
        site = page.locator("#sites li.site").last
        site.get_by_label("Depth (mm)").fill("10")
        site.get_by_label("Insertions").fill("2")
    assert page.locator("#site-1").get_by_label("Side").input_value() == "right"
    page.wait_for_selector("#site-1 .finding.action-refuse_override")
    assert page.locator("#site-0 .finding.action-refuse_override").count() == 0
    shot(page, "20-refusal-inline")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign note").click()  # all or nothing: refused
    assert page.locator("#site-1 .error").count() >= 1
    assert page.get_by_label("Subjective").input_value() == "Bilateral upper trapezius pain."
    assert page.locator("#sites li.site").count() == 2
    page.locator("#site-1").get_by_label("Why you override a refusal").select_option(
        "technique_modified"
    )
    page.locator("#site-1").get_by_label("Written reason").fill(
        "Bilateral symptoms; second side needled with a flat angle, patient informed."
    )
    page.get_by_role("button", name="Sign note").click()
    page.wait_for_selector("#billing")
    assert "overridden" in page.locator("ul.flags").inner_text()
    shot(page, "21-override-signed")
