"""What a serve process writes: a line per run's end, UTC times and levels, JSON logs,
and tracebacks of failed runs that start at the user's code."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.core.records import NewRun
from dockyard.core.states import RunState
from dockyard.store import open_store
from tests.helpers import (
    Served,
    dockyard_env,
    queue_run,
    run_script,
    serve_process,
    stored_logs,
    wait_for,
    webserver_url,
)

pytestmark = pytest.mark.slow

FLOWS = """
from dockyard import flow, task


def parse(day):
    try:
        int(day)
    except ValueError as exc:
        raise ValueError("bad day") from exc


@task
def check(day):
    parse(day)


@flow
def silent():
    pass


@flow
def broken(day: str = "monday"):
    check(day)


@flow(retries=2, retry_delay_seconds=0)
def failing(day: str = "monday"):
    print(f"checking {day}")
    parse(day)
"""
SCRIPT = """
from flows import silent

if __name__ == "__main__":
    silent.serve(name="py", interval=3600)
"""
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
LINE = re.compile(rf"({TIME}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) +(\S.*)")
JSON_KEYS = {"ts", "level", "logger", "message"}


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path


def serving(served: Served) -> bool:
    return "serving 1 deployment" in served.output()


def finished(served: Served, run_id: str) -> Any:
    with open_store(served.state_path) as store:
        run = store.get_run(run_id)
    return run if run.state.is_terminal else None


def stop(served: Served) -> None:
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0


def parsed_lines(output: str) -> list[re.Match[str]]:
    """Every line of a text log, each matched by ``LINE`` (a line that does not fails)."""
    lines = output.splitlines()
    assert lines
    matches = [LINE.fullmatch(line) for line in lines]
    assert not [line for line, m in zip(lines, matches, strict=True) if m is None]
    return [m for m in matches if m is not None]


def utc(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    assert when.utcoffset() == timedelta(0)
    return when


def json_lines(output: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in output.splitlines()]
    assert records and all(isinstance(r, dict) and JSON_KEYS <= set(r) for r in records)
    for record in records:
        assert re.fullmatch(TIME, record["ts"]), record
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    return records


def user_traceback(lines: list[str], user_file: Path) -> None:
    """The tracebacks in ``lines`` only show the user's file, chained as Python chains them."""
    frames = [line.strip() for line in lines if line.strip().startswith('File "')]
    assert frames
    assert all(frame.startswith(f'File "{user_file}"') for frame in frames), frames
    text = "\n".join(lines)
    assert "Traceback (most recent call last):" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "ValueError: bad day" in text and "invalid literal for int()" in text


def test_a_silent_run_ends_with_one_line_and_every_line_has_a_utc_time_and_a_level(flows):
    began = datetime.now(UTC)
    with serve_process(["flows.py:silent", "--interval", "3600"], flows) as served:
        wait_for(lambda: serving(served), what="startup")
        run = queue_run(served.state_path, "silent/silent")
        done = wait_for(lambda: finished(served, run.id), what="the run to end")
        end = rf"run silent/silent {done.name} \({run.id[:8]}\) Completed in \d+\.\ds"
        wait_for(lambda: re.search(end, served.output()), what="the end line")
        stop(served)
    ended = datetime.now(UTC)
    lines = parsed_lines(served.output())
    ends = [m for m in lines if re.fullmatch(f"dockyard: {end}", m[3])]
    assert len(ends) == 1 and ends[0][2] == "INFO"
    assert all(began - timedelta(seconds=1) <= utc(m[1]) <= ended for m in lines)
    messages = [m[3] for m in lines]
    assert "dockyard: serving silent/silent. Stop with Ctrl+C or SIGTERM." in messages
    assert "dockyard: stopped" in messages


