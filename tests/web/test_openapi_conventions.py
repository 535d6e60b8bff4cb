"""What HTTP clients, generated clients and scrapers expect, against a real serve process.

One ``dockyard serve`` (a token, no run limit, DOCKYARD_BUILD_REVISION set, 10 stored log
lines at most) serves the flows below; the module's fixture runs each once to its end.
Every test reads its /openapi.json, its HTTP answers or its /metrics page.
"""

from __future__ import annotations

import gzip
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from dockyard import __version__
from dockyard.core.states import TERMINAL, RunState
from dockyard.metrics import TASK_RUN_TERMINAL_STATES, Metrics
from tests.helpers import (
    dockyard_env,
    metric,
    require_prometheus_tool,
    serve_process,
    wait_for,
    webserver_url,
)

TOKEN = "conventions-token-5e1f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVISION = "0123456789abcdef0123456789abcdef01234567"
PROMETHEUS_ACCEPT = (  # what Prometheus 2.x sends when it scrapes
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
OPENMETRICS = "application/openmetrics-text"
PROMTOOL = Path("/usr/bin/promtool")
FLOWS = """\
from dockyard import flow


@flow
def answer():
    return {"rows": 3, "names": ["a", "b"], "pair": (1, 2), "ratio": 0.5, "ok": True}


@flow
def opaque():
    return {3, 1, 2}


@flow
def silent():
    return None


@flow
def fails():
    raise ValueError("bad day")


@flow
def chatty(lines: int = 25):
    for i in range(lines):
        print(f"line {i}", flush=True)
"""
NAMES = ["answer", "opaque", "silent", "fails", "chatty", "idle"]
CONFIG = "deployments:\n" + "".join(
    f"  - entrypoint: flows.py:{'silent' if name == 'idle' else name}\n    name: {name}\n"
    for name in NAMES
)
STARTED = [name for name in NAMES if name != "idle"]  # silent/idle never runs
MUTATING = {"post", "patch", "put", "delete"}
ARGS = ["--config", "dockyard.yaml", "--limit", "0"]  # 0: no limit


@dataclass
class Server:
    url: str
    openapi: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    """Deployment name → its run, ended."""

    def get(self, path: str, **options: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **options)

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.openapi["paths"].items():
            for method, operation in item.items():
                yield method, path, operation

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return dict(self.openapi["paths"][path][method])

    def schema(self, name: str) -> dict[str, Any]:
        return dict(self.openapi["components"]["schemas"][name])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("conventions")
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "dockyard.yaml").write_text(CONFIG)
    env = dockyard_env(
        DOCKYARD_API_TOKEN=TOKEN, DOCKYARD_BUILD_REVISION=REVISION, DOCKYARD_MAX_LOG_LINES="10"
    )
    with serve_process(ARGS, tmp_path, env=env) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10, headers=AUTH) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            started = {}
            for name in STARTED:
                created = client.post(f"/api/deployments/{name}/{name}/runs", json={})
                assert created.status_code == 201, created.text
                started[name] = created.json()["id"]

            def ended(run_id: str) -> dict[str, Any] | None:
                run = client.get(f"/api/runs/{run_id}").json()
                return run if run["state"] in {s.value for s in TERMINAL} else None

            runs = {name: wait_for(lambda i=i: ended(i), what=f"{name} to end")
                    for name, i in started.items()}  # fmt: skip
            openapi = client.get("/openapi.json").json()
        yield Server(url, openapi, runs)
        assert served.process.poll() is None, served.output()[-3000:]


# ── /openapi.json ───────────────────────────────────────────────────────────────────────
def test_every_operation_has_a_readable_unique_snake_case_id(server: Server) -> None:
    ids = [operation["operationId"] for _, _, operation in server.operations()]
    assert len(ids) == len(set(ids)), ids
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", i) for i in ids), ids
    named = {(method, path): op["operationId"] for method, path, op in server.operations()}
    assert named[("get", "/api/runs")] == "list_runs"
    assert named[("get", "/api/runs/{run_id}")] == "get_run"
    assert named[("post", "/api/deployments/{flow}/{deployment}/runs")] == "trigger_run"
    assert named[("post", "/api/runs/{run_id}/cancel")] == "cancel_run"
    assert named[("post", "/api/deployments/{flow}/{deployment}/pause")] == "pause_deployment"
    assert named[("get", "/api/runs/{run_id}/logs")] == "get_run_logs"
    assert named[("head", "/health")] == "head_health"
    assert named[("delete", "/api/deployments/{flow}/{deployment}")] == "delete_deployment"


