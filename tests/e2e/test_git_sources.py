"""Code from git, end to end: real repositories in tmp_path, real `dockyard serve`
processes with the webserver, bounded waits on what the API shows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from dockyard.web.webhook import signature
from tests.git_project import FLOW, Api, GitProject
from tests.git_server import GitHttpServer
from tests.helpers import dockyard_env, pid_alive, serve_process, wait_for

pytestmark = pytest.mark.slow

ENTRY = ["flows/f.py:f", "--interval", "3600"]


@pytest.fixture
def project(tmp_path: Path) -> GitProject:
    return GitProject(tmp_path)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return dockyard_env(HOME=str(home), DOCKYARD_SOURCE_DIR=str(tmp_path / "checkouts"))


@pytest.fixture
def serve(tmp_path: Path, env: dict[str, str]) -> Iterator[object]:
    """``serve(args, **env)`` → an ``Api`` on a running `dockyard serve`."""
    import contextlib

    with contextlib.ExitStack() as stack:

        def start(args: list[str], **extra: str) -> Api:
            served = stack.enter_context(serve_process(args, tmp_path, env={**env, **extra}))
            api = Api(served)
            stack.callback(api.client.close)
            return api

        yield start


# ── 1. a commit changes what the next run does ──────────────────────────────────────


@pytest.mark.parametrize("trigger", ["api", "sighup"])
def test_commit_changes_the_next_run(project, serve, trigger):
    first = project.flow("v1")
    api = serve([*ENTRY, "--source", project.url])
    api.wait_revision(first)
    run = api.run()
    assert (run["marker"], run["code_revision"]) == ("v1", first)
    assert api.get("/api/deployments/f/f").json()["version"] == first

    second = project.flow("v2")
    if trigger == "api":
        api.sync()
    else:
        api.served.signal(signal.SIGHUP)
    api.wait_revision(second)
    run = api.run()
    assert (run["marker"], run["code_revision"]) == ("v2", second)
    assert api.get("/api/deployments/f/f").json()["version"] == second
    assert [r.code_revision for r in api.served.completed()] == [first, second]
    assert api.served.process.poll() is None


# ── 2. a run in progress keeps its revision ─────────────────────────────────────────


def test_run_in_progress_finishes_on_its_old_revision(project, serve, tmp_path):
    first = project.flow("old")
    api = serve([*ENTRY, "--source", project.url])
    api.wait_revision(first)
    gate, started = tmp_path / "gate", tmp_path / "started"
    slow = api.start(gate=str(gate), started=str(started))
    wait_for(started.exists, what="the slow run to start")

    # More new revisions than cleanup keeps (3): the running one's files must stay.
    for n in range(1, 5):
        newest = project.flow(f"new{n}")
        api.sync()
        api.wait_revision(newest)
    [old_files] = (tmp_path / "checkouts").glob(f"*/revisions/{first}")
    assert (old_files / "marker.txt").read_text() == "old\n"
    gate.write_text("go")
    old_run = api.finish(slow)
    assert (old_run["result"], old_run["code_revision"]) == ("old", first)
    new_run = api.run()
    assert (new_run["marker"], new_run["code_revision"]) == ("new4", newest)
    latest = project.flow("new5")
    api.sync()  # cleanup runs when a revision is published: once released, it goes
    api.wait_revision(latest)
    assert not old_files.exists()


# ── 3. bad commits are refused; the old revision keeps serving ──────────────────────


def test_syntax_error_and_missing_flow_are_refused(project, serve):
    good = project.flow("good")
    api = serve([*ENTRY, "--source", project.url])
    api.wait_revision(good)
    name = api.source()["name"]
    bad_commits = {
        "SyntaxError": {"flows/f.py": FLOW + "\ndef broken(:\n"},
        "has no flow 'f'": {"flows/f.py": FLOW.replace("def f(", "def g(")},
    }
    for count, (why, files) in enumerate(bad_commits.items(), 1):
        sha = project.commit({**files, "marker.txt": "bad\n"}, why)
        api.sync()
        source = api.wait_source(f"{sha[:12]} refused", refused_revision=sha)
        assert source["revision"] == good
        assert sha[:12] in source["last_error"] and why in source["last_error"], source
        assert api.metric("dockyard_code_load_failures_total", source=name) == count
        run = api.run()
        assert (run["marker"], run["code_revision"]) == ("good", good)
        line = f"revision {sha[:12]} of {project.url} refused"
        wait_for(lambda line=line: line in api.served.output(), what="the log line")
    fixed = project.flow("fixed")
    api.sync()
    api.wait_revision(fixed)
    assert api.source()["refused_revision"] is None
    assert api.run()["marker"] == "fixed"


def config(*deployments: str) -> str:
    return "deployments:\n" + "".join(deployments)


def deployment(name: str, interval: int = 3600, params: str = "{}") -> str:
    return (
        f"  - entrypoint: flows/f.py:f\n    name: {name}\n"
        f"    schedules: [{{interval: {interval}}}]\n    parameters: {params}\n"
    )


def test_broken_dockyard_yaml_is_refused(project, serve):
    good = project.commit(
        {"flows/f.py": FLOW, "marker.txt": "good\n", "dockyard.yaml": config(deployment("a"))}
    )
    api = serve(["--source", project.url, "--config", "dockyard.yaml"])
    api.wait_revision(good)
    name = api.source()["name"]
    broken = {
        "invalid YAML": "deployments: [\n",
        "unknown key": config(deployment("a")) + "surprise: 1\n",
        "missing flow": config(deployment("a").replace("f.py:f", "f.py:nope")),
        "given twice": config(deployment("a"), deployment("a", params="{tag: x}")),
    }
    for count, (why, text) in enumerate(broken.items(), 1):
        sha = project.commit({"dockyard.yaml": text, "marker.txt": "bad\n"}, why)
        api.sync()
        source = api.wait_source(f"{why} refused", refused_revision=sha)
        assert source["revision"] == good and sha[:12] in source["last_error"], source
        assert why != "given twice" or why in source["last_error"], source
        assert api.metric("dockyard_code_load_failures_total", source=name) == count
        assert [d["name"] for d in api.get("/api/deployments").json()] == ["f/a"]
        run = api.run("f/a")
        assert (run["marker"], run["code_revision"]) == ("good", good)


# ── 4. dockyard.yaml in the repository reconciles without a restart ─────────────────


def test_dockyard_yaml_changes_reconcile_the_deployments(project, serve):
    first = project.commit(
        {"flows/f.py": FLOW, "marker.txt": "one\n", "dockyard.yaml": config(deployment("a"))}
    )
    api = serve(["--source", project.url, "--config", "dockyard.yaml"])
    api.wait_revision(first)

    def names() -> list[str]:
        return sorted(d["name"] for d in api.get("/api/deployments").json())

    assert names() == ["f/a"]
    added = project.commit({"dockyard.yaml": config(deployment("a"), deployment("b"))}, "add b")
    api.sync()
    api.wait_revision(added)
    assert names() == ["f/a", "f/b"]
    assert api.get("/api/deployments/f/b").json()["version"] == added
    assert api.run("f/b")["code_revision"] == added

    text = config(deployment("a", 1800, "{tag: '-x'}"), deployment("b"))
    changed = project.commit({"dockyard.yaml": text, "marker.txt": "two\n"}, "change a")
    api.sync()
    api.wait_revision(changed)
    detail = api.get("/api/deployments/f/a").json()
    assert detail["parameters"] == {"tag": "-x"}
    assert "1800" in str(detail["schedules"]), detail["schedules"]
    run = api.run("f/a")
    assert (run["marker"], run["parameters"]["tag"]) == ("two", "-x")

    removed = project.commit({"dockyard.yaml": config(deployment("a", 1800))}, "remove b")
    api.sync()
    api.wait_revision(removed)
    assert names() == ["f/a"]
    gone = api.get("/api/deployments/f/b").json()  # kept in the database, shown as such
    assert (gone["served"], gone["next_run"], gone["next_runs"]) == (False, None, [])
    every = api.get("/api/deployments", params={"all": "true"}).json()
    assert sorted((d["name"], d["served"]) for d in every) == [("f/a", True), ("f/b", False)]
    assert api.served.process.poll() is None


# ── 5. fifty failed pulls in a row ──────────────────────────────────────────────────


def test_fifty_failed_pulls_keep_the_old_revision_serving(project, serve):
    good = project.flow("v1")
    api = serve([*ENTRY, "--source", project.url])
    api.wait_revision(good)
    name = api.source()["name"]
    project.hide()
    for failures in range(1, 51):
        api.sync()
        source = api.wait_failures(failures)
    assert source["revision"] == good and source["last_error"], source
    assert (api.metric("dockyard_code_sync_total", source=name, result="error") or 0) >= 50
    assert api.get("/health").status_code == 200
    run = api.run()
    assert (run["marker"], run["code_revision"]) == ("v1", good)
    assert api.served.process.poll() is None

    project.restore()
    newer = project.flow("v2")
    api.sync()
    api.wait_revision(newer)
    assert api.source()["consecutive_failures"] == 0
    assert api.run()["marker"] == "v2"


# ── 6. force-push and a deleted branch ──────────────────────────────────────────────


def test_force_push_is_followed(project, serve):
    project.flow("v1")
    second = project.flow("v2")
    api = serve([*ENTRY, "--source", project.url])
    api.wait_revision(second)
    rewritten = project.rewrite("v3")
    api.sync()
    api.wait_revision(rewritten)
    run = api.run()
    assert (run["marker"], run["code_revision"]) == ("v3", rewritten)
    # A bad commit, then the branch forced back to the serving revision: nothing refused.
    bad = project.commit({"flows/f.py": "def broken(:\n"}, "bad")
    api.sync()
    api.wait_source("the bad commit refused", refused_revision=bad)
    project.git("reset", "--quiet", "--hard", rewritten)
    project.push(force=True)
    api.sync()
    source = api.wait_source("the branch back", refused_revision=None, last_error=None)
    assert source["revision"] == rewritten


def test_deleted_branch_keeps_the_last_good_revision(project, serve):
    project.flow("main")
    feature = project.commit({"marker.txt": "feature\n"}, branch="feature")
    api = serve([*ENTRY, "--source", project.url, "--source-branch", "feature"])
    api.wait_revision(feature)
    project.git("push", "--quiet", "origin", "--delete", "feature")
    api.sync()
    source = api.wait_failures(1)
    assert source["revision"] == feature and "feature" in source["last_error"], source
    assert api.get("/health").status_code == 200
    assert api.run()["marker"] == "feature"
    assert api.served.process.poll() is None


# ── 7. credentials over HTTP: wrong, then right; the token never shows ──────────────


def _family(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


@pytest.mark.parametrize("given", ["token_file", "env"])
def test_wrong_then_right_token_and_the_token_never_shows(tmp_path, serve, given):
    repos = tmp_path / "repos"
    project = GitProject(repos)
    good = project.flow("secret-v1")
    token, wrong = "tok-" + os.urandom(12).hex(), "bad-" + os.urandom(12).hex()
    token_file = tmp_path / "token"
    token_file.write_text(wrong + "\n")
    with GitHttpServer(repos, token).running() as server:
        url = f"{server.url}/remote.git"
        if given == "env":  # a wrong token in the environment, then a restart with the right one
            apis = [serve([*ENTRY, "--source", url], DOCKYARD_SOURCE_TOKEN=wrong)]
            assert apis[0].wait_failures(1)["last_error"]
            apis[0].served.signal(signal.SIGTERM)
            assert apis[0].served.wait_exit(30) == 0
            api = serve([*ENTRY, "--source", url], DOCKYARD_SOURCE_TOKEN=token)
        else:
            api = serve([*ENTRY, "--source", url], DOCKYARD_SOURCE_TOKEN_FILE=str(token_file))
            apis = []
        if given == "token_file":
            source = api.wait_failures(1)
            assert source["revision"] is None and source["last_error"], source
            assert api.get("/health").status_code == 200
            assert api.get("/ready").status_code == 503
            assert api.served.process.poll() is None
            token_file.write_text(token + "\n")  # rotated: read again before the next pull
            api.sync()
        api.wait_revision(good)
        gate, started = tmp_path / "gate", tmp_path / "started"
        running = api.start(gate=str(gate), started=str(started))
        wait_for(started.exists, what="the run to start")
        cmdlines = [
            Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            for pid in _family(api.served.process.pid)
        ]
        assert len(cmdlines) >= 2  # the serve process and the run's process
        gate.write_text("go")
        assert api.finish(running)["result"] == "secret-v1"
        pulled = api.source()["last_success_at"]
        api.sync()
        wait_for(lambda: api.source()["last_success_at"] != pulled, what="a no-change pull")
        api.get("/api/sources")
        api.get("/api/deployments")
        api.get("/api/deployments/f/f")
        api.get("/metrics")
        assert server.leaks == []
    for secret in (token, wrong):
        for each in [*apis, api]:
            assert secret not in each.served.output()
            assert not [a for a in each.answers if secret in a]
        assert not [c for c in cmdlines if secret in c]


# ── 8. webhook signatures ───────────────────────────────────────────────────────────


def test_webhook_signature_good_and_bad(project, serve):
    first = project.flow("v1")
    api = serve(
        [*ENTRY, "--source", project.url],
        DOCKYARD_SOURCE_WEBHOOK_SECRET="hook-secret",
        DOCKYARD_API_TOKEN="api-token",
    )
    before = api.wait_revision(first)
    name = before["name"]

    def pulls() -> float:
        return sum(
            api.metric("dockyard_code_sync_total", source=name, result=r) or 0
            for r in ("success", "noop", "error", "refused")
        )

    counted = pulls()
    second = project.flow("v2")
    body = b'{"ref": "refs/heads/main", "after": "%s"}' % second.encode()
    for headers in (
        {"X-Hub-Signature-256": signature("wrong-secret", body)},
        {"X-Hub-Signature-256": signature("hook-secret", body + b" ")},
        {},  # neither a signature nor the API token
    ):
        answer = api.post("/api/sources/sync", content=body, headers=headers)
        assert answer.status_code == 401, answer.text
    source = api.source()
    assert (source["revision"], source["last_attempt_at"]) == (first, before["last_attempt_at"])

    headers = {"X-Hub-Signature-256": signature("hook-secret", body)}
    answer = api.post("/api/sources/sync", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    api.wait_revision(second)
    assert pulls() == counted + 1  # the refused requests pulled nothing
    api.client.headers["Authorization"] = "Bearer api-token"
    assert api.run()["marker"] == "v2"


# ── 9. start-up without a good revision ─────────────────────────────────────────────


def test_not_ready_until_the_first_good_revision(project, serve):
    bad = project.commit({"flows/f.py": "def broken(:\n", "marker.txt": "bad\n"})
    api = serve([*ENTRY, "--source", project.url])
    api.wait_source("the first revision refused", refused_revision=bad)
    ready = api.wait_ready(503)
    assert "no good revision" in ready["reason"] and bad[:12] in ready["reason"], ready
    assert api.get("/health").status_code == 200
    good = project.flow("v1")
    api.sync()
    api.wait_revision(good)
    api.wait_ready(200)
    assert api.run()["marker"] == "v1"


def test_startup_timeout_exits_non_zero(tmp_path, env):
    args = [*ENTRY, "--source", str(tmp_path / "missing.git")]
    extra = {"DOCKYARD_SOURCE_STARTUP_TIMEOUT": "3"}
    with serve_process(args, tmp_path, env={**env, **extra}) as served:
        assert served.wait_exit(30) != 0
        assert "no good code revision after 3s" in served.output()
        assert "missing.git" in served.output()


# ── 10. readiness reports a stale source ────────────────────────────────────────────


def test_stale_source_makes_the_process_unready_not_dead(project, serve):
    good = project.flow("v1")
    api = serve(
        [*ENTRY, "--source", project.url, "--source-pull-interval", "0.5"],
        DOCKYARD_SOURCE_STALENESS="2",
    )
    api.wait_revision(good)
    api.wait_ready(200)
    project.hide()
    ready = api.wait_ready(503)
    assert project.url in ready["reason"] and "last good pull" in ready["reason"], ready
    assert api.get("/health").status_code == 200
    assert api.served.process.poll() is None
    assert api.run()["marker"] == "v1"
    project.restore()
    api.sync()
    api.wait_ready(200)


# ── 11. --once ──────────────────────────────────────────────────────────────────────


def test_once_exits_0_for_a_good_revision_and_1_for_a_bad_one(project, tmp_path, env):
    def once() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dockyard", "serve", "flows/f.py:f"]
        command += ["--source", project.url, "--once", "--state", str(tmp_path / "s.db")]
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    good = project.flow("v1")
    done = once()
    assert done.returncode == 0, done.stdout + done.stderr
    assert len((done.stdout + done.stderr).strip().splitlines()) == 1, done
    assert good[:12] in done.stdout
    [current] = (tmp_path / "checkouts").glob("*/current")
    assert current.resolve().name == good

    bad = project.commit({"flows/f.py": "def broken(:\n"}, "bad")
    done = once()
    assert done.returncode == 1, done.stdout + done.stderr
    output = (done.stdout + done.stderr).strip().splitlines()
    assert len(output) == 1 and bad[:12] in output[0] and "SyntaxError" in output[0], output
    assert current.resolve().name == good  # the bad revision is not published


# ── 12. the Python API ──────────────────────────────────────────────────────────────


def test_flow_from_source_serve(project, tmp_path, env):
    from tests.helpers import Served

    first = project.flow("py-v1")
    script = tmp_path / "serve_it.py"
    script.write_text(
        "from dockyard import flow\n"
        f"flow.from_source({project.bare.as_uri()!r}, 'flows/f.py:f')"
        ".serve(name='x', interval=3600)\n"
    )
    state, log = tmp_path / "py.db", tmp_path / "py.log"
    extra = {"DOCKYARD_STATE": str(state), "DOCKYARD_WEBSERVER": "true"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script)], cwd=tmp_path, env={**env, **extra},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        api = Api(Served(process, log, state))
        api.wait_revision(first)
        assert api.run("f/x")["marker"] == "py-v1"
        second = project.flow("py-v2")
        api.sync()
        api.wait_revision(second)
        run = api.run("f/x")
        assert (run["marker"], run["code_revision"]) == ("py-v2", second)
        api.client.close()
    except BaseException:
        print(log.read_text())
        raise
    finally:
        process.kill()
        process.wait(30)


# ── 13. metrics ─────────────────────────────────────────────────────────────────────


def test_code_metrics_after_a_few_pulls(project, serve):
    project.flow("v1")
    api = serve([*ENTRY, "--source", project.url])
    source = api.wait_source("a first pull", consecutive_failures=0, last_error=None)
    while not source.get("revision"):
        source = api.wait_failures(0)
    for _ in range(2):  # pulls that find nothing new
        api.sync()
        source = wait_for(
            lambda s=source: (n := api.source())["last_success_at"] != s["last_success_at"] and n,
            what="a no-change pull",
        )
    current = project.flow("v2")
    api.sync()
    api.wait_revision(current)
    text = api.get("/metrics").text
    name = source["name"]
    assert (api.metric("dockyard_code_sync_total", source=name, result="success") or 0) >= 2
    assert (api.metric("dockyard_code_sync_total", source=name, result="noop") or 0) >= 2
    series = [line for line in text.splitlines() if line.startswith("dockyard_code_revision_info{")]
    assert len(series) == 1 and f'revision="{current}"' in series[0], series
    assert api.metric("dockyard_code_sync_last_success_timestamp_seconds", source=name)
    assert api.metric("dockyard_code_sync_duration_seconds_count", source=name) >= 4
    assert api.metric("dockyard_code_load_failures_total", source=name) in (None, 0.0)


# ── restart with the remote down: the last published revision serves ───────────────


def test_restart_serves_the_last_published_revision_while_the_remote_is_down(
    project, tmp_path, env
):
    good = project.flow("v1")
    args = [*ENTRY, "--source", project.url]
    extra = {"DOCKYARD_SOURCE_STALENESS": "2"}
    with serve_process(args, tmp_path, env={**env, **extra}) as served:
        api = Api(served)
        api.wait_revision(good)
        served.signal(signal.SIGTERM)
        assert served.wait_exit(30) == 0
        api.client.close()
    project.hide()
    with serve_process(args, tmp_path, env={**env, **extra}) as served:
        api = Api(served)
        source = api.wait_failures(1)
        assert source["revision"] == good and source["last_error"], source
        run = api.run()
        assert (run["marker"], run["code_revision"]) == ("v1", good)
        ready = api.wait_ready(503)  # no good pull since the restart: stale after 2 s
        assert project.url in ready["reason"] and "since start-up" in ready["reason"], ready
        assert api.get("/health").status_code == 200
        api.client.close()


def test_a_run_that_returned_before_a_kill_9_is_recorded_completed_after_the_restart(
    project, tmp_path, env
):
    """Its deployment comes from git, so the restart adopts it only once the last published
    revision is checked: the dead process's report must still be there by then."""
    good = project.flow("v1")
    args = [*ENTRY, "--source", project.url]
    gate, started = tmp_path / "gate", tmp_path / "started"
    with serve_process(args, tmp_path, env=env) as served:
        api = Api(served)
        api.wait_revision(good)
        run_id = api.start(gate=str(gate), started=str(started))
        wait_for(started.exists, what="the flow to start")
        child = wait_for(lambda: served.runs()[0].pid, what="the run's pid stored")
        served.signal(signal.SIGSTOP)  # it sees nothing more: the run stays Running
        gate.write_text("go")
        wait_for(lambda: not pid_alive(child), timeout=30, what="the flow to return")
        served.signal(signal.SIGKILL)
        served.wait_exit()
        api.client.close()
    assert [(r.id, r.state.value) for r in served.runs()] == [(run_id, "Running")]
    with serve_process(args, tmp_path, env=env, name="again") as again:
        api = Api(again)
        api.wait_revision(good)
        done = api.finish(run_id)
        assert (done["attempt"], done["result"].strip("'"), done["code_revision"]) == (
            1, "v1", good,
        )  # fmt: skip
        assert "it ended Completed before its serve process stopped" in again.output()
        api.client.close()


