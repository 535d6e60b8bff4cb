"""The environment of runs and probes, and ``protect_process`` in real subprocesses that
read each other's /proc files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.execution.environment import SECRET_ENV, child_environment, strip_userinfo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:tok@git.example/r.git", "https://git.example/r.git"),
        ("HTTP://tok@git.example:8443/r.git", "HTTP://git.example:8443/r.git"),
        ("http://127.0.0.1:8080/r.git", "http://127.0.0.1:8080/r.git"),
        ("ssh://git:pw@host/r.git", "ssh://git@host/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("ssh://:pw@host/r.git", "ssh://host/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("--source=https://u:t@h/r", "--source=https://h/r"),
        ("/srv/code", "/srv/code"),
        ("", ""),
    ],
)
def test_strip_userinfo(text: str, expected: str) -> None:
    assert strip_userinfo(text) == expected


def test_child_environment_drops_secrets_and_url_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in SECRET_ENV:
        monkeypatch.setenv(name, f"secret-of-{name}")
    monkeypatch.setenv("DOCKYARD_SOURCE", "https://robot:tok-123@git.example/r.git")
    monkeypatch.setenv("DOCKYARD_API_TOKEN_FILE", "/run/secrets/api")  # a path, kept
    monkeypatch.setenv("KEEP_ME", "1")
    env = child_environment({"EXTRA": "x", "KEEP_ME": "2"})
    assert SECRET_ENV == {
        "DOCKYARD_API_TOKEN",
        "DOCKYARD_SOURCE_TOKEN",
        "DOCKYARD_SOURCE_WEBHOOK_SECRET",
        "DOCKYARD_DATABASE_URL",
        "PGPASSWORD",
    }
    assert not SECRET_ENV & env.keys()
    assert env["DOCKYARD_SOURCE"] == "https://git.example/r.git"
    assert env["DOCKYARD_API_TOKEN_FILE"] == "/run/secrets/api"
    assert (env["EXTRA"], env["KEEP_ME"]) == ("x", "2")
    assert not [v for v in env.values() if "secret-of-" in v or "tok-123" in v]
    assert os.environ["DOCKYARD_SOURCE"].startswith("https://robot:")  # ours is untouched


# The "serve process": overrides one secret in os.environ first (libc then points at a
# copy; the original stays in the block /proc shows), protects itself twice, starts a
# "run" that reads its parent's /proc files, reports, and waits to be read from outside.
PROTECTED = """\
import ctypes, json, os, subprocess, sys
from dockyard.execution.environment import child_environment, protect_process

os.environ["DOCKYARD_SOURCE_TOKEN"] = "changed-before-protect"
protect_process()
protect_process()
dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
run = subprocess.run(
    [sys.executable, "-c", READER], env=child_environment(), capture_output=True, text=True
)
report = {"dumpable": dumpable, "environ": dict(os.environ), "run": json.loads(run.stdout)}
print(json.dumps(report), flush=True)
sys.stdin.readline()
"""
READER = """\
import json, os
from pathlib import Path
ppid = os.getppid()
print(json.dumps({
    "environ": Path(f"/proc/{ppid}/environ").read_bytes().decode(),
    "cmdline": Path(f"/proc/{ppid}/cmdline").read_bytes().decode(),
    "own": dict(os.environ),
}))
"""


def test_protect_process_wipes_what_proc_shows(tmp_path: Path) -> None:
    secrets = {name: f"{name.lower()}-{os.urandom(8).hex()}" for name in SECRET_ENV}
    git_token = f"git-{os.urandom(8).hex()}"
    url = f"https://robot:{git_token}@git.example/r.git"
    script = tmp_path / "protected.py"
    script.write_text(f"READER = {READER!r}\n{PROTECTED}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        **secrets,
        "DOCKYARD_SOURCE": url,
        "DOCKYARD_SOURCE_TOKEN_FILE": "/run/token",
        "KEEP_ME": "kept",
    }
    with subprocess.Popen(
        [sys.executable, str(script), "--source", url, "--after", "x"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None and process.stdin is not None
            report = json.loads(process.stdout.readline())
            environ = Path(f"/proc/{process.pid}/environ").read_bytes().decode()
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
            process.stdin.write("\n")
            process.stdin.flush()
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    run = report["run"]
    texts = {
        "/proc/<pid>/environ": environ,
        "/proc/<pid>/cmdline": cmdline,
        "the run's /proc/<ppid>/environ": run["environ"],
        "the run's /proc/<ppid>/cmdline": run["cmdline"],
        "the run's os.environ": json.dumps(run["own"]),
        "the process's os.environ": json.dumps(report["environ"]),
    }
    for secret in [*secrets.values(), git_token]:
        assert [where for where, text in texts.items() if secret in text] == []
    assert report["dumpable"] == 0
    # What is not a secret is left as it was; the URL keeps everything but credentials.
    for text in (environ, run["environ"]):
        entries = text.split("\0")
        assert "KEEP_ME=kept" in entries and "DOCKYARD_SOURCE_TOKEN_FILE=/run/token" in entries
        assert "DOCKYARD_SOURCE=https://git.example/r.git" in entries
    assert [a for a in cmdline.split("\0") if a][-4:] == [
        "--source",
        "https://git.example/r.git",
        "--after",
        "x",
    ]
    assert report["environ"]["DOCKYARD_SOURCE"] == "https://git.example/r.git"
    assert not SECRET_ENV & report["environ"].keys()
    assert run["own"]["KEEP_ME"] == "kept" and not SECRET_ENV & run["own"].keys()
