"""A git project for end-to-end tests: a bare "remote" and a working clone that tests
commit to and push from, plus a client for the serve process's source-related API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.git_server import git
from tests.helpers import Served, metric, wait_for, webserver_url

# A flow that reads a marker from its own checkout. With ``gate`` it writes ``started``
# and waits (bounded) for the gate file, so a test can push while it is running.
FLOW = """\
import time
from pathlib import Path

from dockyard import flow


@flow(name="f", log_prints=True)
def f(gate: str = "", started: str = "", tag: str = ""):
    if started:
        Path(started).write_text("started")
    deadline = time.monotonic() + 60
    while gate and not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    marker = (Path(__file__).parent.parent / "marker.txt").read_text().strip()
    print(f"marker {marker}{tag}")
    return marker
"""


class GitProject:
    """``remote.git`` (bare, branch main) and ``work`` (a clone tests commit to)."""

    def __init__(self, root: Path, name: str = "remote.git") -> None:
        self.bare = (root / name).absolute()
        self.work = (root / "work").absolute()
        git("init", "--quiet", "--bare", "--initial-branch", "main", self.bare)
        git("init", "--quiet", "--initial-branch", "main", self.work)
        self.git("remote", "add", "origin", self.bare)

    @property
    def url(self) -> str:
        return str(self.bare)

    def git(self, *args: str | Path) -> str:
        return git(*args, cwd=self.work)

    def commit(
        self,
        files: dict[str, str | None],
        message: str = "change",
        *,
        branch: str = "main",
        push: bool = True,
    ) -> str:
        """Write (or, for None, delete) ``files``, commit, push ``branch``; return the SHA."""
        for name, content in files.items():
            target = self.work / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "--all")
        self.git(
            "-c", "user.email=test@example.invalid", "-c", "user.name=Test",
            "commit", "--quiet", "--allow-empty", "-m", message,
        )  # fmt: skip
        if push:
            self.push(branch)
        return self.git("rev-parse", "HEAD")

    def push(self, branch: str = "main", *, force: bool = False) -> None:
        self.git("push", "--quiet", *(["--force"] if force else []), "origin", f"HEAD:{branch}")

    def flow(self, marker: str, message: str = "flow") -> str:
        return self.commit({"flows/f.py": FLOW, "marker.txt": marker + "\n"}, message)

    def rewrite(self, marker: str) -> str:
        """Replace main by a new root commit and force-push it (rewritten history)."""
        self.git("checkout", "--quiet", "--orphan", "rewritten")
        sha = self.commit({"flows/f.py": FLOW, "marker.txt": marker + "\n"}, push=False)
        self.git("branch", "--quiet", "--force", "-M", "rewritten", "main")
        self.push("main", force=True)
        return sha

    def hide(self) -> Path:
        """Make the remote unreachable; returns where it went (``restore`` undoes it)."""
        hidden = self.bare.with_name(self.bare.name + ".hidden")
        shutil.move(self.bare, hidden)
        return hidden

    def restore(self) -> None:
        shutil.move(self.bare.with_name(self.bare.name + ".hidden"), self.bare)


class Api:
    """The webserver of a serve process, with the calls the git tests make."""

    def __init__(self, served: Served, token: str | None = None) -> None:
        self.served = served
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=webserver_url(served), timeout=15, headers=headers)
        self.answers: list[str] = []  # every API answer, to look for leaked secrets

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.client.get(path, **kwargs)
        self.answers.append(answer.text)
        return answer

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.client.post(path, **kwargs)
        self.answers.append(answer.text)
        return answer

    def source(self) -> dict[str, Any]:
        """The one source ({} while the process is still starting its pull loops)."""
        sources = self.get("/api/sources").json()
        assert len(sources) <= 1, sources
        return sources[0] if sources else {}

    def sync(self) -> None:
        answer = self.post("/api/sources/sync")
        assert answer.status_code == 202, answer.text

    def wait_source(self, what: str, timeout: float = 30, **expected: Any) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            source = self.source()
            return source if all(source.get(k) == v for k, v in expected.items()) else None

        return wait_for(matches, timeout, what=what)

    def wait_revision(self, sha: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait_source(f"revision {sha[:12]}", timeout, revision=sha)

    def wait_failures(self, at_least: int, timeout: float = 30) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.source()).get("consecutive_failures", 0) >= at_least and s,
            timeout,
            what=f"{at_least} failed pulls",
        )

    def wait_ready(self, code: int = 200, timeout: float = 30) -> dict[str, Any]:
        return wait_for(
            lambda: (r := self.get("/ready")).status_code == code and r.json(),
            timeout,
            what=f"/ready {code}",
        )

    def start(self, deployment: str = "f/f", **parameters: Any) -> str:
        created = self.post(f"/api/deployments/{deployment}/runs", json={"parameters": parameters})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def finish(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.get(f"/api/runs/{run_id}").json()
            return run if run["state"] in {"Completed", "Failed", "Crashed", "Cancelled"} else None

        run = wait_for(done, timeout, what=f"run {run_id} to end")
        assert run["state"] == "Completed", run
        return run

    def run(self, deployment: str = "f/f", **parameters: Any) -> dict[str, Any]:
        """Queue a run, wait for it; the run detail with ``marker`` (its result)."""
        run = self.finish(self.start(deployment, **parameters))
        run["marker"] = (run["result"] or "").strip("'")
        return run

    def metric(self, name: str, **labels: str) -> float | None:
        return metric(self.get("/metrics").text, name, **labels)
