"""Clinic analytics through the API and the page, on SQLite and PostgreSQL: the dashboard,
its CSV export, the model routes and who may read them."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from needlepoint.actions.clinics import issue_operator_token, register_user
from needlepoint.actions.context import Actor
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.analytics.dashboard import dashboards_of
from needlepoint.domain.commands import RegisterUser
from needlepoint.domain.enums import Role
from needlepoint.synthetic.clinic import generate_clinic
from needlepoint.web import api as api_package
from needlepoint.web.app import create_app

BENEFITS = 9  # the eight benefits, and function / disability beside them


@dataclass
class AnalyticsClinic:
    client: TestClient
    tokens: dict[str, str]
    patients: int
    pages: dict[str, TestClient]
    clinic_id: Any

    def get(self, path: str, who: str = "owner", **params: Any) -> Any:
        """The answer once the clinic's analytics snapshot is ready (the first request
        is answered 202 while it is prepared in the background)."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        r = self.client.get(f"/api/v1{path}", params=params, headers=headers)
        if r.status_code == 202:
            assert r.headers["Retry-After"]
            assert dashboards_of(self.client.app.state).wait(300)  # type: ignore[attr-defined]
            r = self.client.get(f"/api/v1{path}", params=params, headers=headers)
        return r


_generated: dict[str, AnalyticsClinic] = {}


@pytest.fixture
def generated(engine: sa.Engine) -> AnalyticsClinic:
    """One generated clinic per database for the module (seeded ids cannot repeat)."""
    key = engine.url.render_as_string(hide_password=True)
    if key not in _generated:
        _generated[key] = _generate(engine)
    return _generated[key]


def _generate(engine: sa.Engine) -> AnalyticsClinic:
    report = generate_clinic(
        engine, patients_count=150, practitioners_count=5, seed=4242, clinic_name="Analytics"
    )
    owner = Actor(report.owner_id, report.clinic_id, source="test")
    tokens = {}
    for who, role in (("owner", Role.CLINICIAN), ("assistant", Role.ASSISTANT)):
        user = register_user(
            SqlUnitOfWork(engine),
            owner,
            RegisterUser(
                email=f"{who}-{report.clinic_id.hex[:8]}@analytics.example",
                full_name=who.title(),
                role=role,
            ),
        )
        tokens[who] = issue_operator_token(SqlUnitOfWork(engine), user, "test", source="test")
    app = create_app(engine, secret_key="analytics-" + "k" * 40)
    pages = {}
    for who, role in (("owner", Role.CLINICIAN), ("assistant", Role.ASSISTANT)):
        email = f"{who}-page-{report.clinic_id.hex[:8]}@analytics.example"
        register_user(
            SqlUnitOfWork(engine),
            owner,
            RegisterUser(
                email=email, full_name=f"Page {who}", role=role, password="correct horse battery"
            ),
        )
        pages[who] = _signed_in(TestClient(app), email)
    return AnalyticsClinic(TestClient(app), tokens, report.patients, pages, report.clinic_id)


