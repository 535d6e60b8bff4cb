"""State hygiene with a real `dockyard serve`: retention prunes old runs at start, a
deployment no longer served is shown as such and can be removed (``--url`` and
``--state``), and ``--watch`` says how a silent run is doing.

Every CLI call is a real subprocess; every wait has a deadline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.core.records import NewRun
from dockyard.core.states import RunState
from dockyard.store import open_store
from tests.helpers import FLOWS, dockyard_env, metric, serve_process, wait_for, webserver_url

pytestmark = pytest.mark.slow
CLI_TIMEOUT_SECONDS = 60
HELLO, QUIET = "hello/hello", "noop/quiet"
BOTH = """\
deployments:
  - {entrypoint: "flows/behaviours.py:hello", name: hello}
  - {entrypoint: "flows/behaviours.py:noop", name: quiet}
"""
ONE = """\
deployments:
  - {entrypoint: "flows/behaviours.py:hello", name: hello}
  - {entrypoint: "flows/behaviours.py:sleeper", name: sleeper}
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=dockyard_env(COLUMNS="200"),
    )


def names(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The first column of a table's rows."""
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ended(store: Any, created: datetime, state: RunState = RunState.COMPLETED) -> str:
    """A run of ``hello/hello`` created at ``created`` that ran and ended in ``state``."""
    run = store.create_run(NewRun(HELLO, "hello", {}, created, "manual"), now=created)
    store.transition(run.id, RunState.PENDING, at=created)
    store.transition(run.id, RunState.RUNNING, at=created, started_at=created)
    store.append_logs(run.id, [(created, "stdout", "an old line")])
    store.transition(run.id, state, at=created, ended_at=created)
    return str(run.id)


def test_retention_prunes_old_finished_runs_at_start(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    (tmp_path / "dockyard.yaml").write_text(BOTH)
    now = datetime.now(UTC)
    with open_store(tmp_path / "state.db") as store:
        store.upsert_deployment(HELLO, "hello", {}, now=now)
        old = [ended(store, now - timedelta(days=40 + i)) for i in range(3)]
        failed_old = ended(store, now - timedelta(days=31), RunState.FAILED)
        recent = [ended(store, now - timedelta(hours=i + 1)) for i in range(4)]
        waiting = store.create_run(  # created long ago, not finished: never pruned
            NewRun(HELLO, "hello", {}, now + timedelta(days=1), "manual"),
            now=now - timedelta(days=90),
        )
    env = dockyard_env(DOCKYARD_RETENTION_DAYS="30", DOCKYARD_RETENTION_RUNS="2")
    with serve_process(["--config", "dockyard.yaml"], tmp_path, env=env) as served:
        wait_for(
            lambda: "pruned 6 finished run(s) with their logs" in served.output(),
            timeout=60,
            what="the pruning log line",
        )
        url = webserver_url(served)
        page = httpx.get(f"{url}/metrics", timeout=10).text
        kept = {r.id for r in served.runs()}

    line = next(x for x in served.output().splitlines() if "pruned 6" in x)
    assert line.endswith(
        "pruned 6 finished run(s) with their logs (older than 30 day(s) or beyond the newest "
        "2 per deployment)"
    )
    assert metric(page, "dockyard_runs_pruned_total") == 6
    assert kept == {recent[0], recent[1], waiting.id}
    assert not set(old) & kept and failed_old not in kept


def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    (tmp_path / "dockyard.yaml").write_text(BOTH)
    now = datetime.now(UTC)
    with open_store(tmp_path / "state.db") as store:
        store.upsert_deployment(HELLO, "hello", {}, now=now)
        ended(store, now - timedelta(days=4000))
    env = dockyard_env(DOCKYARD_RETENTION_DAYS="0", DOCKYARD_RETENTION_RUNS="0")
    with serve_process(["--config", "dockyard.yaml"], tmp_path, env=env) as served:
        url = webserver_url(served)
        wait_for(lambda: ready(url), timeout=60, what="/ready")
        page = httpx.get(f"{url}/metrics", timeout=10).text
        assert len(served.runs()) == 1
    assert "pruned" not in served.output()
    assert metric(page, "dockyard_runs_pruned_total") == 0


def test_a_deployment_no_longer_served_is_shown_as_such_then_removed(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    config = tmp_path / "dockyard.yaml"
    config.write_text(BOTH)
    state = ("--state", str(tmp_path / "state.db"))
    with serve_process(["--config", "dockyard.yaml"], tmp_path, name="first") as served:
        url = webserver_url(served)
        wait_for(lambda: ready(url), timeout=60, what="/ready")
        assert cli("deployment", "run", QUIET, "--watch", "--url", url).returncode == 0
        served.signal()
        assert served.wait_exit() == 0

    config.write_text(ONE)
    with serve_process(["--config", "dockyard.yaml"], tmp_path, name="second") as served:
        url = webserver_url(served)
        wait_for(lambda: ready(url), timeout=60, what="/ready")
        wait_for(lambda: cli("replica", "ls", "--json", *state).stdout.count('"live"') == 1,
                 timeout=30, what="the replica's heartbeat")  # fmt: skip
        for mode in (("--url", url), state):
            listed = cli("deployment", "ls", *mode)
            assert names(listed) == ["hello/hello", "sleeper/sleeper"], mode
            assert "1 deployment(s) no serve process serves any more not shown" in listed.stderr
            every = cli("deployment", "ls", "--all", *mode)
            row = next(r for r in every.stdout.splitlines() if r.strip().startswith(QUIET))
            assert "not served" in row, mode

        refused = cli("deployment", "rm", HELLO, "--yes", "--url", url)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"dockyard: error: 409: {HELLO} is served by this serve")
        unknown = cli("run", "ls", "--deployment", "noop/nope", "--url", url)
        assert unknown.returncode == 1
        assert "404: unknown deployment 'noop/nope'; known: " in unknown.stderr

        removed = cli("deployment", "rm", QUIET, "--yes", "--url", url)
        assert (removed.returncode, removed.stdout) == (0, f"removed {QUIET} and its 1 run(s)\n")
        assert QUIET not in cli("deployment", "ls", "--all", "--url", url).stdout
        assert not served.runs(deployment=QUIET)

        watched = cli("deployment", "run", "sleeper/sleeper", "--param", "seconds=17",
                      "--watch", "--url", url)  # fmt: skip
        served.signal()
        assert served.wait_exit() == 0

    # stdout: the start line and the end line (a sleeper prints nothing); stderr: progress.
    assert watched.returncode == 0, watched.stderr
    out = watched.stdout.splitlines()
    assert len(out) == 2 and out[-1].endswith("ended Completed"), out
    assert re.search(r"^run [0-9a-f]{8}: (still )?Running \(1\ds\)$", watched.stderr, re.M), (
        watched.stderr
    )

    # With no serve process left, the state database: the last one served hello and sleeper.
    assert names(cli("deployment", "ls", *state)) == ["hello/hello", "sleeper/sleeper"]
    gone = cli("deployment", "rm", HELLO, "--yes", *state)
    assert gone.returncode == 0, gone.stderr
    assert re.fullmatch(rf"removed {HELLO} and its \d+ run\(s\)\n", gone.stdout)
    assert names(cli("deployment", "ls", "--all", *state)) == ["sleeper/sleeper"]
