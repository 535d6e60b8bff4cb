"""The ``deployment`` and ``run`` commands as HTTP clients of a real `dockyard serve`.

Every test runs the real CLI as a subprocess against a serve process listening on a free
loopback port; every wait is bounded.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import Served, dockyard_env, serve_process, wait_for

pytestmark = pytest.mark.slow
FLOWS = Path(__file__).parent / "flows"
CLI_TIMEOUT_SECONDS = 60
SECRET = "secret-token-123"
CONFIG = """\
deployments:
  - {entrypoint: "flows/behaviours.py:hello", name: hello}
  - {entrypoint: "flows/behaviours.py:fails", name: fails}
  - {entrypoint: "flows/behaviours.py:sleeper", name: sleeper}
  - {entrypoint: "flows/behaviours.py:slow_talker", name: talker}
  - {entrypoint: "flows/behaviours.py:noop", name: quiet, tags: [nightly]}
"""


@dataclass
class Server:
    served: Served
    url: str

    def run_state(self, run_id: str) -> str:
        return str(httpx.get(f"{self.url}/api/runs/{run_id}", timeout=5).json()["state"])


def start(tmp: Path, **env: str) -> Iterator[Server]:
    shutil.copytree(FLOWS, tmp / "flows")
    (tmp / "dockyard.yaml").write_text(CONFIG)
    with serve_process(["--config", "dockyard.yaml"], tmp, env=dockyard_env(**env)) as served:
        url = wait_for(lambda: _listening(served), timeout=30, what="the webserver")
        wait_for(lambda: _ready(url), timeout=30, what="/ready")
        yield Server(served, url)


def _listening(served: Served) -> str | None:
    output = served.output()
    if served.process.poll() is not None:
        raise AssertionError(f"serve exited early:\n{output}")
    found = re.search(r"webserver listening on (http://127\.0\.0\.1:\d+)", output)
    return found.group(1) if found else None


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("remote"))


def dockyard(*args: str, url: str | None = None, token: str | None = None):
    extra = {"COLUMNS": "200"}
    if url:
        extra["DOCKYARD_URL"] = url
    if token:
        extra["DOCKYARD_API_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=dockyard_env(**extra),
    )


def error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single ``dockyard: error: …`` line of a failed command, without the prefix."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: error: ")
    return lines[0].removeprefix("dockyard: error: ")


def started_run(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["id"])


# -- deployments --------------------------------------------------------------------------


def test_deployment_ls_and_inspect(server: Server) -> None:
    listed = dockyard("deployment", "ls", url=server.url)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "quiet" in line)
    assert "noop/quiet" in row and "active" in row and "nightly" in row
    as_json = json.loads(dockyard("deployment", "ls", "--json", url=server.url).stdout)
    assert {d["name"] for d in as_json} == {
        "hello/hello",
        "fails/fails",
        "sleeper/sleeper",
        "slow-talker/talker",
        "noop/quiet",
    }

    shown = dockyard("deployment", "inspect", "hello/hello", "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert "flows/behaviours.py:hello" in shown.stdout
    assert 'name: string = "world", count: integer = 1' in shown.stdout
    detail = json.loads(
        dockyard("deployment", "inspect", "hello/hello", "--json", url=server.url).stdout
    )
    assert set(detail["parameter_schema"]["properties"]) == {"name", "count"}


def test_pause_and_resume_show_in_ls(server: Server) -> None:
    paused = dockyard("deployment", "pause", "noop/quiet", url=server.url)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == "noop/quiet: paused (user)"
    listed = dockyard("deployment", "ls", url=server.url).stdout
    assert re.search(r"noop/quiet .* paused \(user\)", listed), listed

    resumed = dockyard("deployment", "resume", "noop/quiet", "--json", url=server.url)
    assert json.loads(resumed.stdout)["paused"] is False
    listed = dockyard("deployment", "ls", url=server.url).stdout
    assert re.search(r"noop/quiet .* active", listed), listed


def test_unknown_deployment_is_exit_1(server: Server) -> None:
    result = dockyard("deployment", "run", "nope/nope", url=server.url)
    message = error_line(result, 1)
    assert message.startswith("404: unknown deployment 'nope/nope'")
    assert "hello/hello" in message  # the server lists what it serves
    assert error_line(dockyard("deployment", "inspect", "nope/nope", url=server.url), 1)


# -- runs ---------------------------------------------------------------------------------


def test_run_watch_streams_and_exits_0_when_completed(server: Server) -> None:
    args = ["deployment", "run", "hello/hello", "--param", "name=dock", "--param", "count=3"]
    result = dockyard(*args, "--watch", url=server.url)
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    run_id = re.match(r"run (\w+) of hello/hello", lines[0]).group(1)  # type: ignore[union-attr]
    assert lines[1:4] == ["hello dock #0", "hello dock #1", "hello dock #2"]
    assert lines[-1] == f"run {run_id} ended Completed"

    listed = dockyard("run", "ls", "--deployment", "hello/hello", url=server.url)
    shown = json.loads(dockyard("run", "inspect", run_id[:8], "--json", url=server.url).stdout)
    assert re.fullmatch(r"[a-z]+-[a-z]+", shown["name"])  # named from its id, as in Prefect
    pattern = rf"{run_id[:8]}\s+hello/hello\s+{shown['name']}\s+Completed"
    assert re.search(pattern, listed.stdout), listed.stdout
    assert shown["parameters"] == {"name": "dock", "count": 3}  # coerced by the server


def test_run_watch_exits_1_when_the_flow_fails(server: Server) -> None:
    result = dockyard("deployment", "run", "fails/fails", "--watch", url=server.url)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "about to fail: asked to fail" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("ended Failed: RuntimeError: asked to fail")


def test_wrong_parameter_type_is_exit_2_naming_the_field(server: Server) -> None:
    result = dockyard("deployment", "run", "hello/hello", "--param", "count=many", url=server.url)
    message = error_line(result, 2)
    assert message.startswith("422: ") and "count" in message and "integer" in message


def test_run_without_a_url_says_how_to_give_one() -> None:
    message = error_line(dockyard("deployment", "run", "hello/hello"), 2)
    assert "--url" in message and "DOCKYARD_URL" in message
    assert "--url" in error_line(dockyard("run", "cancel", "abcdef"), 2)
    assert "--url" in error_line(dockyard("run", "logs", "abcdef", "--follow"), 2)


def test_cancel_a_sleeper(server: Server) -> None:
    args = ["deployment", "run", "sleeper/sleeper", "--param", "seconds=30", "--json"]
    run_id = started_run(dockyard(*args, url=server.url))
    wait_for(lambda: server.run_state(run_id) == "Running", timeout=20, what="Running")

    cancelled = dockyard("run", "cancel", run_id, url=server.url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"run {run_id}: cancel requested" in cancelled.stdout
    wait_for(lambda: server.run_state(run_id) == "Cancelled", timeout=20, what="Cancelled")


def test_logs_follow_ends_when_the_run_ends(server: Server) -> None:
    args = ["deployment", "run", "slow-talker/talker", "--param", "lines=6", "--json"]
    run_id = started_run(dockyard(*args, url=server.url))

    followed = dockyard("run", "logs", run_id, "--follow", url=server.url)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == [f"talk {i}" for i in range(6)]
    assert followed.stderr.strip() == "run ended Completed"
    assert server.run_state(run_id) == "Completed"

    tail = dockyard("run", "logs", run_id, "--tail", "2", url=server.url)
    assert tail.stdout.splitlines() == ["talk 4", "talk 5"]


# -- token and reachability ---------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("guarded"), DOCKYARD_API_TOKEN=SECRET)


def test_token_is_required_and_never_printed(guarded: Server) -> None:
    results = []

    def cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        results.append(dockyard(*args, url=guarded.url, token=token))
        return results[-1]

    message = error_line(cli("deployment", "pause", "noop/quiet"), 1)
    assert message.startswith("401: missing or wrong token")
    assert error_line(cli("deployment", "pause", "noop/quiet", token="wrong"), 1).startswith("401")
    assert cli("deployment", "ls").returncode == 0  # reading needs no token

    assert cli("deployment", "pause", "noop/quiet", token=SECRET).returncode == 0
    assert cli("deployment", "resume", "noop/quiet", token=SECRET).returncode == 0
    watched = cli("deployment", "run", "hello/hello", "--watch", token=SECRET)
    assert watched.returncode == 0 and "hello world #0" in watched.stdout
    debug = cli("deployment", "run", "nope/nope", "--debug", token=SECRET)
    assert debug.returncode == 1 and "Traceback" in debug.stderr

    for result in results:
        assert SECRET not in result.stdout + result.stderr
    guarded.served.signal(signal.SIGTERM)
    assert guarded.served.wait_exit(timeout=30) == 0
    assert SECRET not in guarded.served.output()


def test_unreachable_url_is_one_line() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    message = error_line(dockyard("deployment", "ls", "--url", url), 1)
    assert message == (
        f"cannot reach the serve process at {url} (connection refused); "
        "is it running? set --url or DOCKYARD_URL"
    )
    assert error_line(dockyard("run", "ls", url=url, token=SECRET), 1) == message
