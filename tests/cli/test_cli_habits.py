"""What people who use command lines expect of ``dockyard``: ``--version``/``-V``, ``-h``
everywhere, shell completion, help for every option that names its variable, choices
from the real enums, no Python type names and nothing cut off at 80 columns.

The command tree is walked in-process (every command, including ones added later); what
a user sees is asserted on the real CLI in subprocesses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dockyard import __version__
from dockyard.cli.app import click_command
from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.settings import Settings, env_name, flag_name, has_flag
from tests.cli.test_cli import CLI_TIMEOUT_SECONDS, ROOT, dockyard
from tests.git_project import GitProject

TYPE_NAMES = re.compile(r"<\w+>|\blist\[|\b(?:TEXT|INTEGER|FLOAT|BOOLEAN|STRING|INT|STR)\b")
"""What click and typer print for an option without a metavar of its own."""
NOT_SETTINGS = {"--once", "--check", "--json", "--help"}
"""``serve`` options that are not a setting (what to do, not how to be configured)."""
BAKED = {"limit", "pause_on_shutdown", "shutdown_grace", "port"}
"""``build`` options baked into the image, which their variables override at run time."""


def commands(command: Any = None, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group of the tree, with its path below ``dockyard``."""
    command = command if command is not None else click_command()
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(commands(sub, (*path, name)))
    return found


COMMANDS = {" ".join(path) or "dockyard": command for path, command in commands()}
PATHS = list(COMMANDS)


def option(command: Any, flag: str) -> Any:
    (found,) = [p for p in command.params if flag in getattr(p, "opts", [])]
    return found


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return dockyard(*args, env={"COLUMNS": "80", **(env or {})})


# -- the tree, walked ---------------------------------------------------------------------


def test_the_walk_finds_every_command() -> None:
    assert {"dockyard", "serve", "build", "version", "deployment ls", "run logs"} <= set(PATHS)
    assert len(PATHS) >= 15


@pytest.mark.parametrize("path", PATHS)
def test_every_option_and_argument_has_help(path: str) -> None:
    missing = [p.name for p in COMMANDS[path].params if not (getattr(p, "help", "") or "").strip()]
    assert not missing, f"{path}: no help for {missing}"


@pytest.mark.parametrize("path", PATHS)
def test_every_value_has_a_metavar_that_is_not_a_python_type(path: str) -> None:
    for param in COMMANDS[path].params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        assert param.metavar, f"{path} {param.name}: no metavar (typer would show its type)"
        assert not TYPE_NAMES.search(param.metavar), f"{path} {param.name}: {param.metavar}"


def test_serve_options_name_the_variable_of_their_setting() -> None:
    serve = COMMANDS["serve"]
    fields = [f for f in Settings.model_fields if has_flag(f)]
    for field in fields:
        if field == "entrypoint":  # the argument
            (param,) = [p for p in serve.params if p.name == "entrypoint"]
        else:
            param = option(serve, flag_name(field))
        assert param.help.endswith(f"[env: {env_name(field)}]"), (field, param.help)
    named = {flag_name(f) for f in fields}
    for param in serve.params:
        flags = set(param.opts)
        if param.param_type_name != "option" or param.hidden or flags & (named | NOT_SETTINGS):
            continue
        raise AssertionError(f"serve {sorted(flags)} is neither a setting nor in NOT_SETTINGS")


def test_build_options_baked_into_the_image_name_their_run_time_variable() -> None:
    build = COMMANDS["build"]
    baked = {p.name for p in build.params if "[run-time env: " in (p.help or "")}
    assert baked == BAKED
    for field in BAKED:
        assert option(build, flag_name(field)).help.endswith(f"[run-time env: {env_name(field)}]")


def test_enum_options_offer_the_enums_values() -> None:
    for path in ("serve", "build"):
        command = COMMANDS[path]
        assert option(command, "--overlap").metavar == "[allow|skip|cancel-previous]"
        assert option(command, "--catchup").metavar == "[latest|none|all]"
    assert [p.value for p in OverlapPolicy] == ["allow", "skip", "cancel-previous"]
    assert [p.value for p in CatchupPolicy] == ["latest", "none", "all"]


