"""Prefect 3's own example scripts run on dockyard with only their imports changed.

One test per ``[[script]]`` of tests/corpus/prefect/MANIFEST.toml (the manifest documents its
fields). Every script runs in a real subprocess, in a fresh directory with its own HOME, with
a deadline; served ones run under a real ``dockyard serve`` and are driven through its HTTP
API. Calls to public HTTP APIs are answered offline by tests/corpus/offline/sitecustomize.py.

An entry with ``xfail = "…"`` names a Prefect feature dockyard does not support; its test must
fail (a strict xfail: one that passes fails the run, so the mark goes when the feature lands).
``DOCKYARD_CORPUS_STRICT=1`` ignores those marks.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import TESTS, Served, dockyard_env, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow

CORPUS = TESTS / "corpus" / "prefect"
OFFLINE = TESTS / "corpus" / "offline"
SERVED = TESTS / "corpus" / "served"
ENTRIES: list[dict[str, Any]] = tomllib.loads((CORPUS / "MANIFEST.toml").read_text())["script"]
TERMINAL = {"Completed", "Failed", "Cancelled", "Crashed"}


@dataclass
class ScriptResult:
    """One run of a corpus script: what it printed, how it ended, what it asked of the web."""

    exit_code: int
    output: str
    elapsed: float
    http_log: list[tuple[float, str]]


# ---------------------------------------------------------------------------- the cases


def _cases() -> Iterator[Any]:
    strict = os.environ.get("DOCKYARD_CORPUS_STRICT") == "1"
    for entry in ENTRIES:
        marks = []
        if entry.get("xfail") and not strict:
            marks.append(pytest.mark.xfail(reason=entry["xfail"], strict=True))
        yield pytest.param(entry, id=entry["name"], marks=marks)


@pytest.mark.parametrize("entry", list(_cases()))
def test_prefect_script(entry: dict[str, Any], tmp_path: Path) -> None:
    deadline = time.monotonic() + entry["timeout"]
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(CORPUS / entry["file"], work / entry["file"])
    mode = entry["mode"]
    if mode == "script":
        results = [
            _run_script(entry["file"], work, _env(tmp_path, run), deadline)
            for run in range(entry.get("runs", 1))
        ]
        _check_script(entry, results)
    elif mode in ("serve-cli", "serve-script"):
        _check_served(entry, tmp_path, work, deadline)
    elif mode == "run-deployment":
        _check_run_deployment(entry, tmp_path, work, deadline)
    else:
        raise AssertionError(f"{entry['name']}: unknown mode {mode!r}")


def test_manifest_names_every_corpus_file_once() -> None:
    names = [entry["name"] for entry in ENTRIES]
    assert len(names) == len(set(names))
    listed = {entry["file"] for entry in ENTRIES}
    on_disk = {path.name for path in CORPUS.glob("*.py")}
    assert listed == on_disk
    for entry in ENTRIES:
        head = (CORPUS / entry["file"]).read_text().splitlines()[:5]
        assert head[0].startswith(f"# Source: {entry['repo']}, {entry['path']}"), entry["file"]
        assert entry["commit"] in head[1]
        assert "Imports changed from prefect to dockyard" in head[4]


def test_corpus_scripts_import_nothing_from_prefect() -> None:
    for path in CORPUS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] == "prefect"], path.name


# ---------------------------------------------------------------------------- scripts


def _env(tmp_path: Path, run: int = 0, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return dockyard_env(
        HOME=str(home),
        PYTHONPATH=str(OFFLINE),
        CORPUS_HTTP_LOG=str(tmp_path / f"http-{run}.log"),
        DOCKYARD_STATE=str(tmp_path / "state.db"),
        **extra,
    )


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise AssertionError("the test's deadline passed")
    return left


def _run_script(file: str, cwd: Path, env: dict[str, str], deadline: float) -> ScriptResult:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, file],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a timeout ends everything the script started
    )
    try:
        raw, _ = process.communicate(timeout=_remaining(deadline))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raw, _ = process.communicate()
        raise AssertionError(
            f"{file} did not finish by the deadline; its output:\n{_tail(raw.decode())}"
        ) from None
    elapsed = time.monotonic() - started
    log = Path(env["CORPUS_HTTP_LOG"])
    return ScriptResult(process.returncode, raw.decode(errors="replace"), elapsed, _http(log))


def _http(log: Path) -> list[tuple[float, str]]:
    if not log.exists():
        return []
    rows = [line.split(" ", 1) for line in log.read_text().splitlines()]
    return [(float(at), request) for at, request in rows]


def _tail(output: str, lines: int = 60) -> str:
    return "\n".join(output.splitlines()[-lines:])


def _check_script(entry: dict[str, Any], results: list[ScriptResult]) -> None:
    expect = entry["expect"]
    for run, result in enumerate(results):
        said = f"{entry['name']} (run {run + 1}) printed:\n{_tail(result.output)}"
        assert result.exit_code == expect["exit_code"], said
        _check_output(expect, result.output, said)
        if "http_requests" in expect:
            assert len(result.http_log) == expect["http_requests"][run], said
        if "check" in expect:
            CHECKS[expect["check"]](result)


def _check_output(expect: dict[str, Any], output: str, said: str) -> None:
    for text in expect.get("output", []):
        assert text in output, f"missing {text!r}; {said}"
    for text in expect.get("absent", []):
        assert text not in output, f"unexpected {text!r}; {said}"
    position = 0
    for text in expect.get("ordered", []):
        found = output.find(text, position)
        assert found >= 0, f"missing {text!r} after offset {position}; {said}"
        position = found + len(text)


# ---------------------------------------------------------------------------- extra checks


def _wait_timeout_split(result: ScriptResult) -> None:
    done = re.search(r"(?m)^Done: (\d+)\s*$", result.output)
    not_done = re.search(r"(?m)^Not Done: (\d+)\s*$", result.output)
    assert done and not_done, result.output
    assert int(done[1]) >= 1 and int(not_done[1]) >= 1
    assert int(done[1]) + int(not_done[1]) == 10


def _lovely_day_today(result: ScriptResult) -> None:
    now = datetime.now(UTC)
    days = {f"{now:%A}", f"{now - timedelta(seconds=result.elapsed + 5):%A}"}
    assert any(f"{day}-is-a-lovely-day" in result.output for day in days), result.output


def _retry_delays_3_and_9(result: ScriptResult) -> None:
    times = [at for at, _ in result.http_log]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(gaps) == 2, result.http_log
    assert 2.5 <= gaps[0] < 8.5 and gaps[1] >= 8.5, gaps


def _async_interleaved(result: ScriptResult) -> None:
    # The values are printed with end=" ", so log records land between them; sequential
    # tasks would print a b c d before 6 7 8 9.
    after = result.output.split("1 2 ", 1)[1]
    printed = re.sub(r"\d\d:\d\d:\d\d\.\d+ \|[^\n]*\n?", "", after)
    values = [char for char in printed if char in "abcd6789"]
    assert sorted(values) == sorted("abcd6789"), values
    assert values.index("6") < values.index("d"), values


def _elevator_concurrent(result: ScriptResult) -> None:
    # Ten tasks sleeping 1..10 s: about 10 s together, 55 s one after the other.
    assert result.elapsed < 40, result.elapsed


CHECKS: dict[str, Callable[[ScriptResult], None]] = {
    "wait_timeout_split": _wait_timeout_split,
    "lovely_day_today": _lovely_day_today,
    "retry_delays_3_and_9": _retry_delays_3_and_9,
    "async_interleaved": _async_interleaved,
    "elevator_concurrent": _elevator_concurrent,
}


# ---------------------------------------------------------------------------- served


def _check_served(entry: dict[str, Any], tmp_path: Path, work: Path, deadline: float) -> None:
    serve, expect = entry["serve"], entry["expect"]
    if entry["mode"] == "serve-cli":
        args = [serve["entrypoint"], *serve.get("args", [])]
        with serve_process(args, tmp_path, cwd=work, env=_env(tmp_path)) as served:
            _drive(served, serve, expect, deadline)
        return
    env = _env(tmp_path, DOCKYARD_WEBSERVER="true")
    with _script_serving(entry["file"], tmp_path, work, env) as served:
        _drive(served, serve, expect, deadline)


def _drive(
    served: Served, serve: dict[str, Any], expect: dict[str, Any], deadline: float
) -> dict[str, Any] | None:
    """Check the served deployment (and the run it starts or waits for); that run's detail."""
    url = webserver_url(served, timeout=_remaining(deadline))
    with httpx.Client(base_url=url, timeout=10) as client:
        wait_for(
            lambda: client.get("/ready").status_code == 200,
            _remaining(deadline),
            what="the serve process to be ready",
        )
        deployment = serve["deployment"]
        detail = client.get(f"/api/deployments/{deployment}")
        assert detail.status_code == 200, detail.text
        for schedule in expect.get("schedules", []):
            assert any(_matches(schedule, actual) for actual in detail.json()["schedules"]), (
                f"no schedule like {schedule} in {detail.json()['schedules']}"
            )
        if serve["trigger"] == "none":
            return None
        if serve["trigger"] == "api":
            run_id = _start_run(client, deployment, serve.get("parameters", {}))
        else:
            run_id = _first_run(client, deployment, deadline)
        final = _final(client, run_id, deadline)
        _check_run(client, final, expect)
        return final


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    return all(actual.get(key) == value for key, value in expected.items())


