"""The git adapter (dockyard.sources.gitcli) with the real git binary."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dockyard.sources.gitcli import GitCommandError, run_git
from tests.git_server import git


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_output_is_stripped_stdout(tmp_path: Path) -> None:
    git("init", "--quiet", "-b", "main", tmp_path)
    assert run_git(["symbolic-ref", "--short", "HEAD"], cwd=tmp_path, timeout_seconds=30) == "main"


def test_failure_carries_gits_stderr_in_the_c_locale(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    with pytest.raises(GitCommandError) as caught:
        run_git(["rev-parse", "HEAD"], cwd=tmp_path, timeout_seconds=30)
    assert caught.value.command == "git rev-parse"
    assert "not a git repository" in caught.value.detail
    assert caught.value.timed_out is False


def test_a_timeout_kills_git_and_every_helper_it_started(tmp_path: Path) -> None:
    git("init", "--quiet", tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/never.git"
        assert _processes_mentioning(url) == []
        with pytest.raises(GitCommandError) as caught:
            run_git(["fetch", url, "HEAD"], cwd=tmp_path, timeout_seconds=1)
        # git-remote-http (a child of git) held the connection; it is gone with git.
        assert _processes_mentioning(url) == []
    assert caught.value.timed_out is True
    assert caught.value.detail.startswith("Timeout: the command")


def test_never_prompts_and_inherits_only_the_given_descriptors(tmp_path: Path) -> None:
    git("init", "--quiet", tmp_path)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"from the pipe\n")
        script = tmp_path / "show.sh"
        script.write_text(
            '#!/bin/sh\nprintf "%s|" "$GIT_TERMINAL_PROMPT" "$X"\n'
            'read -r line < "/dev/fd/$FD" && printf "%s|" "$line"\n'
            f"[ -e /dev/fd/{write_end} ] && echo leaked || echo closed\n"
        )
        script.chmod(0o755)
        out = run_git(
            ["-c", f"alias.probe-env=!{script}", "probe-env"],
            cwd=tmp_path,
            timeout_seconds=30,
            env={"X": "given", "FD": str(read_end)},
            pass_fds=[read_end],
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    assert out == "0|given|from the pipe|closed"


def test_messages_name_the_subcommand(tmp_path: Path) -> None:
    with pytest.raises(GitCommandError, match=r"^git log: "):
        run_git(["-C", str(tmp_path), "-c", "a.b=c", "log"], cwd=tmp_path, timeout_seconds=30)


def test_missing_git_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GitCommandError, match="git is not installed"):
        run_git(["status"], cwd=tmp_path, timeout_seconds=30, env={"PATH": str(tmp_path)})
