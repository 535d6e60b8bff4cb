"""No dockyard secret reaches flow code, end to end: a real `dockyard serve` with an API
token, a webhook secret and a git token in the source URL, serving code from a loopback
git server that demands the token. The flow's module-level code (run in the probe of
every pushed revision, and in each run) and the flow itself read everything a process
can read in /proc; none of it, nor the run's logs or the serve process's output, may
hold a secret, while pulls keep authenticating and runs complete."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.git_project import Api, GitProject
from tests.git_server import GitHttpServer
from tests.helpers import dockyard_env, serve_process

pytestmark = pytest.mark.slow

# What the flow's code can find: its environment, its parent's (the serve process)
# environment and command line, and those of every process /proc lets it read.
SNOOP = """\
import json
import os
from pathlib import Path

from dockyard import flow


def _read(path):
    try:
        return Path(path).read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        return f"<unreadable: {type(exc).__name__}>"


def snoop(kind):
    found = {
        "os.environ": "\\n".join(f"{k}={v}" for k, v in os.environ.items()),
        "self/environ": _read("/proc/self/environ"),
        "ppid": str(os.getppid()),
        "ppid/environ": _read(f"/proc/{os.getppid()}/environ"),
        "ppid/cmdline": _read(f"/proc/{os.getppid()}/cmdline"),
    }
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            for what in ("environ", "cmdline"):
                found[f"{entry.name}/{what}"] = _read(entry / what)
    out = Path(os.environ["SNOOP_DIR"], f"{kind}-{os.getpid()}.json")
    out.write_text(json.dumps(found))
    return found


snoop("module")  # module level: runs in the probe of each revision, and in each run


@flow(name="f", log_prints=True)
def f():
    found = snoop("flow")
    print(found["os.environ"])  # into the run's stored logs
    return "done"
"""

ENTRY = ["flows/f.py:f", "--interval", "3600"]


def _secret(kind: str) -> str:
    return f"{kind}-{os.urandom(12).hex()}"


@pytest.fixture
def snoop_dir(tmp_path: Path) -> Path:
    path = tmp_path / "snoop"
    path.mkdir()
    return path


@contextlib.contextmanager
def serving(
    tmp_path: Path, snoop_dir: Path, given: str
) -> Iterator[tuple[Api, GitProject, GitHttpServer, dict[str, str]]]:
    """A serve process of the git project behind an authenticating HTTP server."""
    secrets = {k: _secret(k) for k in ("api", "hook", "git")}
    (tmp_path / "home").mkdir()
    project = GitProject(tmp_path / "repos")
    project.commit({"flows/f.py": SNOOP}, "snoop")
    with GitHttpServer(tmp_path / "repos", secrets["git"]).running() as server:
        plain_url = f"{server.url}/remote.git"
        url = plain_url.replace("http://", f"http://robot:{secrets['git']}@")
        env = dockyard_env(
            HOME=str(tmp_path / "home"),
            DOCKYARD_SOURCE_DIR=str(tmp_path / "checkouts"),
            DOCKYARD_API_TOKEN=secrets["api"],
            DOCKYARD_SOURCE_WEBHOOK_SECRET=secrets["hook"],
            SNOOP_DIR=str(snoop_dir),
        )
        args = [*ENTRY, "--source", url] if given == "flag" else ENTRY
        if given == "env":
            env["DOCKYARD_SOURCE"] = url
        if given == "token_env":  # dockyard.yaml names the variable that holds the token
            env["GIT_TOKEN_FOR_FLOWS"] = secrets["git"]
            (tmp_path / "dockyard.yaml").write_text(
                f"source:\n  url: {plain_url}\n"
                "  credentials: {username: robot, token_env: GIT_TOKEN_FOR_FLOWS}\n"
                "deployments:\n  - entrypoint: flows/f.py:f\n"
                "    schedules: [{interval: 3600}]\n"
            )
            args = ["--config", "dockyard.yaml"]
        with serve_process(args, tmp_path, env=env) as served:
            api = Api(served, secrets["api"])
            try:
                yield api, project, server, {**secrets, "plain_url": plain_url}
            finally:
                api.client.close()


def _findings(snoop_dir: Path, kind: str) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted(snoop_dir.glob(f"{kind}-*.json"))]


def _assert_nothing_found(found: list[dict[str, str]], secrets: dict[str, str], serve_pid: int):
    for each in found:
        assert "SNOOP_DIR=" in each["self/environ"]  # the reads worked
        if os.geteuid() == 0:  # root reads every process's environ: the serve process's too
            assert "SNOOP_DIR=" in each[f"{serve_pid}/environ"]
        for name in ("api", "hook", "git"):
            leaked = [where for where, text in each.items() if secrets[name] in text]
            assert leaked == [], f"the {name} secret is readable in {leaked}"


@pytest.mark.parametrize("given", ["env", "flag", "token_env"])
def test_runs_and_probes_find_no_secret(tmp_path: Path, snoop_dir: Path, given: str) -> None:
    with serving(tmp_path, snoop_dir, given) as (api, project, server, secrets):
        first = project.git("rev-parse", "HEAD")
        api.wait_revision(first)  # the first pull authenticated, the probe loaded it
        run = api.run()
        assert run["marker"] == "done"
        logs = api.get(f"/api/runs/{run['id']}/logs").text
        assert "SNOOP_DIR=" in logs  # the flow's environment is in its stored logs
        # A pushed revision: pulled with the same credentials, loaded by a new probe.
        second = project.commit({"flows/f.py": SNOOP + "\n# second\n"}, "second")
        api.sync()
        api.wait_revision(second)
        assert api.run()["marker"] == "done"
        serve_pid = api.served.process.pid
        output = api.served.output()
        assert server.leaks == []
    modules, flows = _findings(snoop_dir, "module"), _findings(snoop_dir, "flow")
    assert len(modules) >= 4  # two probes and two runs
    assert len(flows) == 2
    _assert_nothing_found(modules + flows, secrets, serve_pid)
    for each in flows:
        # The source URL reaches the flow without its credentials.
        if given == "env":
            assert f"DOCKYARD_SOURCE={secrets['plain_url']}\n" in each["os.environ"] + "\n"
        assert "DOCKYARD_API_TOKEN" not in each["os.environ"]
        assert "GIT_TOKEN_FOR_FLOWS" not in each["os.environ"]
    for name in ("api", "hook", "git"):
        assert secrets[name] not in logs
        assert secrets[name] not in output
        assert not [a for a in api.answers if secrets[name] in a]


def test_pulls_keep_authenticating_after_the_secrets_are_wiped(
    tmp_path: Path, snoop_dir: Path
) -> None:
    """Several pulls in a row, each a new git process that needs the token again."""
    with serving(tmp_path, snoop_dir, "env") as (api, project, server, secrets):
        api.wait_revision(project.git("rev-parse", "HEAD"))
        requests = server.requests
        for n in range(3):
            sha = project.commit({"marker.txt": f"{n}\n"}, f"change {n}")
            api.sync()
            api.wait_revision(sha)
        assert server.requests > requests
        assert set(server.users) == {"robot"}
        assert server.leaks == []
    _assert_nothing_found(_findings(snoop_dir, "module"), secrets, api.served.process.pid)
