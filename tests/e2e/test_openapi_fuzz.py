"""Property-based fuzzing of a real serve process's HTTP API against its own /openapi.json.

Schemathesis generates requests from the schema the server publishes and checks every
answer: no 5xx, a documented status code, a documented content type and a body that
matches the documented model. Each operation is one subtest; every pass is bounded by
Hypothesis settings (at most 30 requests per operation and pass):

- any valid input, and any invalid input (3-10 per operation), with the token: random
  names mostly reach the 404/422 paths;
- the real deployment and a real run pinned in the path, with the token: the mutating
  calls (pause, resume, runs, cancel, a run's tags) really act;
- the mutating calls (POST, PATCH, DELETE) without the token: every one must answer a
  documented 401.

`POST /api/shutdown` is left out: it would stop the server under test.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from tests.helpers import dockyard_env, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow
FLOWS = Path(__file__).parent / "flows"
TOKEN = "fuzz-token-8c1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BOUNDED = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
REQUEST_TIMEOUT = 10  # seconds; a request that takes longer fails the test
RUNS = "/api/deployments/{flow}/{deployment}/runs"


class Api:
    """The serve process under test and the ids of real things in it."""

    def __init__(self, url: str, openapi: dict[str, Any], run_id: str) -> None:
        self.url = url
        self.run_id = run_id
        config = SchemathesisConfig.from_dict({"base-url": url, "request-timeout": REQUEST_TIMEOUT})
        self.schema = schemathesis.openapi.from_dict(openapi, config=config)

    def operations(self, method: str | None = None) -> list[Any]:
        """The operations to fuzz (all but /api/shutdown, which would stop the server)."""
        schema = self.schema.exclude(path="/api/shutdown")
        if method is not None:
            schema = schema.include(method=method)
        return [result.ok() for result in schema.get_all_operations()]

    @property
    def known_names(self) -> dict[str, str]:
        return {"flow": "hello", "deployment": "hello", "run_id": self.run_id}


def call_and_check(case: Any, headers: dict[str, str] | None) -> Any:
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response


def check_fuzzed(
    subtests: Any,
    operation: Any,
    strategy: Any,
    *,
    headers: dict[str, str] | None = None,
    max_examples: int = 30,
    expect_status: int | None = None,
) -> None:
    """Send generated requests; a failing check fails this operation's subtest."""

    @settings(BOUNDED, max_examples=max_examples)
    @given(case=strategy)
    def check(case: Any) -> None:
        response = call_and_check(case, headers)
        if expect_status is not None:
            assert response.status_code == expect_status, (
                f"{case.as_curl_command()}\n{response.status_code} {response.text}"
            )

    with subtests.test(msg=operation.label):
        check()


def has_inputs(operation: Any) -> bool:
    """Whether invalid input can be generated for it (not for an operation that takes none)."""
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.body))


def pinned(operation: Any, values: dict[str, str]) -> dict[str, str]:
    names = {parameter.name for parameter in operation.path_parameters}
    return {name: value for name, value in values.items() if name in names}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(FLOWS, tmp_path / "flows")
    args = ["flows/behaviours.py:hello", "--interval", "3600", "--limit", "2"]
    env = dockyard_env(DOCKYARD_API_TOKEN=TOKEN)
    with serve_process(args, tmp_path, env=env) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, headers=AUTH) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            created = client.post("/api/deployments/hello/hello/runs", json={"parameters": {}})
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            wait_for(
                lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "Completed",
                what="the seed run to complete",
            )
            openapi = client.get("/openapi.json").json()
        yield Api(url, openapi, run_id)
        assert served.process.poll() is None, "the serve process died while being fuzzed"
        served.signal(signal.SIGTERM)
        assert served.wait_exit(timeout=30) == 0, served.output()[-4000:]


def test_any_valid_input_is_answered_as_documented(api, subtests):
    for operation in api.operations():
        check_fuzzed(subtests, operation, operation.as_strategy(), headers=AUTH)


def test_any_invalid_input_is_answered_as_documented(api, subtests):
    # Fewer examples: generating invalid names (over 200 characters of any Unicode) costs
    # Hypothesis 0.5-3 s each on a busy 2-core machine, and a path-only operation has
    # little else to vary.
    for operation in filter(has_inputs, api.operations()):
        strategy = operation.as_strategy(GenerationMode.NEGATIVE)
        examples = 10 if len(operation.query) or len(operation.body) else 3
        check_fuzzed(subtests, operation, strategy, headers=AUTH, max_examples=examples)


def test_real_deployment_and_run_are_answered_as_documented(api, subtests):
    for operation in api.operations():
        strategy = operation.as_strategy(path_parameters=pinned(operation, api.known_names))
        check_fuzzed(subtests, operation, strategy, headers=AUTH)


def test_mutating_calls_without_the_token_are_refused(api, subtests):
    mutating = [op for method in ("POST", "PATCH", "DELETE") for op in api.operations(method)]
    assert any(op.method.upper() == "PATCH" for op in mutating)  # PATCH /api/runs/{run_id}
    assert any(op.method.upper() == "DELETE" for op in mutating)  # DELETE a deployment
    for operation in mutating:
        strategy = operation.as_strategy(path_parameters=pinned(operation, api.known_names))
        check_fuzzed(subtests, operation, strategy, max_examples=10, expect_status=401)


# ── the known bugs, one request each ──────────────────────────────────────────────────


def documented_statuses(api: Api, method: str, path: str) -> set[str]:
    return set(api.schema.raw_schema["paths"][path][method.lower()]["responses"])


def test_unknown_state_filter_gets_a_documented_status(api):
    response = httpx.get(f"{api.url}/api/runs", params={"state": "bogus"}, timeout=10)
    assert response.status_code < 500
    assert str(response.status_code) in documented_statuses(api, "GET", "/api/runs"), (
        f"{response.status_code} {response.text}"
    )


def test_unparsable_body_gets_a_documented_status(api):
    response = httpx.post(
        f"{api.url}/api/deployments/hello/hello/runs",
        content=b"\xff",
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code < 500
    assert str(response.status_code) in documented_statuses(api, "POST", RUNS), (
        f"{response.status_code} {response.text}"
    )


@pytest.mark.parametrize(
    "value", ["2026-12-01", "2026-12-01T00:00:00", "0001-01-01T00:00:00+01:00"]
)
def test_a_time_filter_without_an_offset_gets_a_documented_status(api, value):
    response = httpx.get(f"{api.url}/api/runs", params={"since": value}, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "since"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"parameters": {"name": "\\ud800"}}',
        b'{"parameters": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}',
    ],
    ids=["lone-surrogate", "2-MiB"],
)
def test_hostile_parameters_get_a_documented_status_and_start_nothing(api, body):
    before = httpx.get(f"{api.url}/api/runs", timeout=10).json()["total"]
    response = httpx.post(
        f"{api.url}/api/deployments/hello/hello/runs",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert 400 <= response.status_code < 500, response.text
    assert str(response.status_code) in documented_statuses(api, "POST", RUNS)
    assert response.json()["detail"]
    assert httpx.get(f"{api.url}/api/runs", timeout=10).json()["total"] == before