def test_a_failed_run_ends_with_its_error_and_its_traceback_starts_at_the_users_code(flows):
    with serve_process(["flows.py:broken", "--interval", "3600"], flows) as served:
        wait_for(lambda: serving(served), what="startup")
        run = queue_run(served.state_path, "broken/broken")
        done = wait_for(lambda: finished(served, run.id), what="the run to end")
        end = rf"run broken/broken {done.name} \({run.id[:8]}\) Failed in \d+\.\ds: "
        wait_for(lambda: re.search(end, served.output()), what="the end line")
        stop(served)
    assert done.state is RunState.FAILED
    lines = parsed_lines(served.output())
    ends = [(m[2], m[3]) for m in lines if re.match(f"dockyard: {end}", m[3])]
    assert len(ends) == 1 and ends[0][0] == "ERROR"
    assert ends[0][1].endswith("s: ValueError: bad day")  # the error's last line
    prefix = f"[broken/broken {done.name} stderr] "
    printed = [m[3].removeprefix(prefix) for m in lines if m[3].startswith(prefix)]
    assert {m[2] for m in lines if m[3].startswith(prefix)} == {"ERROR"}
    user_traceback(printed, flows / "flows.py")
    user_traceback(stored_logs(served.state_path, run.id), flows / "flows.py")


def test_a_retried_run_shows_its_attempts_and_its_final_failure(flows):
    with serve_process(["flows.py:failing", "--interval", "3600"], flows) as served:
        wait_for(lambda: serving(served), what="startup")
        run = queue_run(served.state_path, "failing/failing")
        done = wait_for(lambda: finished(served, run.id), what="the run to end")
        wait_for(lambda: "after 3 attempts" in served.output(), what="the end line")
        stop(served)
    assert done.state is RunState.FAILED and done.attempt == 3
    messages = [(m[2], m[3]) for m in parsed_lines(served.output())]
    retries = [text for level, text in messages if level == "WARNING" and "retry" in text]
    assert [text.split(": ")[2] for text in retries] == [
        "retry 1 of 2 in 0s after",
        "retry 2 of 2 in 0s after",
    ]
    assert all(text.endswith("after: ValueError: bad day") for text in retries)
    end = (
        re.escape(f"dockyard: run failing/failing {done.name} ({run.id[:8]}) Failed in ")
        + r"\d+\.\ds after 3 attempts: ValueError: bad day"
    )
    assert [level for level, text in messages if re.fullmatch(end, text)] == ["ERROR"]
    printed = [text for level, text in messages if text.startswith("[failing/failing ")]
    assert printed.count(f"[failing/failing {done.name}] checking monday") == 3
    assert ("INFO", f"[failing/failing {done.name}] checking monday") in messages


def test_json_logs_from_the_environment_one_object_per_line_with_the_runs_fields(flows):
    env = dockyard_env(DOCKYARD_LOG_FORMAT="json")
    with serve_process(["flows.py:failing", "--interval", "3600"], flows, env=env) as served:
        wait_for(lambda: serving(served), what="startup")
        run = queue_run(served.state_path, "failing/failing")
        done = wait_for(lambda: finished(served, run.id), what="the run to end")
        wait_for(lambda: "after 3 attempts" in served.output(), what="the end line")
        stop(served)
    records = json_lines(served.output())
    output = [r for r in records if r["logger"] == "dockyard.runs"]
    assert output and all(
        r["deployment"] == "failing/failing"
        and r["run_id"] == run.id
        and r["run_name"] == done.name
        for r in output
    )
    stdout = [r for r in output if r["stream"] == "stdout"]
    assert [(r["level"], r["message"]) for r in stdout] == [("INFO", "checking monday")] * 3
    stderr = [r for r in output if r["stream"] == "stderr"]
    assert {r["level"] for r in stderr} == {"ERROR"}
    user_traceback([r["message"] for r in stderr], flows / "flows.py")
    ends = [r for r in records if "state" in r]
    assert len(ends) == 1
    end = ends[0]
    assert (end["logger"], end["level"], end["state"], end["error"], end["attempts"]) == (
        "dockyard", "ERROR", "Failed", "ValueError: bad day", 3
    )  # fmt: skip
    assert isinstance(end["duration_s"], float) and end["duration_s"] >= 0
    assert (end["deployment"], end["run_id"], end["run_name"]) == (
        "failing/failing", run.id, done.name
    )  # fmt: skip
    assert any(r["message"].startswith("webserver listening on http://") for r in records)


