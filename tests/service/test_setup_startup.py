"""Start-up of ``dockyard serve``: the probe that loads local code overlaps the service's
imports, and preparing does not import the store or the webserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.execution.spec import EntrypointRequest, ProbeRequest
from dockyard.service.setup import load_local
from dockyard.settings import Settings, load_settings
from tests.helpers import FLOWS, dockyard_env, wait_for

DEADLINE = 30.0
PROBE_MODULE = "dockyard.execution.probe"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"state": str(tmp_path / "state.db"), "webserver": False})


def noop_request() -> ProbeRequest:
    return ProbeRequest(str(FLOWS), (EntrypointRequest("behaviours.py:noop", "d", {}),))


def probe_children() -> list[int]:
    """This process's children that run the probe module."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == os.getpid() and PROBE_MODULE.encode() in argv:
            found.append(int(stat.parent.name))
    return found


def test_meanwhile_runs_while_the_probe_loads_the_code(settings: Settings) -> None:
    seen: list[list[int]] = []

    def meanwhile() -> None:  # in a thread: look for the probe while it runs
        found = wait_for(probe_children, DEADLINE, "the probe process", interval=0.005)
        seen.append(found)  # a timeout raises in the thread: then nothing was seen

    made = load_local(noop_request(), settings, meanwhile=meanwhile)

    assert [d.full_name for d in made] == ["noop/d"]
    assert seen, "the probe did not run while `meanwhile` did"
    assert probe_children() == []  # and it has been waited for


def test_a_failing_meanwhile_leaves_the_deployments_alone(settings: Settings) -> None:
    calls = []

    def meanwhile() -> None:
        calls.append(1)
        raise RuntimeError("an import failed")

    made = load_local(noop_request(), settings, meanwhile=meanwhile)

    assert calls == [1]
    assert [d.full_name for d in made] == ["noop/d"]


def test_a_probe_error_is_raised_after_meanwhile_has_finished(settings: Settings) -> None:
    from dockyard.errors import UsageError

    finished = []
    request = ProbeRequest(str(FLOWS), (EntrypointRequest("behaviours.py:nope", "d", {}),))
    with pytest.raises(UsageError, match="no flow 'nope'"):
        load_local(request, settings, meanwhile=lambda: finished.append(True))
    assert finished == [True]


_PREPARE = """
import json, sys
from dockyard.service.setup import prepare
prepared = prepare({"entrypoint": sys.argv[1], "state": sys.argv[2]})
heavy = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "dockyard.service.lifecycle")
print(json.dumps({
    "deployments": [d.full_name for d in prepared.deployments],
    "imported": [name for name in heavy if name in sys.modules],
}))
"""


def test_preparing_local_code_imports_neither_the_store_nor_the_webserver(
    tmp_path: Path,
) -> None:
    """What lets the probe start early, and ``serve --check`` stay light."""
    entrypoint = f"{FLOWS / 'behaviours.py'}:noop"
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, entrypoint, str(tmp_path / "state.db")],
        env=dockyard_env(), capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"deployments": ["noop/noop"], "imported": []}
