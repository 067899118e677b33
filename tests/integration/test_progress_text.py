"""The progress page's words, on SQLite and PostgreSQL, for every episode of a generated
clinic: every citation resolves (no placeholder), units are spaced, no sentence is said
twice, each benefit's headline is a verdict, and each plot's value axis holds its values."""

from __future__ import annotations

import html
import itertools
import re
from collections import Counter

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from needlepoint.actions.clinics import register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.tables import episodes
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.enums import Role
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.web.app import create_app

VERDICT = re.compile(
    r"^(improved|unchanged|worse|not measured|"
    r"baseline only|recorded|not judged: no published threshold|"
    r"no meaningful improvement recorded|mixed: .+)$"
)
# Faster recovery has no comparator: a fact, never "improved" (REFERENCE §5).
RECOVERY = re.compile(
    r"^(not measured|(.+ threshold first reached after \d+ days?(, \d+ sessions?)?"
    r"(; not kept at the last measurement)?; )?"
    r"no comparator: whether recovery was faster is not judged)$"
)


def prose_sentences(page: str) -> list[str]:
    """The page's sentences as read (plots, titles and citation lists left out)."""
    text = re.sub(r"<svg.*?</svg>|<title>.*?</title>", " ", page, flags=re.S)
    text = re.sub(r'<span class="sources">.*?</span>', " ", text, flags=re.S)
    text = re.sub(r"<br\s*/?>|</(p|li|h\d|figcaption|td|th|span|strong)>", " | ", text)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    out = []
    for chunk in text.split("|"):
        for s in re.split(r"(?<=[a-z\d)][.!?])\s+", chunk):
            s = " ".join(s.split())
            if len(s) > 25:
                out.append(s)
    return out


_pages: dict[str, list[str]] = {}


@pytest.fixture
def pages(engine: sa.Engine) -> list[str]:
    """Every episode's progress page of one generated clinic per database (seeded ids
    cannot repeat in a database, so it is generated once)."""
    key = engine.url.render_as_string(hide_password=True)
    if key not in _pages:
        _pages[key] = _progress_pages(engine)
    return _pages[key]


def _progress_pages(engine: sa.Engine) -> list[str]:
    report = generate_clinic(engine, patients_count=12, seed=15013, clinic_name="Progress text")
    email = f"progress-{report.clinic_id.hex[:8]}@test.example"
    register_user(
        SqlUnitOfWork(engine),
        Actor(report.owner_id, report.clinic_id),
        RegisterUser(email=email, full_name="Reader", role=Role.CLINICIAN, password="x" * 16),
    )
    client = TestClient(create_app(engine, secret_key="p" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    client.post("/login", data={"email": email, "password": "x" * 16, "csrf": csrf[1]})
    with engine.connect() as conn:
        ids = conn.execute(
            sa.select(episodes.c.id).where(episodes.c.clinic_id == report.clinic_id)
        ).scalars()
        out = []
        for episode_id in ids:
            r = client.get(f"/episodes/{episode_id}/progress")
            assert r.status_code == 200, r.text
            out.append(r.text)
    assert out
    return out


def test_every_citation_on_the_progress_page_resolves(pages: list[str]) -> None:
    for page in pages:
        assert "REFERENCE §" not in page
        assert "not found)" not in page
        assert "Sources: " in page


def test_units_are_spaced_and_no_sentence_is_repeated(pages: list[str]) -> None:
    for page in pages:
        words = " ".join(prose_sentences(page))
        assert not re.search(r"\d(%|days?\b|sessions?\b|mm\b|kPa\b)", words), re.findall(
            r"\S*\d(?:%|days?\b|sessions?\b|mm\b|kPa\b)\S*", words
        )
        assert not re.search(r"\d\.\d{3,}", words)  # no raw floats
        repeated = [s for s, n in Counter(prose_sentences(page)).items() if n > 1]
        assert not repeated, repeated


def test_each_benefit_headline_is_a_verdict(pages: list[str]) -> None:
    seen: Counter[str] = Counter()
    for page in pages:
        heads = re.findall(r'<article class="card benefit"[^>]*>\s*<h3>(.*?)</h3>', page, re.S)
        assert len(heads) == 9
        for h in heads:
            text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", h)).split())
            name, verdict = re.sub(r" \(reported beside the eight benefits\)", "", text).split(
                ": ", 1
            )
            assert verdict != "measured"
            if name == "Faster recovery":
                assert RECOVERY.match(verdict), verdict
                seen[
                    "recovery: " + ("first reached" if "first reached" in verdict else verdict)
                ] += 1
                continue
            assert VERDICT.match(verdict), (name, verdict)
            seen[verdict.split(":")[0]] += 1
    assert seen["improved"]
    assert seen["not measured"]
    assert seen["recovery: first reached"]


def test_each_plots_value_axis_holds_its_values_in_round_steps(pages: list[str]) -> None:
    plots = 0
    for page in pages:
        for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
            ticks = [float(t) for t in re.findall(r'text-anchor="end">(-?[\d.]+)</text>', svg)]
            values = [float(v) for v in re.findall(r"<title>[\d-]+: (-?[\d.]+)</title>", svg)]
            if not values:
                continue
            plots += 1
            assert min(ticks) <= min(values)
            assert max(values) <= max(ticks)
            steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
            assert len(steps) == 1, ticks  # evenly spaced
            step = steps.pop()
            mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
            assert round(mantissa, 6) in (1, 2, 2.5, 5), ticks
            if "Trigger point" in svg:
                assert all(t.is_integer() for t in ticks), ticks  # a count of muscles
    assert plots
