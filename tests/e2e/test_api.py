"""The webserver of a real serve process: probes, metrics, API, token rules."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable

import httpx
import pytest

from dockyard.client import Client
from dockyard.errors import ParameterError
from tests.helpers import dockyard_env, metric, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow


def test_api_run_completes_and_is_counted_in_metrics(project):
    args = ["flows/behaviours.py:hello", "--interval", "3600", "--param", "name=defaults"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            listed = client.get("/api/deployments").json()
            assert [d["name"] for d in listed] == ["hello/hello"]
            detail = client.get("/api/deployments/hello/hello").json()
            assert detail["parameters"] == {"name": "defaults"}
            assert set(detail["parameter_schema"]["properties"]) == {"name", "count"}
            assert len(detail["next_runs"]) == 5
            created = client.post(
                "/api/deployments/hello/hello/runs", json={"parameters": {"count": "2"}}
            )
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            assert created.json()["parameters"] == {"name": "defaults", "count": 2}
            done = wait_for(
                lambda: (
                    client.get(f"/api/runs/{run_id}").json()["state"] == "Completed"
                    and client.get(f"/api/runs/{run_id}").json()
                ),
                what="the API run to complete",
            )
            assert [h["state"] for h in done["history"]] == ["Pending", "Running", "Completed"]
            assert done["result"] == "said hello to defaults"
            logs = client.get(f"/api/runs/{run_id}/logs").json()["lines"]
            assert [entry["line"] for entry in logs] == ["hello defaults #0", "hello defaults #1"]
            tail = client.get(f"/api/runs/{run_id}/logs", params={"tail": 1}).json()["lines"]
            assert len(tail) == 1
            metrics = client.get("/metrics").text
            assert (
                metric(
                    metrics, "dockyard_flow_runs_total", deployment="hello/hello", state="Completed"
                )
                == 1.0
            )
            assert (
                metric(metrics, "dockyard_flow_runs_in_progress", deployment="hello/hello") == 0.0
            )
            assert metric(metrics, "dockyard_runner_limit") == 5.0
            assert metric(metrics, "dockyard_deployment_paused", deployment="hello/hello") == 0.0
            assert "dockyard_flow_run_duration_seconds_count" in metrics
            assert "process_resident_memory_bytes" in metrics
            assert run_id not in metrics  # run ids are never labels
            runs = client.get(
                "/api/runs", params={"deployment": "hello/hello", "state": "completed"}
            ).json()
            assert runs["total"] == 1 and runs["runs"][0]["id"] == run_id
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def test_wrong_parameter_type_is_422_naming_the_field(project):
    args = ["flows/behaviours.py:hello", "--interval", "3600"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            bad = client.post(
                "/api/deployments/hello/hello/runs", json={"parameters": {"count": "many"}}
            )
            assert bad.status_code == 422
            body = bad.json()
            assert body["errors"][0]["loc"] == ["body", "parameters", "count"]
            assert "count" in body["detail"]
            unknown = client.post(
                "/api/deployments/hello/hello/runs", json={"parameters": {"colour": 1}}
            )
            assert unknown.status_code == 422 and "colour" in unknown.json()["detail"]
            missing = client.post("/api/deployments/nope/nothing/runs", json={})
            assert missing.status_code == 404 and "hello/hello" in missing.json()["detail"]
            assert client.get("/api/runs/ffffffffffff").status_code == 404
            bad_state = client.get("/api/runs", params={"state": "bogus"})
            assert bad_state.status_code == 422
            assert bad_state.json()["errors"][0]["loc"] == ["query", "state", 0]
            assert client.get("/api/runs").json()["total"] == 0  # nothing was created
        served.signal(signal.SIGTERM)
        served.wait_exit()


def test_cancel_ends_a_running_30s_flow(project):
    args = ["flows/behaviours.py:sleeper", "--interval", "3600"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            run_id = client.post(
                "/api/deployments/sleeper/sleeper/runs", json={"parameters": {"seconds": 30}}
            ).json()["id"]
            wait_for(
                lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "Running",
                what="running",
            )
            assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
            final = wait_for(
                lambda: (
                    (r := client.get(f"/api/runs/{run_id}").json())["state"] == "Cancelled" and r
                ),
                timeout=10,
                what="cancelled",
            )
            assert final["state_message"] == "cancelled through the API"
            assert final["duration_seconds"] < 30
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def test_ready_is_503_while_draining_and_health_stays_200(project):
    args = ["flows/behaviours.py:sleeper", "--interval", "3600", "--shutdown-grace", "5"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=5) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            run_id = client.post(
                "/api/deployments/sleeper/sleeper/runs", json={"parameters": {"seconds": 60}}
            ).json()["id"]
            wait_for(
                lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "Running",
                what="running",
            )
            served.signal(signal.SIGTERM)
            ready = wait_for(
                lambda: (r := client.get("/ready")).status_code == 503 and r, what="503"
            )
            assert ready.json()["status"] == "draining"
            seen_health = []
            while served.process.poll() is None:
                try:
                    seen_health.append(client.get("/health").status_code)
                except httpx.TransportError:
                    break  # the server is closing at the very end of the drain
        assert served.wait_exit() == 0
    assert seen_health and set(seen_health) == {200}


def test_mutating_calls_need_a_token_beyond_loopback(project):
    args = ["flows/behaviours.py:noop", "--interval", "3600", "--host", "0.0.0.0"]
    with serve_process(args, project) as served:
        port = webserver_url(served).rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            for path in (
                "/api/deployments/noop/noop/pause",
                "/api/deployments/noop/noop/runs",
                "/api/shutdown",
            ):
                answer = client.post(path, json={})
                assert answer.status_code == 403, path
                assert "DOCKYARD_API_TOKEN" in answer.json()["detail"]
            assert client.get("/api/deployments").status_code == 200  # reads stay open
            assert client.get("/metrics").status_code == 200
        served.signal(signal.SIGTERM)
        served.wait_exit()


def test_token_is_required_compared_and_never_logged(project):
    token = "s3cret-token-value-42"
    env = dockyard_env(DOCKYARD_API_TOKEN=token)
    args = ["flows/behaviours.py:noop", "--interval", "3600", "--host", "0.0.0.0"]
    with serve_process(args, project, env=env) as served:
        port = webserver_url(served).rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            assert client.post("/api/deployments/noop/noop/pause").status_code == 401
            wrong = client.post(
                "/api/deployments/noop/noop/pause", headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401 and token not in wrong.text
            ok = client.post(
                "/api/deployments/noop/noop/pause", headers={"Authorization": f"Bearer {token}"}
            )
            assert ok.status_code == 200 and ok.json()["paused"] is True
            assert token not in client.get("/metrics").text
            shut = client.post("/api/shutdown", headers={"Authorization": f"Bearer {token}"})
            assert shut.status_code == 202
        assert served.wait_exit() == 0  # the API shutdown drained like SIGTERM
    assert token not in served.output()


def test_token_file_is_reread_so_rotation_works(project):
    secret = project / "token"
    secret.write_text("first-token\n")
    env = dockyard_env(DOCKYARD_API_TOKEN_FILE=str(secret))
    args = ["flows/behaviours.py:noop", "--interval", "3600"]
    with serve_process(args, project, env=env) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            first = {"Authorization": "Bearer first-token"}
            assert client.post("/api/deployments/noop/noop/pause", headers=first).status_code == 200
            secret.write_text("second-token\n")
            assert (
                client.post("/api/deployments/noop/noop/resume", headers=first).status_code == 401
            )
            second = {"Authorization": "Bearer second-token"}
            assert (
                client.post("/api/deployments/noop/noop/resume", headers=second).status_code == 200
            )
        served.signal(signal.SIGTERM)
        served.wait_exit()


def test_port_taken_fails_the_start_with_a_clear_error(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "dockyard",
                "serve",
                "flows/behaviours.py:noop",
                "--interval",
                "60",
                "--port",
                str(port),
                "--state",
                str(project / "state.db"),
            ],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            env=dockyard_env(),
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_follow_streams_logs_until_the_run_ends(project):
    args = ["flows/behaviours.py:hello", "--interval", "3600"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            run_id = client.post(
                "/api/deployments/hello/hello/runs", json={"parameters": {"count": 3}}
            ).json()["id"]
            with client.stream(
                "GET", f"/api/runs/{run_id}/logs", params={"follow": "true"}
            ) as stream:
                import json

                items = [json.loads(line) for line in stream.iter_lines() if line]
        assert items[-1] == {"end": True, "state": "Completed"}
        assert [i["line"] for i in items[:-1]][-1].endswith("hello world #2")
        served.signal(signal.SIGTERM)
        served.wait_exit()


def test_health_before_the_first_tick_is_503_with_a_reason():
    from dockyard.service.lifecycle import ServeService
    from dockyard.settings import load_settings

    service = ServeService([], load_settings({}))
    body = service.ops.health()
    assert body.status == "starting" and "not ticked" in body.reason


@pytest.mark.parametrize(
    ("call", "env", "expect_server"),
    [
        ("hello.serve(name='py', webserver=True)", {}, True),
        ("hello.serve(name='py')", {"DOCKYARD_WEBSERVER": "true"}, True),
        ("hello.serve(name='py')", {}, False),
    ],
)
def test_python_serve_starts_the_webserver_only_when_asked(project, call, env, expect_server):
    script = project / "serve_it.py"
    script.write_text(
        f"from flows.behaviours import hello\n\nif __name__ == '__main__':\n    {call}\n"
    )
    out = project / "out.log"
    full_env = dockyard_env(DOCKYARD_STATE=str(project / "state.db"), **env)
    with open(out, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(script)], cwd=project, env=full_env, stdout=sink, stderr=sink
        )
    try:
        wait_for(lambda: "serving 1 deployment" in out.read_text(), what="startup")
        listening = "webserver listening" in out.read_text()
        assert listening is expect_server
        if expect_server:
            port = out.read_text().split("webserver listening on http://127.0.0.1:")[1].split()[0]
            health = f"http://127.0.0.1:{port}/health"
            wait_for(lambda: httpx.get(health, timeout=5).status_code == 200, what="healthy")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_runs_do_not_see_dockyard_secrets(project):
    token = "api-token-not-for-flows"
    env = dockyard_env(DOCKYARD_API_TOKEN=token, DOCKYARD_SOURCE_TOKEN="git-token-x")
    args = ["flows/behaviours.py:show_env", "--interval", "3600"]
    with serve_process(args, project, env=env) as served:
        url = webserver_url(served)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=10, headers=auth) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            for name in ("DOCKYARD_API_TOKEN", "DOCKYARD_SOURCE_TOKEN", "DOCKYARD_PORT"):
                client.post(
                    "/api/deployments/show-env/show-env/runs", json={"parameters": {"name": name}}
                )
            wait_for(lambda: len(served.completed()) == 3, what="three runs")
        served.signal(signal.SIGTERM)
        served.wait_exit()
    out = served.output()
    assert "DOCKYARD_API_TOKEN=None" in out and "DOCKYARD_SOURCE_TOKEN=None" in out
    assert "DOCKYARD_PORT='0'" in out  # ordinary settings still reach flows
    assert token not in out


LOCK_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()  # hold the lock until the test says so
db.execute("COMMIT")
"""