def _signed_in(client: TestClient, email: str) -> TestClient:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    r = client.post(
        "/login",
        data={"email": email, "password": "correct horse battery", "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def documented(path: str) -> Any:
    for router in api_package.routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and api_package.PREFIX + route.path == path:
                return route.response_model
    raise AssertionError(path)


def test_the_dashboard_shows_every_benefit_with_its_denominators(
    generated: AnalyticsClinic,
) -> None:
    r = generated.get("/analytics/dashboard")
    assert r.status_code == 200, r.text
    body = r.json()
    TypeAdapter(documented("/api/v1/analytics/dashboard")).validate_python(body)
    assert body["patients"] == generated.patients
    tiles = {t["id"]: t for t in body["tiles"]}
    assert len(tiles) == BENEFITS
    assert tiles["blood_circulation"]["status"] == "not measured"
    assert tiles["blood_circulation"]["overall"]["rate"] is None
    assert tiles["blood_circulation"]["pooled_summary"].startswith("no pooled evidence")
    # A function score is not tissue healing: its own tile, with the disability evidence.
    healing = tiles["tissue_healing"]
    assert (healing["status"], healing["overall"]["complete"]) == ("not measured", 0)
    assert healing["pooled"] == []
    assert "not tissue healing" in healing["criterion"]
    function = tiles["function_disability"]
    assert function["status"] == "measured"
    assert function["overall"]["complete"] > 0
    assert all(p["outcome"] == "disability" for p in function["pooled"])
    assert all(
        p["outcome"].startswith(("pain", "neck pain")) for p in tiles["pain_relief"]["pooled"]
    )
    pain = tiles["pain_relief"]["overall"]
    assert pain["complete"] + pain["missing"] + pain["no_threshold"] == pain["eligible"]
    assert pain["ci_low"] <= pain["rate"] <= pain["ci_high"]
    assert "SMD -0.81" in tiles["pain_relief"]["pooled_summary"]
    for row in body["responders"]:
        assert row["rate"] is None or row["complete"] > 0
    assert {m["outcome"] for m in body["practitioners"]} == {"nprs", "function"}
    for model in body["practitioners"]:
        assert model["status"]  # converged, or why not
    assert body["recovery"]["overall"]["episodes"] > 0
    assert {c["by"] for c in body["recovery"]["comparisons"]} == {"condition", "co_intervention"}
    assert body["safety"]["sessions"] > 0
    assert [m["drugs"] for m in body["medication"]] == ["all analgesics", "opioids"]


def test_the_csv_export_holds_the_same_rows_as_the_table(generated: AnalyticsClinic) -> None:
    table = generated.get("/analytics/benefits")
    TypeAdapter(documented("/api/v1/analytics/benefits")).validate_python(table.json())
    export = generated.get("/analytics/benefits.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == len(table.json())
    first = rows[0]
    assert first["benefit"] == "pain_relief"
    assert first["dimension"] == "overall"
    assert int(first["complete"]) + int(first["missing"]) <= int(first["eligible"])
    by_condition = generated.get("/analytics/benefits", dimension="condition").json()
    assert by_condition
    assert {r["dimension"] for r in by_condition} == {"condition"}


def test_model_routes_answer_with_their_documented_shapes(generated: AnalyticsClinic) -> None:
    for path in ("practitioners", "recovery", "medication", "safety"):
        r = generated.get(f"/analytics/{path}")
        assert r.status_code == 200, (path, r.text)
        TypeAdapter(documented(f"/api/v1/analytics/{path}")).validate_python(r.json())
    r = generated.get(
        "/analytics/prognosis",
        baseline_nprs=7,
        age=50,
        sex="female",
        condition="low_back_pain",
        chronic=True,
        exercise=True,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    TypeAdapter(documented("/api/v1/analytics/prognosis")).validate_python(body)
    if body["prediction"] is not None:
        p = body["prediction"]
        assert 0 <= p["ci_low"] <= p["probability"] <= p["ci_high"] <= 1
        assert "not a promise" in p["caveat"]
    else:
        assert body["message"].startswith("No estimate")


def test_analytics_need_clinical_read_access(generated: AnalyticsClinic) -> None:
    assert generated.get("/analytics/dashboard", who="assistant").status_code == 403
    assert generated.get("/analytics/benefits.csv", who="assistant").status_code == 403
    assert generated.client.get("/api/v1/analytics/dashboard").status_code == 401


def test_the_analytics_page_shows_everything_for_a_generated_clinic(
    sqlite_engine: sa.Engine,
) -> None:
    report = generate_clinic(
        sqlite_engine, patients_count=300, practitioners_count=6, seed=777, clinic_name="Page"
    )
    register_user(
        SqlUnitOfWork(sqlite_engine),
        Actor(report.owner_id, report.clinic_id),
        RegisterUser(
            email="analytics-page@test.example",
            full_name="Page Analyst",
            role=Role.CLINICIAN,
            password="correct horse battery",
        ),
    )
    client = TestClient(create_app(sqlite_engine, secret_key="k" * 40))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    client.post(
        "/login",
        data={
            "email": "analytics-page@test.example",
            "password": "correct horse battery",
            "csrf": csrf[1],
        },
    )
    shell = client.get("/analytics")  # answered at once: the figures load into it
    assert shell.status_code == 200
    assert 'hx-get="/analytics/figures"' in shell.text
    assert 'hx-trigger="load"' in shell.text
    assert "Computing…" in shell.text
    preparing = client.get("/analytics/figures")  # the first view: prepared in the background
    assert preparing.status_code == 200
    assert "Computing…" in preparing.text
    assert 'hx-trigger="load delay:' in preparing.text  # it asks again by itself
    assert dashboards_of(client.app.state).wait(300)  # type: ignore[attr-defined]
    shell = client.get("/analytics")
    assert "Loading the figures as of" in shell.text
    page = client.get("/analytics/figures", headers={"HX-Request": "true"})  # as htmx asks
    assert page.status_code == 200, page.text
    assert "<html" not in page.text  # a fragment, swapped into the shell
    text = page.text
    assert "Figures as of" in text
    assert "Computing…" not in text
    for expected in (
        "Pain relief",
        "Blood circulation",
        "not measured",
        "no pooled evidence",
        "complete pairs",
        "Risk-adjusted practitioner comparison",
        "Model status:",
        "not ranked",
        "Time to meaningful improvement",
        "Log-rank test",
        "Analgesic use",
        "opioids",
        "Adverse-event surveillance",
        "After care: 6 weeks and 3 months after discharge",
        "Brady",
        "Boyce",
        "AUC",
        "Brier score",
        'href="/analytics',
        "data:image/png;base64,",
        "calibration slope of at least 0.9",
        "Peduzzi",
    ):
        assert expected in text, expected
    # Readable labels: no internal ids or snake_case words in the table cells and links.
    cells = re.findall(r"<(?:td|th|a|h3|option)[^>]*>([^<]*)<", text)
    assert not [c for c in cells if re.search(r"\b[a-z]+_[a-z_]+\b", c)], [
        c for c in cells if "_" in c
    ]
    # Scripts come only as files from /static (the CSP forbids inline ones).
    assert re.search(r"<script(?![^>]*\bsrc=\"/static/)", shell.text) is None
    assert "<script" not in text
    # Without a script (the shell's <noscript> link), the same figures come as a page.
    whole = client.get("/analytics/figures")
    assert "<html" in whole.text
    assert "<h1>Clinic analytics</h1>" in whole.text
    assert "Figures as of" in whole.text
    assert 'hx-get="/analytics/figures"' not in whole.text  # the figures are in the page
    by_practitioner = client.get(
        "/analytics/figures",
        params={"benefit": "function_disability", "dimension": "practitioner"},
    )
    assert by_practitioner.status_code == 200
    assert "Co-intervention" in by_practitioner.text
    estimate = client.get(
        "/analytics/figures",
        params={
            "baseline_nprs": 7,
            "age": 45,
            "sex": "female",
            "condition": "neck_pain",
            "chronic": "true",
        },
    )
    assert estimate.status_code == 200
    assert "not a promise" in estimate.text or "No estimate" in estimate.text
    # The shell hands its query to the figures it loads.
    asked = client.get("/analytics", params={"benefit": "function_disability"})
    assert 'hx-get="/analytics/figures?benefit=function_disability"' in asked.text
    signed_out = TestClient(create_app(sqlite_engine, secret_key="k" * 40))
    assert signed_out.get("/analytics", follow_redirects=False).headers["location"] == "/login"


def test_the_csv_link_works_for_a_signed_in_user(generated: AnalyticsClinic) -> None:
    """The page's CSV link is served with the browser's session (the API's needs a
    token): the same rows as the API's export, and the same permission check."""
    api = generated.get("/analytics/benefits.csv")
    assert api.status_code == 200
    page = generated.pages["owner"]
    figures = page.get("/analytics/figures")
    if "Computing…" in figures.text:
        assert dashboards_of(page.app.state).wait(300)  # type: ignore[attr-defined]
    link = re.search(r'href="([^"]+\.csv)"', page.get("/analytics").text)
    assert link is not None
    assert link[1] == "/analytics/benefits.csv"
    r = page.get(link[1])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.text == api.text
    # The API's export without a token stays refused; the page's without a session
    # sends the browser to sign in.
    assert generated.client.get("/api/v1/analytics/benefits.csv").status_code == 401
    anonymous = TestClient(page.app)
    assert anonymous.get(link[1], follow_redirects=False).headers["location"] == "/login"


def test_the_csv_link_refuses_a_role_without_clinical_access_and_audits_it(
    generated: AnalyticsClinic, engine: sa.Engine
) -> None:
    from needlepoint.adapters.db.tables import audit_events

    page = generated.pages["assistant"]
    r = page.get("/analytics/benefits.csv")
    assert r.status_code == 403
    assert "text/csv" not in r.headers["content-type"]
    page.app.state.deferred.flush()  # type: ignore[attr-defined]
    with engine.connect() as conn:
        denied = conn.execute(
            sa.select(sa.func.count())
            .select_from(audit_events)
            .where(
                audit_events.c.clinic_id == generated.clinic_id,
                audit_events.c.action == "access.denied",
                audit_events.c.source == "web",
            )
        ).scalar_one()
    assert denied >= 1


def _figures(generated: AnalyticsClinic, **params: Any) -> str:
    client = generated.pages["owner"]
    client.get("/analytics/figures", params=params)
    assert dashboards_of(client.app.state).wait(300)  # type: ignore[attr-defined]
    page = client.get("/analytics/figures", params=params, headers={"HX-Request": "true"})
    assert page.status_code == 200, page.text
    return page.text


def _tile(text: str, benefit: str) -> str:
    found = re.search(rf'aria-labelledby="tile-{benefit}">(.*?)</section>', text, re.S)
    assert found, benefit
    return found[1]


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_benefits_not_measured_are_never_shown_as_results(generated: AnalyticsClinic) -> None:
    """Faster recovery has no comparator, and muscle relaxation and being drug-free are
    not measured (their stand-ins are): no headline rate, and the stand-in said as what it
    is; the group table does not call a proxy's count "Responders"."""
    text = _figures(generated)
    for benefit in ("faster_recovery", "muscle_relaxation", "drug_free_management"):
        tile = _tile(text, benefit)
        assert '<p class="big">not measured</p>' in tile, benefit
        assert re.search(r'class="big">\s*[\d.]+ %', tile) is None, benefit
        assert "95 % CI" not in tile, benefit
        # no "improved" or "responder" for the benefit (the NPRS responder threshold is named)
        said = _words(tile).split("Threshold")[0]
        assert not re.search(r"\bimproved\b|\bresponders?\b(?! threshold)", said), said
    faster = _words(_tile(text, "faster_recovery"))
    assert re.search(
        r"NPRS responder threshold reached by session 6 in \d+ of \d+ episodes\. No "
        r"comparator: whether recovery was faster is not judged\.",
        faster,
    ), faster
    muscle = _words(_tile(text, "muscle_relaxation"))
    assert re.search(r"Proxy: fewer muscles with an active trigger point in \d+ of \d+", muscle)
    assert "Trigger-point status is not muscle relaxation." in muscle
    drugs = _words(_tile(text, "drug_free_management"))
    assert re.search(r"Proxy: analgesic drug-days per week fell in \d+ of \d+ episodes", drugs)
    assert "Fewer drug-days is not drug-free." in drugs
    # after care keeps the drug-free share, labelled as exactly that
    assert ">Drug-free</th>" in text
    by_technique = _figures(generated, benefit="muscle_relaxation", dimension="technique")
    table = re.search(r'<table class="list" id="rates-by-group">(.*?)</table>', by_technique, re.S)
    assert table
    headers = re.findall(r"<th[^>]*>([^<]*)<", table[1])
    assert "Responders" not in headers
    assert "Fewer active trigger points" in headers
    assert "not measured; the table counts a proxy, fewer active trigger points" in by_technique
    tiles = {t["id"]: t for t in generated.get("/analytics/dashboard").json()["tiles"]}
    for benefit in ("faster_recovery", "muscle_relaxation", "drug_free_management"):
        assert tiles[benefit]["status"] == "not measured"
        assert tiles[benefit]["overall"]["status"] == "proxy"
        assert tiles[benefit]["overall"]["counted"] != "responders"
        assert tiles[benefit]["proxy"]


def test_every_threshold_on_the_tiles_shows_its_source(generated: AnalyticsClinic) -> None:
    text = _figures(generated)
    expected = {
        "pain_relief": ["MCID 2/10 and 30 % of the baseline", "source: Farrar et al. 2001"],
        "function_disability": [
            "Neck Disability Index: MDC 20 %",
            "source: Young et al. 2009",
            "source: Ostelo et al. 2008",
            "source: van Kampen et al. 2013",
            "source: Binkley et al. 1999",
            "MCID 1.3/10 (the small MID",
            "source: Abbott & Schmitt 2014",
        ],
        "flexibility_rom": ["cervical spine only: MDC 9.6°", "source: Fletcher & Bandy 2008"],
        "complementary_care": ["source: Farrar et al. 2001"],
        "faster_recovery": ["source: Farrar et al. 2001"],
    }
    for benefit, words in expected.items():
        tile = _words(_tile(text, benefit)).replace("&amp;", "&")
        for w in words:
            assert w in tile, (benefit, w)
    # no threshold quoted without its source anywhere in the tiles' criteria
    for benefit in expected:
        counted = _words(_tile(text, benefit)).split("How it is counted:")[1].split("Threshold")[0]
        assert not re.search(r"\d+(\.\d+)? ?(points|%|°)", counted), (benefit, counted)
    recovery = _words(text).split("Time to meaningful improvement")[1][:600]
    assert "source: Farrar et al. 2001" in recovery


def test_a_benefit_not_measured_by_group_says_so_never_zero(generated: AnalyticsClinic) -> None:
    text = _figures(generated, benefit="blood_circulation", dimension="condition")
    table = re.search(r'<table class="list" id="rates-by-group">(.*?)</table>', text, re.S)
    assert table
    rows = re.findall(r"<tr>(.*?)</tr>", table[1], re.S)[1:]
    assert rows
    for row in rows:
        cells = [_words(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        assert cells[2:] == ["not measured (no clinic measure of this benefit)"], cells
    api = generated.get("/analytics/benefits", dimension="condition").json()
    blood = [r for r in api if r["benefit"] == "blood_circulation"]
    assert blood
    for r in blood:
        assert (r["status"], r["responders"], r["rate"]) == ("not measured", None, None)
    for r in api:  # nothing counted: no count of 0, wherever it is
        assert (r["responders"] is None) == (r["complete"] == 0), r
        assert (r["status"] == "not measured") or r["complete"] > 0, r


def test_published_adverse_event_figures_are_quoted_as_their_sources_give_them(
    generated: AnalyticsClinic,
) -> None:
    text = _words(_figures(generated))
    assert "0 observed in 7,629 treatments (upper risk ≤ 0.04 %) (Brady 2014)" in text
    assert "20 observed in 20,464 sessions (&lt; 0.1 %) (Boyce 2020)" in text
    assert "0.04 (Brady" not in text
    safety = generated.get("/analytics/safety").json()
    brady = [
        p for p in safety["significant_or_serious"]["published"] if p["study"].startswith("Brady")
    ]
    assert brady
    assert brady[0]["percent_is"] == "upper bound"


def test_the_models_are_described_in_clinical_words(generated: AnalyticsClinic) -> None:
    text = _figures(generated)
    prognosis = _words(text).split("Prognosis for one patient")[1][:500]
    assert "from: baseline NPRS, age, sex" in prognosis
    assert "manual therapy" in prognosis
    for internal in ("C(sex)", "C(condition)", "manual_therapy", "~", "MCID by session 6 ~"):
        assert internal not in prognosis, internal
    practitioners = _words(text).split("Risk-adjusted practitioner comparison")[1][:2000]
    assert "(1 | practitioner)" not in practitioners
    assert "~" not in practitioners
    # units spaced: no "40%" anywhere in the figures
    assert not re.search(r"\d%", _words(text)), re.findall(r".{30}\d%.{10}", _words(text))