def test_log_format_flag_json_and_a_run_cancelled_before_it_started(flows):
    args = ["flows.py:silent", "--interval", "3600", "--log-format", "json"]
    with serve_process(args, flows) as served:
        url = webserver_url(served)  # a regular expression over the JSON line finds it too
        wait_for(lambda: serving(served), what="startup")
        waiting = _scheduled_run(served.state_path, "silent/silent")
        cancelled = subprocess.run(
            [sys.executable, "-m", "dockyard", "run", "cancel", waiting, "--url", url],
            capture_output=True, text=True, timeout=60, env=dockyard_env(),
        )  # fmt: skip
        assert cancelled.returncode == 0, cancelled.stderr
        wait_for(lambda: '"state": "Cancelled"' in served.output(), what="the end line")
        run = queue_run(served.state_path, "silent/silent")
        done = wait_for(lambda: finished(served, run.id), what="the run to end")
        wait_for(lambda: '"state": "Completed"' in served.output(), what="the end line")
        stop(served)
    records = json_lines(served.output())
    ends = {r["state"]: r for r in records if "state" in r}
    assert set(ends) == {"Cancelled", "Completed"}
    assert ends["Cancelled"]["message"] == (
        f"run silent/silent ({waiting[:8]}) Cancelled before it started: cancelled through the API"
    )
    assert ends["Cancelled"]["level"] == "INFO" and "duration_s" not in ends["Cancelled"]
    completed = ends["Completed"]
    assert completed["level"] == "INFO" and "error" not in completed
    assert (completed["run_id"], completed["run_name"]) == (run.id, done.name)
    assert isinstance(completed["duration_s"], float)


@pytest.mark.parametrize("where", ["env", "flag"])
def test_a_bad_log_format_stops_the_start_with_one_line(flows, where):
    env = dockyard_env(**({"DOCKYARD_LOG_FORMAT": "xml"} if where == "env" else {}))
    flag = ["--log-format", "xml"] if where == "flag" else []
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "flows.py:silent", "--check", *flag],
        capture_output=True, text=True, timeout=60, env=env, cwd=flows,
    )  # fmt: skip
    assert done.returncode == 2
    expected = {  # the flag is a choice (click says so); the variable is a setting
        "flag": "dockyard: error: Invalid value for '--log-format': 'xml' is not one of "
        "'text', 'json'. (see 'dockyard serve --help')",
        "env": "dockyard: error: invalid setting: log_format (flag --log-format or "
        "DOCKYARD_LOG_FORMAT): Input should be 'text' or 'json'",
    }
    assert done.stderr.splitlines() == [expected[where]]


def test_python_flow_serve_logs_the_same_way(flows):
    (flows / "serve_it.py").write_text(SCRIPT)
    state = flows / "state.db"
    env = dockyard_env(DOCKYARD_LOG_FORMAT="json", DOCKYARD_STATE=str(state))
    process = run_script(flows / "serve_it.py", flows, env=env)
    log = flows / "serve_it.log"
    try:
        wait_for(lambda: "serving 1 deployment" in log.read_text(), what="startup")
        run = queue_run(state, "silent/py")
        wait_for(lambda: '"state": "Completed"' in log.read_text(), what="the end line")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    records = json_lines(log.read_text())
    ends = [r for r in records if "state" in r]
    assert [(r["run_id"], r["state"]) for r in ends] == [(run.id, "Completed")]
    assert any(r["message"].startswith("serving silent/py. Stop with Ctrl+C") for r in records)


def _scheduled_run(state: Path, deployment: str) -> str:
    """A run that waits as Scheduled for an hour (it never starts in the test)."""
    with open_store(state) as store:
        record = store.get_deployment(deployment)
        later = datetime.now(UTC) + timedelta(hours=1)
        new = NewRun(deployment, record.flow_name, {}, later, "manual", state=RunState.SCHEDULED)
        return str(store.create_run(new).id)