@pytest.mark.timeout(360)
def test_a_locked_database_is_survived_and_reported(project):
    args = ["flows/behaviours.py:noop", "--interval", "1"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_for(lambda: served.completed(), what="a first run")
            holder = subprocess.Popen(
                [sys.executable, "-c", LOCK_HOLDER, str(served.state_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert holder.stdout.readline().strip() == "locked"
                ready = wait_for(
                    lambda: (r := client.get("/ready")).status_code == 503 and r.json(),
                    what="readiness to report the store",
                )
                # Either the store ping times out behind the blocked write, or the tick failed.
                assert ready["reason"].startswith(("state store unreachable", "scheduling fails"))
                assert client.get("/health").status_code == 200  # alive, just blocked
                # Every store call waits out SQLite's 10 s busy timeout in turn on the one
                # database thread; the tick's write queues behind heartbeats, log flushes and
                # run-end retries, so on a loaded machine its failure comes late.
                wait_for(
                    lambda: "scheduling failed, retrying" in served.output(),
                    timeout=150,
                    what="the failed tick to be logged",
                )
                assert "locked" in served.output()
                assert client.get("/health").status_code == 200
            finally:
                holder.communicate("release\n", timeout=30)
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready again")
            before = len(served.completed())
            wait_for(lambda: len(served.completed()) > before, what="runs after the lock")
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
    assert "scheduling works again" in served.output()


def _raw_request(port: int, head: bytes, chunks: Iterable[bytes] = ()) -> tuple[bytes, int]:
    """Send ``head``, then chunks until the server answers; the answer and the chunks sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # answered before the body was all sent
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer, sent


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_body_larger_than_the_limit_is_refused_before_it_is_sent(project):
    args = ["flows/behaviours.py:hello", "--interval", "3600"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        port = int(url.rsplit(":", 1)[1])
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            head = (
                b"POST /api/deployments/hello/hello/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 209715200\r\n\r\n"
            )
            answer, _ = _raw_request(port, head)  # not one byte of the 200 MB is sent
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            assert b"request body larger than 1048576 bytes" in answer
            chunked = head.replace(b"Content-Length: 209715200", b"Transfer-Encoding: chunked")
            chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"  # 64 KiB a chunk, 3200 of them
            answer, sent = _raw_request(port, chunked, (chunk for _ in range(3200)))
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            assert sent < 3200 // 2  # the server stopped reading long before 200 MB
            assert client.get("/api/runs").json()["total"] == 0
            assert client.get("/health").status_code == 200
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def test_browser_requests_are_refused_and_dockyards_client_still_works(project):
    args = ["flows/behaviours.py:hello", "--interval", "3600"]
    with serve_process(args, project) as served:
        url = webserver_url(served)
        runs, pause = "/api/deployments/hello/hello/runs", "/api/deployments/hello/hello/pause"
        with httpx.Client(base_url=url, timeout=10) as browser:
            wait_for(lambda: browser.get("/ready").status_code == 200, what="ready")
            rebound = {"Host": "attacker.example:8080"}  # DNS rebinding: the page's own name
            assert browser.get("/api/runs", headers=rebound).status_code == 421
            assert browser.post(pause, headers=rebound).status_code == 421
            assert browser.get("/health", headers=rebound).status_code == 200  # probes: any Host
            plain = {"Content-Type": "text/plain"}
            assert (
                browser.post(runs, content=b'{"parameters": {}}', headers=plain).status_code == 415
            )
            assert browser.post("/api/shutdown", content=b"x", headers=plain).status_code == 415
            foreign = {"Origin": "http://attacker.example"}
            assert browser.post(runs, json={"parameters": {}}, headers=foreign).status_code == 403
            assert browser.post("/api/shutdown", headers=foreign).status_code == 403
            assert browser.get("/api/runs").json()["total"] == 0
        with Client(url) as client:  # what the CLI uses: JSON bodies, no Origin
            assert client.pause("hello/hello")["paused"] is True
            assert client.resume("hello/hello")["paused"] is False
            run = client.create_run("hello/hello", {"count": 1})
            assert client.list_runs(since="2020-01-01T00:00:00Z")["total"] == 1
            with pytest.raises(ParameterError, match="needs a UTC offset"):
                client.list_runs(since="2020-01-01")
            wait_for(lambda: client.get_run(run["id"])["state"] == "Completed", what="the run")
        assert served.process.poll() is None
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0


def test_request_and_parameter_limits_and_allowed_hosts_come_from_settings(project):
    args = ["flows/behaviours.py:hello", "--interval", "3600"]
    env = dockyard_env(
        DOCKYARD_MAX_REQUEST_BYTES="4096",
        DOCKYARD_MAX_PARAMETER_BYTES="2048",
        DOCKYARD_ALLOWED_HOSTS="dockyard.internal",
    )
    with serve_process(args, project, env=env) as served:
        url = webserver_url(served)
        runs = "/api/deployments/hello/hello/runs"
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, what="ready")
            big = client.post(runs, json={"parameters": {"name": "x" * 5000}})
            assert big.status_code == 413
            assert "request body larger than 4096 bytes" in big.json()["detail"]
            large = client.post(runs, json={"parameters": {"name": "x" * 3000}})
            assert large.status_code == 422
            assert large.json()["errors"][0]["loc"][:3] == ["body", "parameters", "name"]
            named = {"Host": "dockyard.internal:8080"}
            assert client.get("/api/runs", headers=named).status_code == 200
            assert client.get("/api/runs", headers={"Host": "other.example"}).status_code == 421
            assert client.get("/api/runs").json()["total"] == 0
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
