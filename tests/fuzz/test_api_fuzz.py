"""Fuzzing every API operation in process with schemathesis (generated from the OpenAPI
document, authenticated as a clinic's owner): no input may cause a server error or show
a stack trace, and every response must match the documented schema. Bounded
(`MAX_EXAMPLES` per operation, derandomised) so the run stays well under a minute.

The database is a migrated SQLite file made for this module at collection time
(schemathesis parametrises from the schema before fixtures exist)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from needlepoint.actions.clinics import issue_operator_token
from needlepoint.adapters.db.engine import make_engine
from needlepoint.adapters.db.migrate import upgrade
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.web.app import create_app
from tests.conftest import make_clinic

MAX_EXAMPLES = 25

_DIR = tempfile.TemporaryDirectory(prefix="needlepoint-fuzz-")
ENGINE = make_engine(f"sqlite:///{Path(_DIR.name) / 'fuzz.db'}")
upgrade(ENGINE)
_CLINIC = make_clinic(ENGINE, "Fuzz Clinic")
AUTH = {
    "Authorization": "Bearer "
    + issue_operator_token(SqlUnitOfWork(ENGINE), _CLINIC.owner, "fuzz", source="test")
}
schema = schemathesis.openapi.from_asgi(
    "/api/v1/openapi.json", create_app(ENGINE, secret_key="fuzz-" + "x" * 40)
)
# Valid and deliberately invalid inputs (wrong types, out-of-range values, bad formats).
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_breaks_the_api(case: schemathesis.Case) -> None:
    headers = AUTH
    if case.operation.path == "/account/sign-out-everywhere":  # revokes the caller's tokens
        token = issue_operator_token(SqlUnitOfWork(ENGINE), _CLINIC.owner, "out", source="test")
        headers = {"Authorization": f"Bearer {token}"}
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    assert "Traceback" not in response.text