def _start_run(client: httpx.Client, deployment: str, parameters: dict[str, Any]) -> str:
    created = client.post(f"/api/deployments/{deployment}/runs", json={"parameters": parameters})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _first_run(client: httpx.Client, deployment: str, deadline: float) -> str:
    def found() -> str | None:
        runs = client.get("/api/runs", params={"deployment": deployment}).json()["runs"]
        return str(runs[-1]["id"]) if runs else None

    return wait_for(found, _remaining(deadline), what=f"a scheduled run of {deployment}")


def _final(client: httpx.Client, run_id: str, deadline: float) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        detail: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return detail if detail["state"] in TERMINAL else None

    return wait_for(ended, _remaining(deadline), what=f"run {run_id} to end", interval=0.2)


def _check_run(client: httpx.Client, detail: dict[str, Any], expect: dict[str, Any]) -> None:
    logs = client.get(f"/api/runs/{detail['id']}/logs").json()["lines"]
    text = "\n".join(line["line"] for line in logs)
    said = f"run {detail['id']} ended {detail['state']} ({detail.get('error')}); its log:\n{text}"
    assert detail["state"] == expect["state"], said
    for line in expect.get("logs", []):
        assert line in text, f"missing {line!r}; {said}"
    if "task_runs" in expect:
        assert len(detail["task_runs"]) == expect["task_runs"], detail["task_runs"]