def test_the_bearer_scheme_is_declared_on_the_routes_that_need_a_token(server: Server) -> None:
    schemes = server.openapi["components"]["securitySchemes"]
    assert list(schemes) == ["bearer"]
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    assert "DOCKYARD_API_TOKEN" in schemes["bearer"]["description"]
    for method, path, operation in server.operations():
        expected = [{"bearer": []}] if method in MUTATING else None
        assert operation.get("security") == expected, (method, path)


def test_the_routes_without_a_security_requirement_answer_without_a_token(server: Server) -> None:
    values = {"flow": "fails", "deployment": "fails", "run_id": server.runs["fails"]["id"]}
    for method, path, operation in server.operations():
        if "security" in operation:
            continue
        answer = httpx.request(method, server.url + path.format(**values), timeout=10)
        assert answer.status_code == 200, (method, path, answer.text)


def test_a_secured_route_refuses_a_missing_token_as_documented(server: Server) -> None:
    answer = httpx.post(f"{server.url}/api/deployments/fails/fails/pause", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    declared = server.operation("post", "/api/deployments/{flow}/{deployment}/pause")
    assert "401" in declared["responses"]


def test_run_states_are_an_enum_in_queries_and_answers(server: Server) -> None:
    assert server.schema("RunState")["enum"] == [state.value for state in RunState]
    state_ref = {"$ref": "#/components/schemas/RunState"}
    assert server.schema("RunSummary")["properties"]["state"] == state_ref
    assert server.schema("StateEventOut")["properties"]["state"] == state_ref
    (query,) = [
        p for p in server.operation("get", "/api/runs")["parameters"] if p["name"] == "state"
    ]
    assert {"type": "array", "items": state_ref} in query["schema"]["anyOf"]

    failed = server.get("/api/runs", params={"state": "failed"}).json()  # any case
    assert [run["id"] for run in failed["runs"]] == [server.runs["fails"]["id"]]
    refused = server.get("/api/runs", params={"state": ["Failed", "bogus"]})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["query", "state", 1]


def test_each_route_declares_the_errors_it_can_answer(server: Server) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return set(server.operation(method, path)["responses"])

    assert statuses("get", "/api/replicas") == {"200", "421", "503"}
    assert statuses("get", "/api/sources") == {"200", "421"}
    assert statuses("get", "/metrics") == {"200"}
    assert statuses("get", "/api/runs/{run_id}") == {"200", "400", "404", "421", "422", "503"}
    trigger = "/api/deployments/{flow}/{deployment}/runs"
    assert statuses("post", trigger) == {
        "201", "400", "401", "403", "404", "413", "415", "421", "422", "503"
    }  # fmt: skip
    problem = {"$ref": "#/components/schemas/Problem"}
    for method, path, operation in server.operations():
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")) and path.startswith("/api"):
                assert answer["content"]["application/json"]["schema"] == problem, (path, status)
                assert answer["description"], (method, path, status)


@pytest.mark.parametrize(
    ("method", "path", "options", "status"),
    [
        ("get", "/api/runs/no-such-run", {}, 404),
        ("get", "/api/runs", {"params": {"limit": 0}}, 422),
        ("get", "/api/runs", {"headers": {"Host": "rebound.example"}}, 421),
        ("post", "/api/deployments/fails/fails/runs", {"json": {"parameters": "none"}}, 422),
        ("post", "/api/deployments/fails/fails/runs", {"content": b"[" * (2 << 20)}, 413),
        ("post", "/api/deployments/fails/fails/runs", {"content": b"\xff"}, 400),
    ],
)
def test_an_error_answer_is_declared_and_has_the_declared_shape(
    server: Server, method: str, path: str, options: dict[str, Any], status: int
) -> None:
    headers = {**AUTH, "Content-Type": "application/json", **options.pop("headers", {})}
    answer = httpx.request(method, server.url + path, headers=headers, timeout=10, **options)
    assert answer.status_code == status, answer.text
    template = next(
        p for m, p, _ in server.operations() if m == method and re.fullmatch(_pattern(p), path)
    )
    assert str(status) in server.operation(method, template)["responses"]
    body = answer.json()
    assert set(body) == {"detail", "errors"} and body["detail"]
    assert all({"loc", "msg", "type"} <= set(error) for error in body["errors"])


def test_every_tag_has_a_description(server: Server) -> None:
    described = {tag["name"]: tag["description"] for tag in server.openapi["tags"]}
    used = {tag for _, _, operation in server.operations() for tag in operation["tags"]}
    assert used <= set(described) and all(described.values())


def test_metrics_declares_the_text_and_openmetrics_types(server: Server) -> None:
    content = server.operation("get", "/metrics")["responses"]["200"]["content"]
    assert set(content) == {"text/plain", OPENMETRICS}


def test_a_result_and_log_truncation_are_described_in_the_schema(server: Server) -> None:
    detail = server.schema("RunDetail")["properties"]
    assert "JSON" in detail["result"]["description"]
    assert "repr" in detail["result_repr"]["description"]
    assert detail["log_truncated"]["type"] == "boolean"
    assert detail["log_lines_dropped"]["type"] == "integer"


# ── docs pages ──────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_this_server(server: Server, page: str) -> None:
    answer = server.get(page)  # no token: the docs stay public
    assert answer.status_code == 200
    html = answer.text
    assert not re.search(r"(https?:)?//[a-z0-9]", html, re.IGNORECASE), html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith(".js") for asset in assets), html
    for asset in assets:
        assert urlsplit(asset).netloc == "" and asset.startswith("/"), asset
        assert server.get(asset).status_code == 200, asset


