"""Prefect's import paths resolve to dockyard's names; unsupported features say so."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from dockyard.errors import UnsupportedFeature


@pytest.mark.parametrize(
    ("module", "name", "real"),
    [
        ("dockyard.client.schemas.schedules", "IntervalSchedule", "dockyard.core.schedules"),
        ("dockyard.client.schemas.schedules", "CronSchedule", "dockyard.core.schedules"),
        ("dockyard.server.schemas.schedules", "RRuleSchedule", "dockyard.core.schedules"),
        ("dockyard.runner.storage", "GitRepository", "dockyard.sources.repository"),
        ("dockyard.utilities.annotations", "unmapped", "dockyard.engine.annotations"),
        ("dockyard.utilities.annotations", "quote", "dockyard.engine.annotations"),
        ("dockyard.tasks", "task_input_hash", "dockyard.engine.caching"),
        ("dockyard.futures", "wait", "dockyard.engine.futures"),
        ("dockyard.states", "Completed", "dockyard.core.outcomes"),
        ("dockyard.logging", "get_run_logger", "dockyard.engine.logs"),
        ("dockyard.context", "get_run_context", "dockyard.engine.context"),
        ("dockyard.task_runners", "ThreadPoolTaskRunner", "dockyard.engine.runners"),
        ("dockyard.cache_policies", "INPUTS", "dockyard.engine.caching"),
        ("dockyard", "task", "dockyard.tasks"),
        ("dockyard", "tags", "dockyard.engine.context"),
        ("dockyard", "State", "dockyard.core.outcomes"),
    ],
)
def test_a_prefect_path_gives_the_same_object(module: str, name: str, real: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(
        importlib.import_module(real), name
    )


@pytest.mark.parametrize(
    ("statement", "feature"),
    [
        ("from dockyard.blocks.system import Secret", "blocks"),
        ("from dockyard.variables import Variable", "variables"),
        ("from dockyard.artifacts import create_markdown_artifact", "artifacts"),
        ("from dockyard.transactions import transaction", "transactions"),
        ("from dockyard import Transaction", "transactions"),
        ("from dockyard.concurrency.sync import concurrency", "concurrency"),
        ("from dockyard import pause_flow_run", "pausing a flow run"),
        ("from dockyard import task\ntask(lambda: 1).delay()", "task workers"),
        ("from dockyard import task\ntask(lambda: 1).serve()", "task worker"),
    ],
)
def test_an_unsupported_feature_names_itself(statement: str, feature: str) -> None:
    with pytest.raises(UnsupportedFeature, match=feature):
        exec(statement, {})


def test_a_script_using_an_unsupported_feature_fails_with_one_clear_line(tmp_path) -> None:
    script = tmp_path / "uses_blocks.py"
    script.write_text("from dockyard.blocks.system import Secret\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "UnsupportedFeature: dockyard.blocks.system.Secret: Prefect blocks" in done.stderr


def test_unknown_modules_stay_unknown() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dockyard.no_such_module")