# ── the serve process never imports the user's code ─────────────────────────────────

HELPER_FLOW = """
import helpers
from dockyard import flow


@flow(description=helpers.DESCRIPTION)
def f(cron: str = helpers.CRON):
    return cron
"""
HELPER = """
import os

DESCRIPTION = "runs on {cron}"
CRON = "{cron}"
with open(os.environ["IMPORT_LOG"], "a") as log:  # who imported this module
    log.write(f"{{os.getpid()}}\\n")
"""


def test_a_helper_module_change_reaches_the_deployment_and_no_user_code_is_imported(
    project, serve, tmp_path
):
    """Revision 2 changes only flows/helpers.py, which the flow module reads at import."""
    log = tmp_path / "imported-by.txt"
    first = project.commit(
        {"flows/f.py": HELPER_FLOW, "flows/helpers.py": HELPER.format(cron="0 1 * * *")}
    )
    api = serve([*ENTRY, "--source", project.url], IMPORT_LOG=str(log))
    api.wait_revision(first)
    shown = api.get("/api/deployments/f/f").json()
    assert shown["description"] == "runs on 0 1 * * *"
    assert shown["parameter_schema"]["properties"]["cron"]["default"] == "0 1 * * *"
    assert api.run()["marker"] == "0 1 * * *"

    second = project.commit({"flows/helpers.py": HELPER.format(cron="30 2 * * *")})
    api.sync()
    api.wait_revision(second)
    shown = api.get("/api/deployments/f/f").json()
    assert shown["description"] == "runs on 30 2 * * *"
    assert shown["parameter_schema"]["properties"]["cron"]["default"] == "30 2 * * *"
    run = api.run()
    assert (run["marker"], run["code_revision"]) == ("30 2 * * *", second)
    importers = {int(pid) for pid in log.read_text().split()}
    # The probes and the runs imported the helper (so the log works) ...
    assert len(importers) >= 4
    # ... and the serve process itself never did.
    assert api.served.process.pid not in importers