# ── HEAD ────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_head_answers_as_get_does_without_a_body(server: Server, path: str) -> None:
    get = server.get(path, headers={"Accept-Encoding": "identity"})
    status, headers, body = _raw_head(server.url, path)
    assert status == get.status_code == 200
    assert body == b""
    assert headers["content-type"] == get.headers["content-type"]
    assert int(headers["content-length"]) > 0


def _raw_head(url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """HEAD over a raw socket, read until the server closes: what it really sent."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    assert host is not None and port is not None
    request = f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n"
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall((request + "Connection: close\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body


# ── /metrics ────────────────────────────────────────────────────────────────────────────
def test_metrics_are_openmetrics_when_asked_and_text_otherwise(server: Server) -> None:
    text = server.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    for accept in (PROMETHEUS_ACCEPT, f"{OPENMETRICS}; version=1.0.0"):
        answer = server.get("/metrics", headers={"Accept": accept})
        assert answer.headers["content-type"].startswith(f"{OPENMETRICS}; version=1.0.0")
        assert answer.text.endswith("# EOF\n")
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {"dockyard_flow_runs", "dockyard_build_info"} <= names  # a strict parse


def test_metrics_are_gzipped_when_the_client_accepts_it(server: Server) -> None:
    with httpx.Client(timeout=10) as client:
        request = client.build_request("GET", server.url + "/metrics")
        request.headers["Accept-Encoding"] = "gzip"
        zipped = client.send(request, stream=True)
        raw = _raw(zipped)
    assert zipped.headers["content-encoding"] == "gzip"
    assert b"dockyard_build_info" in gzip.decompress(raw)
    plain = server.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def _raw(response: httpx.Response) -> bytes:
    """The bytes as sent (httpx would decode the gzip on read())."""
    data = b"".join(response.iter_raw())
    response.close()
    return data


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_metrics_have_no_created_series_and_no_limit_sentinel(
    server: Server, accept: str | None
) -> None:
    page = server.get("/metrics", headers={"Accept": accept} if accept else {}).text
    assert "_created" not in page
    assert "dockyard_runner_limit" not in page and "dockyard_runner_slots_available" not in page
    negative = [line for line in page.splitlines() if re.match(r"dockyard_\S+ -", line)]
    assert negative == []


def test_the_run_limit_series_exist_only_under_a_limit() -> None:
    metrics = Metrics()
    metrics.scheduler_state(tick_at=1.0, paused={}, next_fire={}, limit=None, running=2)
    assert "dockyard_runner_" not in metrics.render().decode()
    metrics.scheduler_state(tick_at=2.0, paused={}, next_fire={}, limit=3, running=2)
    page = metrics.render().decode()
    assert metric(page, "dockyard_runner_limit") == 3.0
    assert metric(page, "dockyard_runner_slots_available") == 1.0


def test_build_info_names_version_revision_and_python(server: Server) -> None:
    page = server.get("/metrics").text
    (line,) = [line for line in page.splitlines() if line.startswith("dockyard_build_info{")]
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert labels == {"version": __version__, "revision": REVISION,
                      "python": platform.python_version()}  # fmt: skip
    assert line.endswith(" 1.0")
    assert 'revision="unknown"' in Metrics().render().decode()  # a build that did not say


def test_terminal_state_series_exist_before_a_deployment_ever_ran(server: Server) -> None:
    page = server.get("/metrics").text
    for state in TERMINAL:
        labels = {"deployment": "silent/idle", "state": state.value}
        assert metric(page, "dockyard_flow_runs_total", **labels) == 0.0, state
    for name in TASK_RUN_TERMINAL_STATES:
        assert metric(page, "dockyard_task_runs_total", deployment="silent/idle", state=name) == 0
    assert metric(page, "dockyard_flow_runs_total", deployment="fails/fails", state="Failed") == 1


def test_promtool_finds_no_problem_in_the_real_metrics_page(server: Server) -> None:
    """promtool (Debian's 2.42) reads the text format only; the OpenMetrics page is checked
    by prometheus_client's strict parser above, and scraped by a real Prometheus in
    tests/e2e/test_prometheus.py."""
    promtool = require_prometheus_tool(PROMTOOL)
    page = server.get("/metrics").text
    completed = {"deployment": "answer/answer", "state": "Completed"}
    assert metric(page, "dockyard_flow_runs_total", **completed) == 1.0
    assert metric(page, "dockyard_flow_runs_total", deployment="fails/fails", state="Failed") == 1
    done = subprocess.run(
        [str(promtool), "check", "metrics"], input=page, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == ""


# ── runs ────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("name", "result", "result_repr"),
    [
        ("answer", {"rows": 3, "names": ["a", "b"], "pair": [1, 2], "ratio": 0.5, "ok": True},
         None),
        ("opaque", None, "{1, 2, 3}"),
        ("silent", None, None),
        ("fails", None, None),
    ],
)  # fmt: skip
def test_a_result_is_json_when_it_can_be_and_a_repr_otherwise(
    server: Server, name: str, result: Any, result_repr: str | None
) -> None:
    run = server.get(f"/api/runs/{server.runs[name]['id']}").json()
    assert (run["result"], run["result_repr"]) == (result, result_repr)


def test_log_truncated_is_a_boolean(server: Server) -> None:
    chatty = server.get(f"/api/runs/{server.runs['chatty']['id']}").json()
    assert chatty["log_truncated"] is True
    assert chatty["log_lines"] == 11  # 10, then the line that says the rest were dropped
    assert chatty["log_lines_dropped"] >= 15
    quiet = server.get(f"/api/runs/{server.runs['answer']['id']}").json()
    assert quiet["log_truncated"] is False and quiet["log_lines_dropped"] == 0


def test_the_cli_shows_a_result_as_json(server: Server) -> None:
    run_id = server.runs["answer"]["id"]
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "run", "inspect", run_id, "--url", server.url],
        capture_output=True, text=True, timeout=60, env=dockyard_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("result")]
    assert '{"rows": 3, "names": ["a", "b"], "pair": [1, 2]' in line


def _pattern(template: str) -> str:
    return re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
