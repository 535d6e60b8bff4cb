"""Deployments from user code, as the probe makes them: from a flow plus options, or a
deployment the user's module makes itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.core.deployments import Deployment
from dockyard.errors import EntrypointError, UsageError
from dockyard.execution.deploying import from_entrypoint

MODULE = """
from dockyard import flow

CRON = "15 3 * * *"


@flow(retries=2)
def etl(day: str = "today"):
    return day


nightly = etl.to_deployment("nightly", cron=CRON, parameters={"day": "yesterday"})
not_a_flow = 42
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "jobs.py").write_text(MODULE)
    return tmp_path


def test_a_flow_with_options(code: Path) -> None:
    made = from_entrypoint("jobs.py:etl", code, {"interval": [60]}, name="every-minute")
    assert (made.full_name, made.entrypoint, made.retries) == ("etl/every-minute", "jobs.py:etl", 2)
    assert [s.to_dict()["interval"] for s in made.schedules] == [60.0]
    assert Deployment.from_spec(made.to_spec()) == made  # what the probe hands over


def test_a_deployment_made_in_the_module(code: Path) -> None:
    made = from_entrypoint("jobs.py:nightly", code, {}, source_key="repo", revision="abc123")
    assert made.full_name == "etl/nightly"
    assert [s.to_dict()["cron"] for s in made.schedules] == ["15 3 * * *"]
    assert dict(made.parameters) == {"day": "yesterday"}
    assert (made.source_key, made.revision, made.version) == ("repo", "abc123", "abc123")
    renamed = from_entrypoint("jobs.py:nightly", code, {"tags": []}, name="late")
    assert renamed.full_name == "etl/late"


def test_options_for_a_deployment_made_in_code_are_refused(code: Path) -> None:
    with pytest.raises(UsageError, match=r"jobs.py:nightly is a deployment; set cron where"):
        from_entrypoint("jobs.py:nightly", code, {"cron": ["0 * * * *"]})


def test_anything_else_is_not_a_flow(code: Path) -> None:
    with pytest.raises(EntrypointError, match="jobs.py:not_a_flow is an int, not a flow"):
        from_entrypoint("jobs.py:not_a_flow", code, {})
