"""The request checks, the rate limit, the CSV cell escape and the server's proxy
settings, without a database."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlepoint.adapters.spreadsheets import FORMULA_STARTS, cell, csv_text
from needlepoint.web.limits import INT_LIMIT, RateLimit, Refused, check_json, check_pairs

# --- CSV: no cell a spreadsheet would run ---------------------------------------------------

INJECTIONS = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "  =1+1",
    "\u00a0=1+1",
    "\uff1d1+1",  # full-width equals sign
    "\uff0b1",
    "=cmd|' /C calc'!A0",
    "-",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize("value", ["Pat Therapist", "neck pain", "a=b", "1-2", "", "O'Neil"])
def test_ordinary_text_is_unchanged(value: str) -> None:
    assert cell(value) == value


@pytest.mark.parametrize("value", [-2.5, -3, 0, 1.0, 17])
def test_numbers_stay_numbers_even_when_negative(value: float) -> None:
    assert cell(value) == value


@settings(deadline=None)  # no timing in tests (a loaded machine is slow)
@given(st.text())
def test_no_written_cell_starts_a_formula(text: str) -> None:
    out = csv_text(["h"], [[text]])
    read = list(csv.reader(io.StringIO(out, newline="")))[1]
    value = read[0] if read else ""
    assert value.lstrip(" \u00a0\u3000")[:1] not in FORMULA_STARTS or value.startswith("'")
    assert value[:1] not in FORMULA_STARTS


def test_the_benefit_export_escapes_a_practitioners_name() -> None:
    from dataclasses import fields

    from needlepoint.analytics.dashboard import responders_csv
    from needlepoint.analytics.responders import ResponderRow

    values: dict[str, Any] = {f.name: 0 for f in fields(ResponderRow)}
    values |= {
        "benefit": "pain_relief",
        "dimension": "practitioner",
        "level": '=HYPERLINK("http://evil.example")',
        "level_id": "@x",
        "rate": -0.5,
        "ci_low": None,
        "ci_high": None,
        "criterion": "+2 points",
    }
    text = responders_csv([ResponderRow(**values)])
    row = next(iter(csv.DictReader(io.StringIO(text))))
    assert row["level"] == "'" + values["level"]
    assert row["level_id"] == "'@x"
    assert row["criterion"] == "'+2 points"
    assert row["rate"] == "-0.5"
    assert row["ci_low"] == ""


def test_the_score_export_escapes_the_ids_it_was_given() -> None:
    from needlepoint.scoring_batch import ScoredRow, write_csv

    out = io.StringIO()
    write_csv([ScoredRow("=1+1", 3.0, None), ScoredRow("@evil", None, "-bad")], out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[1][0] == "'=1+1"
    assert rows[2] == ["'@evil", "", "'-bad"]


# --- JSON and form input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"a": 1e309}', "a"),
        (b'{"a": -1e309}', "a"),
        (b'{"a": [1, NaN]}', "a.1"),
        (b'{"a": {"b": Infinity}}', "a.b"),
        (b'{"a": -Infinity}', "a"),
        (b'{"n": 9223372036854775808}', "n"),
        (b'{"n": -9223372036854775809}', "n"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "n"),
        (b'{"n": 1e19}', "n"),
        (b'{"n": 1e308}', "n"),
        (b'{"s": "a\\u0000b"}', "s"),
        (b'{"k\\u0000": 1}', "body"),
        (b'[{"x": ["ok", "\\u0000"]}]', "0.x.1"),
        (b'{"s": "\\ud800"}', "s"),
        (b'{"s": "a\\udfffb"}', "s"),
        (b'{"mrn": "D-1", "mrn": "D-2"}', "mrn"),  # a key twice: not the last kept silently
        (b'{"sites": [{"side": "left", "depth_mm": 9, "side": "right"}]}', "sites.0.side"),
    ],
)
def test_json_a_database_cannot_hold_is_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(Refused) as refused:
        check_json(body)
    assert refused.value.field == field


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1.5, "b": -3, "c": "\\\\u0000 is how NUL is written"}',
        b'{"n": 9223372036854775807, "m": -9223372036854775808}',
        b'{"x": 1e18}',
        b"not json at all",
        b'{"a": "caf\xc3\xa9"}',
        b'{"a": "\\ud83d\\ude00 a smile, a pair of surrogates"}',
        b'[{"side": "left"}, {"side": "right"}]',  # the same key in two objects
    ],
)
def test_ordinary_json_passes(body: bytes) -> None:
    check_json(body)


@settings(deadline=None)  # no timing in tests (a loaded machine is slow)
@given(st.integers())
def test_integers_pass_exactly_when_64_bit(n: int) -> None:
    if -INT_LIMIT <= n < INT_LIMIT:
        check_json(b'{"n": %d}' % n)
    else:
        with pytest.raises(Refused):
            check_json(b'{"n": %d}' % n)


@settings(deadline=None)  # no timing in tests (a loaded machine is slow)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_pass_exactly_when_finite_and_in_range(x: float) -> None:
    body = ('{"x": %s}' % ("NaN" if math.isnan(x) else repr(x).replace("inf", "Infinity"))).encode()
    if math.isfinite(x) and abs(x) < INT_LIMIT:
        check_json(body)
    else:
        with pytest.raises(Refused):
            check_json(body)


def test_a_nul_in_a_query_or_form_names_the_field() -> None:
    with pytest.raises(Refused) as refused:
        check_pairs(b"q=ok&email=a%00b", where="query")
    assert refused.value.field == "email"
    check_pairs(b"q=100%25", where="query")


# --- rate limit ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    limit = RateLimit(lambda *_: None, per_caller=2.0, burst=3, clock=clock)  # type: ignore[arg-type]
    assert [limit._take("k", 2.0, 3, clock()) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit._take("k", 2.0, 3, clock()) == pytest.approx(0.5)
    clock.now = 0.5  # one more request's worth
    assert limit._take("k", 2.0, 3, clock()) == 0.0
    clock.now = 1000.0  # a long pause refills only up to the burst
    assert [limit._take("k", 2.0, 3, clock()) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit._take("k", 2.0, 3, clock()) > 0


def test_the_table_of_callers_is_bounded() -> None:
    limit = RateLimit(lambda *_: None, max_keys=100)  # type: ignore[arg-type]
    for i in range(1_000):
        limit._take(f"caller-{i}", 1.0, 5, 0.0)
    assert len(limit.buckets) == 100
    assert "caller-999" in limit.buckets
    assert "caller-0" not in limit.buckets


# --- the server believes X-Forwarded-For only from configured proxies ---------------------


def test_uvicorn_ignores_forwarded_headers_unless_a_proxy_is_configured() -> None:
    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from needlepoint.config import Settings

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        pass

    options = Settings(forwarded_allow_ips=None).server_options()
    assert options["proxy_headers"] is False
    config = uvicorn.Config(app, **options)
    config.load()
    assert not isinstance(config.loaded_app, ProxyHeadersMiddleware)

    options = Settings(forwarded_allow_ips="10.0.0.5").server_options()
    assert options["proxy_headers"] is True
    config = uvicorn.Config(app, **options)
    config.load()
    assert isinstance(config.loaded_app, ProxyHeadersMiddleware)
    assert config.forwarded_allow_ips == "10.0.0.5"


def test_with_no_proxy_configured_a_forged_address_is_not_believed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end through uvicorn's own header handling: the address the app sees."""
    import uvicorn

    # `serve --workers` hands its settings to the workers through the environment: a
    # serve test earlier in the same process must not decide this one.
    for name in ("NEEDLEPOINT_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)

    from needlepoint.config import Settings

    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("client"))

    for trusted, expected in ((None, "127.0.0.1"), ("127.0.0.1", "203.0.113.9")):
        config = uvicorn.Config(app, **Settings(forwarded_allow_ips=trusted).server_options())
        config.load()
        scope = {
            "type": "http",
            "client": ("127.0.0.1", 5000),
            "headers": [(b"x-forwarded-for", b"203.0.113.9")],
            "scheme": "http",
        }
        # In a thread of its own: a browser test's playwright (sync API) may hold an event
        # loop running in this thread when the tests share a process.
        worker = threading.Thread(target=asyncio.run, args=(config.loaded_app(scope, None, None),))
        worker.start()
        worker.join()
        assert seen[-1][0] == expected
