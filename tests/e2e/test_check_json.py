"""``dockyard serve --check --json`` / ``--once --json`` for git-sourced code: one JSON
document, from a real repository in tmp_path and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.git_project import GitProject
from tests.helpers import dockyard_env

pytestmark = pytest.mark.slow


def serve_json(
    project: GitProject, tmp_path: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dockyard_env(HOME=str(home), DOCKYARD_SOURCE_DIR=str(tmp_path / "checkouts"))
    command = [sys.executable, "-m", "dockyard", "serve", "flows/f.py:f", "--interval", "60"]
    command += ["--source", project.url, *flags, "--json", "--state", str(tmp_path / "s.db")]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_check_json_of_a_git_source_names_the_revision_and_its_deployments(
    tmp_path: Path,
) -> None:
    project = GitProject(tmp_path)
    good = project.flow("v1")

    done = serve_json(project, tmp_path, "--check")

    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is True
    [source] = document["sources"]
    assert (source["url"], source["revision"], source["ok"]) == (project.url, good, True)
    assert (source["published"], source["error"]) == (False, None)
    [deployment] = source["deployments"]
    assert (deployment["name"], deployment["entrypoint"]) == ("f/f", "flows/f.py:f")
    assert len(deployment["next_runs"]) == 3


def test_once_json_of_a_bad_revision_says_why_and_exits_1(tmp_path: Path) -> None:
    project = GitProject(tmp_path)
    project.flow("v1")
    bad = project.commit({"flows/f.py": "def broken(:\n"}, "bad")

    done = serve_json(project, tmp_path, "--once")

    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is False
    [source] = document["sources"]
    assert (source["revision"], source["ok"], source["published"]) == (bad, False, False)
    assert source["deployments"] == []
    assert bad[:12] in source["error"] and "SyntaxError" in source["error"]