DEPLOYMENT_FLOW = """
import helpers
from dockyard import flow


@flow
def f():
    return helpers.CRON


daily = f.to_deployment("daily", cron=helpers.CRON)
"""


def test_a_deployment_made_in_code_takes_its_schedule_from_the_helper_of_its_revision(
    project, serve, tmp_path
):
    """The entrypoint names a module-level deployment whose cron a sibling module holds."""
    log = tmp_path / "imported-by.txt"
    helper = HELPER.replace("{{os.getpid()}}", "{os.getpid()}")
    first = project.commit(
        {"flows/f.py": DEPLOYMENT_FLOW, "flows/helpers.py": helper.replace("{cron}", "0 1 * * *")}
    )
    api = serve(["flows/f.py:daily", "--source", project.url], IMPORT_LOG=str(log))
    api.wait_revision(first)
    shown = api.get("/api/deployments/f/daily").json()
    assert [s["cron"] for s in shown["schedules"]] == ["0 1 * * *"]
    assert shown["version"] == first

    second = project.commit({"flows/helpers.py": helper.replace("{cron}", "30 2 * * *")})
    api.sync()
    api.wait_revision(second)
    shown = api.get("/api/deployments/f/daily").json()
    assert [s["cron"] for s in shown["schedules"]] == ["30 2 * * *"]
    first_run = datetime.fromisoformat(shown["next_runs"][0])
    assert (first_run.hour, first_run.minute) == (2, 30)
    run = api.run("f/daily")
    assert (run["marker"], run["code_revision"]) == ("30 2 * * *", second)
    assert api.served.process.pid not in {int(pid) for pid in log.read_text().split()}