@contextlib.contextmanager
def _script_serving(file: str, tmp_path: Path, work: Path, env: dict[str, str]) -> Iterator[Served]:
    """``python FILE`` for a script that calls ``.serve()`` itself, ended with SIGTERM."""
    out_path = tmp_path / "serve.log"
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, file], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    served = Served(process, out_path, Path(env["DOCKYARD_STATE"]))
    try:
        yield served
    except BaseException:
        print(f"--- last output of python {file}:\n{_tail(served.output())}")
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


# ---------------------------------------------------------------------------- run_deployment


def _check_run_deployment(
    entry: dict[str, Any], tmp_path: Path, work: Path, deadline: float
) -> None:
    serve, expect = entry["serve"], entry["expect"]
    shutil.copy(SERVED / "my_flow.py", work / "my_flow.py")
    args = [serve["entrypoint"], *serve.get("args", [])]
    with serve_process(args, tmp_path, cwd=work, env=_env(tmp_path)) as served:
        url = webserver_url(served, timeout=_remaining(deadline))
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, _remaining(deadline))
            script_env = _env(tmp_path, 1, DOCKYARD_URL=url)
            result = _run_script(entry["file"], work, script_env, deadline)
            said = f"{entry['name']} printed:\n{_tail(result.output)}"
            assert result.exit_code == expect["exit_code"], said
            runs = client.get("/api/runs", params={"deployment": serve["deployment"]}).json()
            assert len(runs["runs"]) == 1, runs
            _check_run(client, _final(client, runs["runs"][0]["id"], deadline), expect)


# ---------------------------------------------------------------------------- prefect_style

STYLE = TESTS.parent / "examples" / "prefect_style"
STYLE_OUTPUT = {
    "etl": [
        "(attempt 1)",
        "extracted 5 rows for 2026-01-01 on attempt 2",
        "etl for 2026-01-01: 5 rows",
    ],
    "mapping": ["Oslo: 150.0", "Lima: 60.0", "Perth: 100.0", "4 cities, total 350.00"],
    "states": ["quota check: Failed", "quota exceeded: 12 > 10", "cleanup after quota"],
    "cached": ["computing 3²", "computing 4²", "Cached", "sum of squares of [3, 4, 3]: 34"],
}


@pytest.mark.parametrize("name", sorted(STYLE_OUTPUT))
def test_prefect_style_example_runs_as_a_script(name: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(STYLE / f"{name}.py", work / f"{name}.py")
    result = _run_script(f"{name}.py", work, _env(tmp_path), time.monotonic() + 60)
    said = f"{name}.py printed:\n{_tail(result.output)}"
    assert result.exit_code == 0, said
    _check_output({"ordered": STYLE_OUTPUT[name]}, result.output, said)
    if name == "cached":
        assert result.output.count("computing 3²") == 1, said  # the second 3 was cached
    if name == "etl":
        rows = (work / "etl_output.json").read_text()
        assert rows.count('"amount_eur"') == 5


@pytest.mark.parametrize(
    ("name", "parameters", "state", "line"),
    [
        ("etl", {"rows": 3}, "Completed", "etl for 2026-01-01: 3 rows"),
        ("mapping", {"cities": ["Oslo", "Lima"]}, "Completed", "2 cities, total 210.00"),
        ("states", {}, "Completed", "cleanup after quota"),
        ("states", {"strict": True}, "Failed", "cleanup after quota"),
        ("cached", {"values": [5, 5]}, "Completed", "sum of squares of [5, 5]: 50"),
    ],
)
def test_prefect_style_example_serves(
    name: str, parameters: dict[str, Any], state: str, line: str, tmp_path: Path
) -> None:
    deadline = time.monotonic() + 90
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(STYLE / f"{name}.py", work / f"{name}.py")
    args = [f"{name}.py:{name}", "--name", "example"]
    with serve_process(args, tmp_path, cwd=work, env=_env(tmp_path)) as served:
        serve = {"deployment": f"{name}/example", "parameters": parameters, "trigger": "api"}
        run = _drive(served, serve, {"state": state, "logs": [line]}, deadline)
    assert run is not None and run["state"] == state
    assert run["deployment"] == f"{name}/example"