def test_renamed_flags_are_hidden() -> None:
    serve, build = COMMANDS["serve"], COMMANDS["build"]
    for flag in ("--branch", "--git-tag", "--commit", "--pull-interval", "--version"):
        assert option(serve, flag).hidden, flag
    assert option(build, "--flow-tag").hidden


# -- what a user sees ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_dash_h_shows_the_whole_help_at_80_columns(path: str) -> None:
    args = [] if path == "dockyard" else path.split()

    result = cli(*args, "-h")

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"Usage: dockyard {' '.join(args)}".rstrip() + " "), text
    assert not TYPE_NAMES.search(text), TYPE_NAMES.search(text)
    assert max(len(line) for line in text.splitlines()) <= 80
    listing = text.partition("\nCommands:\n")[2]
    cut = [line for line in listing.splitlines() if line.rstrip().endswith("...")]
    assert not cut, cut  # a command's summary fits beside its name
    assert "-h, --help" in text


def test_dash_h_and_help_print_the_same() -> None:
    for args in ([], ["run", "ls"]):
        assert cli(*args, "-h").stdout == cli(*args, "--help").stdout


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag: str) -> None:
    result = cli(flag)

    assert (result.returncode, result.stdout, result.stderr) == (0, f"{__version__}\n", "")
    assert cli("version").stdout == result.stdout


def test_serve_options_show_their_variables_in_the_help() -> None:
    text = " ".join(cli("serve", "-h").stdout.split())  # unwrapped

    for needle in (
        "--limit N Max concurrent runs (0: no limit). [env: DOCKYARD_LIMIT]",
        "--source-branch BRANCH Branch of --source. [env: DOCKYARD_SOURCE_BRANCH]",
        "--deployment-version LABEL Deployment version label. [env: DOCKYARD_VERSION]",
        "--overlap [allow|skip|cancel-previous]",
        "ENTRYPOINT path/to/file.py:flow_function [env: DOCKYARD_ENTRYPOINT]",
    ):
        assert needle in text
    shown = set(re.findall(r"^ +(--[\w-]+)", cli("serve", "-h").stdout, re.MULTILINE))
    assert "--source-branch" in shown
    assert not {"--branch", "--git-tag", "--commit", "--pull-interval", "--version"} & shown


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["serve", "x.py:f", "--overlap", "sometimes"], "--overlap"),
        (["serve", "x.py:f", "--catchup", "most"], "--catchup"),
        (["build", "x.py:f", "-t", "a/b:1", "--overlap", "sometimes"], "--overlap"),
    ],
)
def test_a_value_that_is_not_a_choice_lists_the_choices(args: list[str], option: str) -> None:
    result = cli(*args)

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"dockyard: error: Invalid value for '{option}': ")
    choices = OverlapPolicy if option == "--overlap" else CatchupPolicy
    assert all(repr(c.value) in line for c in choices), line
    assert "Value error" not in line


