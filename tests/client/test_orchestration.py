"""get_client and run_deployment without a serve process: where they connect, what they
refuse, how they are called from sync and async code."""

from __future__ import annotations

import asyncio
import inspect
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.client.orchestration import Connection, connection, get_client
from dockyard.deployments import arun_deployment, run_deployment
from dockyard.errors import ConfigError, UsageError

NOWHERE = "http://127.0.0.1:9"  # a client is made without connecting; nothing listens there


@pytest.fixture(autouse=True)
def _no_dockyard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("DOCKYARD_")]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize("sync_client", [False, True])
def test_without_a_url_outside_a_run_the_error_says_how_to_set_it(sync_client: bool) -> None:
    with pytest.raises(UsageError) as info:
        get_client(sync_client=sync_client)

    assert "DOCKYARD_URL" in str(info.value) and "DOCKYARD_API_TOKEN" in str(info.value)


def test_run_deployment_without_a_url_says_so_too() -> None:
    with pytest.raises(UsageError, match="set DOCKYARD_URL"):
        run_deployment("flow/deployment", timeout=0)


def test_the_token_comes_from_the_token_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("from-the-file\n")
    monkeypatch.setenv("DOCKYARD_URL", "127.0.0.1:8080")
    monkeypatch.setenv("DOCKYARD_API_TOKEN_FILE", str(tmp_path / "token"))

    found = connection()

    assert found == Connection("http://127.0.0.1:8080", "from-the-file")
    assert "from-the-file" not in repr(found)


def test_an_unreadable_token_file_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKYARD_URL", NOWHERE)
    monkeypatch.setenv("DOCKYARD_API_TOKEN_FILE", str(tmp_path / "missing"))

    with pytest.raises(ConfigError, match="DOCKYARD_API_TOKEN_FILE: cannot read"):
        get_client()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("job_variables", {"env": {"A": "1"}}),
        ("work_queue_name", "default"),
        ("idempotency_key", "once"),
        ("flow_run_name", "named"),
    ],
)
def test_options_dockyard_does_not_have_are_refused_before_connecting(
    option: str, value: object
) -> None:
    with pytest.raises(UsageError, match=rf"run_deployment\({option}=\.\.\.\) is not supported"):
        run_deployment("flow/deployment", **{option: value})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheduled_time": datetime.now(UTC) + timedelta(hours=1)}, "in the future"),
        ({"timeout": -1}, "timeout=-1"),
        ({"poll_interval": 0}, "poll_interval=0"),
        ({"tags": "one"}, "not a string"),
    ],
)
def test_bad_waits_and_start_times_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run_deployment("flow/deployment", **options)  # type: ignore[arg-type]


def test_as_subflow_is_accepted_and_ignored() -> None:
    with pytest.raises(UsageError, match="set DOCKYARD_URL"):  # got as far as connecting
        run_deployment("flow/deployment", as_subflow=False, timeout=0)


def test_in_async_code_run_deployment_is_awaited() -> None:
    async def flow_body() -> object:
        pending = run_deployment("flow/deployment", timeout=0)
        assert inspect.iscoroutine(pending)
        return await pending

    with pytest.raises(UsageError, match="set DOCKYARD_URL"):
        asyncio.run(flow_body())
    assert inspect.iscoroutinefunction(arun_deployment)


def test_client_methods_refuse_prefect_fields_dockyard_cannot_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKYARD_URL", NOWHERE)
    with get_client(sync_client=True) as client:
        with pytest.raises(UsageError, match=r"update_flow_run\(name=\.\.\.\)"):
            client.update_flow_run("run-id", name="renamed")
        with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
            client.update_flow_run("run-id", colour="red")
        with pytest.raises(UsageError, match="give tags"):
            client.update_flow_run("run-id")
        with pytest.raises(UsageError, match=r"create_flow_run_from_deployment\(state=\.\.\.\)"):
            client.create_flow_run_from_deployment("flow/deployment", state=object())
        assert repr(client) == f"SyncDockyardClient('{NOWHERE}/api')"


def test_httpx_settings_other_than_a_timeout_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_URL", NOWHERE)

    with pytest.raises(UsageError, match="only 'timeout'"):
        get_client(httpx_settings={"verify": False})
