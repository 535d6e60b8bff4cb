"""``dockyard.yaml`` schedules with ``parameters``, ``active`` and ``slug``: what the serve
process's probe loads (``deploying.from_config``), and errors that name the file, the
place and its line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockyard.config import load_config
from dockyard.core.deployments import Deployment
from dockyard.errors import ConfigError
from dockyard.execution.deploying import from_config

CLI_TIMEOUT_SECONDS = 60
FLOWS = """\
from dockyard import flow


@flow
def etl(day: str = "today", dry: bool = False):
    print(day, dry)
"""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the flows file may edit sys.path: undone after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def project(tmp_path: Path, schedules: str) -> Path:
    """A flows file and a dockyard.yaml whose one deployment has these ``schedules:`` lines."""
    (tmp_path / "flows.py").write_text(FLOWS, encoding="utf-8")
    text = "deployments:\n  - entrypoint: flows.py:etl\n    name: nightly\n    schedules:\n"
    text += textwrap.indent(textwrap.dedent(schedules), "      ")
    path = tmp_path / "dockyard.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path) -> list[Deployment]:
    return from_config(load_config(path), path)


def test_schedule_entries_take_parameters_active_and_slug(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        """\
        - cron: "0 3 * * *"
          slug: nightly-dry
          parameters: {dry: "yes", day: yesterday}
        - interval: 3600
          active: false
        - rrule: FREQ=WEEKLY
        """,
    )

    [deployment] = load(path)

    assert [s.slug for s in deployment.schedules] == ["nightly-dry", None, None]
    assert [s.active for s in deployment.schedules] == [True, False, True]
    # Checked against the flow like the deployment's parameters: "yes" → true.
    assert [dict(s.parameters) for s in deployment.schedules] == [
        {"dry": True, "day": "yesterday"},
        {},
        {},
    ]
    assert Deployment.from_spec(deployment.to_spec()).schedules == deployment.schedules


@pytest.mark.parametrize(
    ("schedules", "where", "message"),
    [
        (
            """\
            - cron: "0 3 * * *"
            - interval: 60
              parameters: [1, 2]
            """,
            "schedules[1].parameters (line 7)",
            "must be a mapping of names to values, got [1, 2]",
        ),
        (
            """\
            - cron: "0 3 * * *"
              active: "no"
            """,
            "schedules[0].active (line 6)",
            "must be true or false, got 'no'",
        ),
        (
            """\
            - cron: "0 3 * * *"
              slug: ""
            """,
            "schedules[0].slug (line 6)",
            "'' is not allowed: it is empty",
        ),
        (
            """\
            - cron: "0 3 * * *"
              slug: eu
            - interval: 60
              slug: eu
            """,
            "schedules[1].slug (line 8)",
            "'eu' is also the slug of schedules[0]; give each schedule of a deployment its own",
        ),
        (
            """\
            - cron: "0 3 * * *"
              parameters: {dry: maybe}
            """,
            "schedules[0].parameters (line 6)",
            "dry: Input should be a valid boolean",
        ),
        (
            """\
            - interval: 60
            - cron: "0 3 * * *"
              parameters: {colour: red}
            """,
            "schedules[1].parameters (line 7)",
            "colour: ",
        ),
    ],
)
def test_schedule_errors_name_the_place_and_its_line(
    tmp_path: Path, schedules: str, where: str, message: str
) -> None:
    path = project(tmp_path, schedules)

    with pytest.raises(ConfigError) as info:
        load(path)

    assert str(info.value).startswith(f"{path}: deployments[0].{where}: {message}")
    assert "\n" not in str(info.value)


def test_serve_check_prints_the_schedule_error_on_one_line(tmp_path: Path) -> None:
    path = project(tmp_path, '- cron: "0 3 * * *"\n  parameters: {dry: maybe}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}

    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--config", str(path), "--check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"dockyard: error: {path}: deployments[0].schedules[0].parameters (line 6): dry: "
    )