def test_choices_are_case_insensitive() -> None:
    result = cli(
        "serve", "examples/hello_world.py:hello_world", "--overlap", "SKIP",
        "--catchup", "All", "--check", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert '"overlap": "skip"' in result.stdout and '"catchup": "all"' in result.stdout


# -- shell completion ---------------------------------------------------------------------


def _bash_complete(home: Path, words: list[str]) -> list[str]:
    """What bash offers for ``words`` (the last one being completed), through the script
    ``dockyard --install-completion`` (typed in bash) installed under ``home``."""
    script = home / ".bash_completions" / "dockyard.sh"
    line = (
        f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}; _dockyard_completion dockyard; "
        "printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("DOCKYARD_")}
    result = subprocess.run(
        ["bash", "--norc", "-c", line],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def _typed_in_bash(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``dockyard ARGS`` as a user types it at a bash prompt: typer finds the shell to
    complete for from the parent process (whatever shell runs pytest, e.g. make's sh)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        # "; exit" keeps bash from exec'ing the command: bash stays its parent.
        ["bash", "--norc", "-c", '"$0" -m dockyard "$@"; exit $?', sys.executable, *args],
        env={**env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        cwd=ROOT,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_completion_makes_bash_complete_commands_and_choices(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("# the user's own\n")

    result = _typed_in_bash("--install-completion", home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "source" in (tmp_path / ".bashrc").read_text()
    assert (tmp_path / ".bashrc").read_text().startswith("# the user's own\n")
    assert _bash_complete(tmp_path, ["dockyard", "ser"]) == ["serve"]
    assert set(_bash_complete(tmp_path, ["dockyard", "deployment", "r"])) == {"rm", "resume", "run"}
    assert _bash_complete(tmp_path, ["dockyard", "serve", "--overlap", ""]) == [
        "allow", "skip", "cancel-previous"
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_show_completion_prints_the_script() -> None:
    result = _typed_in_bash("--show-completion")

    assert result.returncode == 0, result.stderr
    assert "_DOCKYARD_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _dockyard_completion dockyard" in result.stdout


# -- renamed settings: the old names work, with a warning ---------------------------------

ENTRY = "flows/f.py:f"


@pytest.fixture(scope="module")
def branches(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitProject, str, str]:
    """A git project whose branches main and feature are at different commits."""
    project = GitProject(tmp_path_factory.mktemp("git"))
    main = project.flow("main")
    feature = project.commit({"marker.txt": "feature\n"}, branch="feature")
    return project, main, feature


def check_source(
    project: GitProject, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``dockyard serve ENTRY --source URL ARGS --check``: pulls, checks, prints the revision."""
    state = str(tmp_path / "state.db")
    return cli("serve", ENTRY, "--source", project.url, *args, "--check", "--state", state, env=env)


def checked_revision(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    match = re.match(r"ok: revision ([0-9a-f]{12}) of ", line)
    assert match, line
    return match.group(1)


def test_the_new_branch_flag_and_variable(
    branches: tuple[GitProject, str, str], tmp_path: Path
) -> None:
    project, main, feature = branches

    by_default = check_source(project, tmp_path)
    by_flag = check_source(project, tmp_path, "--source-branch", "feature")
    by_env = check_source(project, tmp_path, env={"DOCKYARD_SOURCE_BRANCH": "feature"})

    assert checked_revision(by_default) == main[:12]
    assert checked_revision(by_flag) == checked_revision(by_env) == feature[:12]
    assert by_flag.stderr == by_env.stderr == ""


@pytest.mark.parametrize(
    ("args", "env", "warning"),
    [
        (
            [],
            {"DOCKYARD_BRANCH": "feature"},
            "DOCKYARD_BRANCH is deprecated: use DOCKYARD_SOURCE_BRANCH",
        ),
        (["--branch", "feature"], {}, "--branch is deprecated: use --source-branch"),
        (  # both names, one value: fine, with the warning
            [],
            {"DOCKYARD_BRANCH": "feature", "DOCKYARD_SOURCE_BRANCH": "feature"},
            "DOCKYARD_BRANCH is deprecated: use DOCKYARD_SOURCE_BRANCH",
        ),
    ],
)
def test_an_old_branch_name_still_works_with_one_warning(
    branches: tuple[GitProject, str, str],
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    warning: str,
) -> None:
    project, _, feature = branches

    result = check_source(project, tmp_path, *args, env=env)

    assert checked_revision(result) == feature[:12]
    assert result.stderr.splitlines() == [f"dockyard: warning: {warning}"]  # once, not per load


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--source-branch", "main"],
            {"DOCKYARD_BRANCH": "feature", "DOCKYARD_SOURCE_BRANCH": "main"},
            "DOCKYARD_BRANCH (deprecated) and DOCKYARD_SOURCE_BRANCH are both set, to different "
            "values: unset DOCKYARD_BRANCH",
        ),
        (
            ["--branch", "feature", "--source-branch", "main"],
            {},
            "--branch (deprecated) and --source-branch are both given, with different values: "
            "give only --source-branch",
        ),
        (
            ["--pull-interval", "5", "--source-pull-interval", "6"],
            {},
            "--pull-interval (deprecated) and --source-pull-interval are both given, with "
            "different values: give only --source-pull-interval",
        ),
        (
            [],
            {"DOCKYARD_PULL_INTERVAL": "0"},
            "invalid setting: source_pull_interval (DOCKYARD_PULL_INTERVAL): Input should be "
            "greater than 0",
        ),
    ],
)
def test_old_and_new_names_that_disagree_are_a_usage_error(
    branches: tuple[GitProject, str, str],
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    result = check_source(branches[0], tmp_path, *args, env=env)

    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines()[-1] == f"dockyard: error: {expected}"
    assert "Traceback" not in result.stderr


def test_the_old_tag_and_commit_flags_still_work(
    branches: tuple[GitProject, str, str], tmp_path: Path
) -> None:
    project, main, _ = branches
    project.git("tag", "v1", main)
    project.git("push", "--quiet", "origin", "v1")

    by_tag = check_source(project, tmp_path, "--git-tag", "v1")
    by_commit = check_source(project, tmp_path, "--commit", main)

    assert checked_revision(by_tag) == checked_revision(by_commit) == main[:12]
    assert by_tag.stderr == "dockyard: warning: --git-tag is deprecated: use --source-tag\n"
    assert by_commit.stderr == "dockyard: warning: --commit is deprecated: use --source-commit\n"


def test_serve_version_became_deployment_version() -> None:
    hello = "examples/hello_world.py:hello_world"

    new = cli("serve", hello, "--deployment-version", "1.2", "--check", "--json")
    old = cli("serve", hello, "--version", "1.2", "--check", "--json")
    both = cli("serve", hello, "--version", "1", "--deployment-version", "2", "--check")

    assert new.returncode == old.returncode == 0, (new.stderr, old.stderr)
    assert '"version": "1.2"' in new.stdout and new.stdout == old.stdout
    assert (new.stderr, old.stderr) == (
        "",
        "dockyard: warning: --version is deprecated: use --deployment-version\n",
    )
    assert both.returncode == 2
    assert both.stderr.splitlines()[-1] == (
        "dockyard: error: --version (deprecated) and --deployment-version are both given, "
        "with different values: give only --deployment-version"
    )


# -- build: -t/--image names the image, --tag is a deployment tag -------------------------

HELLO_FLOW = "examples/hello_world.py:hello_world"


@pytest.mark.parametrize("image", ["acme/etl:1.0", "etl:1.0", "registry.example:5000/etl"])
def test_build_tag_that_looks_like_an_image_says_to_use_dash_t(image: str) -> None:
    result = cli("build", HELLO_FLOW, "--tag", image)

    assert result.returncode == 2
    assert result.stderr == (
        f"dockyard: error: --tag {image!r} looks like an image name: --tag is now a deployment "
        f"tag (as in serve); name the image with -t/--image, e.g. -t {image}\n"
    )


def test_build_without_an_image_name() -> None:
    result = cli("build", HELLO_FLOW, "--tag", "nightly")

    assert result.returncode == 2
    assert result.stderr == (
        "dockyard: error: -t/--image IMAGE:TAG is required (e.g. -t acme/etl:1.0)\n"
    )


def test_build_flow_tag_still_works_with_a_warning() -> None:
    ok = cli("build", HELLO_FLOW, "--flow-tag", "nightly", "-t", "acme/etl:1", "--print-dockerfile")
    both = cli("build", HELLO_FLOW, "--flow-tag", "a", "--tag", "b", "--image", "acme/etl:1")

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("# Generated by dockyard")
    assert ok.stderr == "dockyard: warning: --flow-tag is deprecated: use --tag\n"
    assert both.returncode == 2
    assert both.stderr.splitlines()[-1] == (
        "dockyard: error: --flow-tag (deprecated) and --tag are both given, with different "
        "values: give only --tag"
    )


def test_build_tags_are_the_deployments_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard import settings
    from dockyard.build.cli import build_arguments

    monkeypatch.setattr(settings, "_WARNED", set())
    flags = {"entrypoint": [HELLO_FLOW], "image": "acme/etl:1.0"}

    assert build_arguments({**flags, "tag": ["etl", "team:data"]})["tags"] == ["etl", "team:data"]
    assert build_arguments({**flags, "flow_tag": ["nightly"]})["tags"] == ["nightly"]
