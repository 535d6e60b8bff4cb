"""Flow and @flow: options, in-process calls, retries, hooks, methods, from_source."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest

from dockyard import Flow, flow
from dockyard.core.options import check_flow_name
from dockyard.core.outcomes import State, StateType
from dockyard.core.states import FlowRun, RunState
from dockyard.errors import ParameterError, UsageError
from tests import helpers

FIXTURES = helpers.FIXTURES / "flows"


@flow
def add_numbers(x: int, y: int = 1) -> int:
    """Add two numbers.

    Second paragraph.
    """
    return x + y


class DataProcessor:
    """The instance-method pattern from Prefect's serve docs."""

    def __init__(self, environment: str) -> None:
        self.api_url = f"https://{environment}.example.com"

    @flow(log_prints=True)
    def process_batch(self, batch_id: str) -> str:
        """Process a batch using the configured settings."""
        print(f"Processing batch {batch_id}")
        return f"{self.api_url}/{batch_id}"


# ── names, descriptions, versions ────────────────────────────────────────────────────


def test_decorator_forms():
    def my_flow_fn():
        return 1

    assert isinstance(flow(my_flow_fn), Flow)
    assert flow()(my_flow_fn).name == "my-flow-fn"
    assert flow(name="custom")(my_flow_fn).name == "custom"
    assert Flow(my_flow_fn, name="direct")() == 1


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'retry'"):
        flow(retry=3)
    with pytest.raises(TypeError):
        Flow(lambda: None, retry=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        add_numbers.with_options(bogus=True)


def test_prefect_only_keywords_are_accepted_and_stored():
    f = flow(
        task_runner=object(),
        persist_result=True,
        result_storage="s3/bucket",
        result_serializer="json",
        cache_result_in_memory=False,
    )(lambda: 1)
    assert f.persist_result is True
    assert f.result_storage == "s3/bucket"
    assert f.cache_result_in_memory is False
    assert f() == 1


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "50%", "what?", "a#b", "back\\slash", "tab\there", " lead", "trail ", "\x7f"],
)
def test_names_that_cannot_be_a_url_segment_are_rejected(name):
    with pytest.raises(UsageError, match="flow name .* is not allowed: "):
        flow(name=name)(lambda: None)


@pytest.mark.parametrize("name", ["etl", "my flow", "etl.v2", "données", "a-b_c"])
def test_allowed_names(name):
    assert check_flow_name(name) == name


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="did you mean to call it"):
        flow(name=lambda: "x")(lambda: None)


def test_lambda_name():
    assert Flow(lambda: None).name == "unknown-lambda"


def test_description_defaults_to_docstring():
    assert add_numbers.description == "Add two numbers.\n\nSecond paragraph."
    assert flow(description="given")(lambda: None).description == "given"
    assert Flow(lambda: None).description is None


def test_version_is_a_hash_of_the_defining_file(tmp_path):
    from dockyard.execution.loading import load_flow

    file = tmp_path / "v.py"
    file.write_text("from dockyard import flow\n\n@flow\ndef f():\n    pass\n")
    first = load_flow("v.py:f", tmp_path)
    assert first.version == hashlib.md5(file.read_bytes()).hexdigest()
    assert first.source_file == str(file.resolve())
    file.write_text(file.read_text() + "# changed\n")
    assert load_flow("v.py:f", tmp_path).version != first.version
    assert flow(version="1.2")(lambda: None).version == "1.2"


def test_version_is_none_without_a_file():
    namespace: dict[str, object] = {}
    exec("def f():\n    pass\n", namespace)
    assert Flow(namespace["f"]).version is None  # type: ignore[arg-type]


def test_repr():
    assert repr(add_numbers) == "Flow(name='add-numbers', fn=add_numbers)"
    bound = DataProcessor("staging").process_batch
    assert repr(bound).endswith("fn=DataProcessor.process_batch, bound to DataProcessor)")


# ── options ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"retry_delay_seconds": -1},
        {"retry_delay_seconds": [1, "x"]},
        {"timeout_seconds": 0},
        {"timeout_seconds": -5},
    ],
)
def test_invalid_numeric_options(options):
    with pytest.raises(UsageError, match="is not allowed"):
        flow(**options)(lambda: None)


def test_hooks_must_be_lists_of_callables():
    with pytest.raises(TypeError, match="on_failure must be a list"):
        flow(on_failure=print)(lambda: None)  # a single callable, not a list
    with pytest.raises(TypeError, match="on_completion must contain callables"):
        flow(on_completion=["x"])(lambda: None)


def test_retry_delay_for():
    assert flow(retry_delay_seconds=3)(lambda: None).retry_delay_for(1) == 3.0
    f = flow(retries=4, retry_delay_seconds=[1, 2, 5])(lambda: None)
    assert [f.retry_delay_for(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 5.0, 5.0]
    assert Flow(lambda: None).retry_delay_for(1) == 0.0


def test_with_options_replaces_and_keeps():
    def on_done(flow, flow_run, state):
        pass

    original = flow(retries=2, log_prints=True, on_failure=[on_done])(add_numbers.fn)
    copy = original.with_options(name="other", timeout_seconds=30, on_completion=[on_done])
    assert (copy.name, copy.timeout_seconds, copy.retries, copy.log_prints) == (
        "other",
        30.0,
        2,
        True,
    )
    assert copy.hooks_for("completion") == [on_done]
    assert copy.hooks_for("failure") == [on_done]
    assert copy.hooks_for("failure") is not original.hooks_for("failure")
    assert original.name == "add-numbers" and original.timeout_seconds is None
    assert copy(x=1) == 2


# ── parameters and run names ─────────────────────────────────────────────────────────


def test_validate_parameters_coerces():
    assert add_numbers.validate_parameters({"x": "5"}) == {"x": 5, "y": 1}


def test_validate_parameters_errors():
    with pytest.raises(ParameterError) as info:
        add_numbers.validate_parameters({"x": "abc", "z": 1})
    assert str(info.value).startswith("invalid parameters for flow 'add-numbers': x: ")
    assert [e["loc"] for e in info.value.errors] == [["x"], ["z"]]


def test_validation_disabled():
    f = flow(validate_parameters=False)(add_numbers.fn)
    assert f.validate_parameters({"x": "5"}) == {"x": "5"}
    with pytest.raises(ParameterError, match="z: unknown parameter"):
        f.validate_parameters({"x": 1, "z": 2})
    g = flow(validate_parameters=False)(lambda **kw: kw)
    assert g.validate_parameters({"anything": 1}) == {"anything": 1}


def test_parameters_property_is_the_schema():
    schema = add_numbers.parameters
    assert schema["required"] == ["x"]
    assert schema["properties"]["y"]["default"] == 1


def test_flow_run_name_template():
    f = flow(flow_run_name="etl-{day}-{limit:03d}")(lambda day, limit=1: None)
    assert f.render_flow_run_name({"day": "2026-01-01", "limit": 7}) == "etl-2026-01-01-007"
    assert Flow(lambda: None).render_flow_run_name({}) is None
    with pytest.raises(UsageError, match="names parameter 'missing'"):
        flow(flow_run_name="run-{missing}")(lambda: None).render_flow_run_name({})


def test_flow_run_name_callables():
    assert flow(flow_run_name=lambda: "fixed")(lambda: None).render_flow_run_name({}) == "fixed"
    by_params = flow(flow_run_name=lambda p: f"day-{p['day']}")(lambda day: None)
    assert by_params.render_flow_run_name({"day": 3}) == "day-3"
    with pytest.raises(UsageError, match="must return a str"):
        flow(flow_run_name=lambda: 5)(lambda: None).render_flow_run_name({})


def test_flow_run_name_reaches_hooks():
    seen: list[FlowRun] = []
    f = flow(flow_run_name="n-{x}", on_completion=[lambda fl, run, st: seen.append(run)])(
        add_numbers.fn
    )
    f("4")
    assert seen[0].name == "n-4"
    assert seen[0].parameters == {"x": 4, "y": 1}


# ── calling ──────────────────────────────────────────────────────────────────────────


def test_call_returns_result_with_coercion_and_positional_args():
    assert add_numbers(2) == 3
    assert add_numbers("2", y="3") == 5


def test_call_with_bad_parameters_raises_parameter_error():
    with pytest.raises(ParameterError, match="x: missing required parameter"):
        add_numbers()


def test_call_with_too_many_arguments_is_a_type_error():
    with pytest.raises(TypeError, match="add-numbers"):
        add_numbers(1, 2, 3)


def test_call_fn_runs_once_with_given_parameters():
    assert add_numbers.call_fn({"x": 1, "y": 2}) == 3


def test_positional_only_and_var_keyword():
    @flow
    def f(a: int, /, b: int = 0, **extra):
        return a, b, extra

    assert f("1", b="2", c=3) == (1, 2, {"c": 3})
    assert f.call_fn({"a": 1, "c": 2}) == (1, 0, {"c": 2})


def test_retries_in_process():
    attempts: list[int] = []
    states: list[State] = []

    @flow(retries=2, retry_delay_seconds=[0, 0.01], on_running=[lambda f, r, s: states.append(s)])
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "done"

    assert flaky() == "done"
    assert len(attempts) == 3
    assert [s.type for s in states] == [StateType.RUNNING] * 3


def test_retries_exhausted_raises_the_last_exception_and_runs_failure_hooks():
    calls: list[tuple[int, State]] = []

    @flow(retries=1, on_failure=[lambda f, run, state: calls.append((run.attempt, state))])
    def always_fails():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        always_fails()
    assert len(calls) == 1
    attempt, state = calls[0]
    assert attempt == 2
    assert state.is_failed() and state.name == "Failed"
    assert state.message == "Flow run encountered an exception: ValueError: boom"
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    with pytest.raises(ValueError, match="boom"):
        state.result()


def test_hooks_receive_flow_run_and_state_and_their_errors_do_not_propagate(caplog):
    received: list[tuple[object, FlowRun, State]] = []

    def record(flow, flow_run, state):
        received.append((flow, flow_run, state))

    def broken(flow, flow_run, state):
        raise RuntimeError("hook bug")

    f = flow(on_running=[broken, record], on_completion=[broken, record])(add_numbers.fn)
    with caplog.at_level(logging.ERROR, logger="dockyard.hooks"):
        assert f(x=1) == 2
    assert [state.type for _, _, state in received] == [StateType.RUNNING, StateType.COMPLETED]
    flow_obj, run, state = received[1]
    assert flow_obj is f
    assert run.id and run.deployment is None and run.attempt == 1
    assert state.is_completed() and state.result() == 2
    assert len([r for r in caplog.records if r.name == "dockyard.hooks"]) == 2
    assert "hook bug" in caplog.text


def test_decorator_style_hooks_and_async_hooks():
    seen: list[str] = []

    @flow
    def f():
        return 1

    @f.on_completion
    def sync_hook(flow, flow_run, state):
        seen.append("sync")

    @f.on_completion
    async def async_hook(flow, flow_run, state):
        seen.append("async")

    f()
    assert seen == ["sync", "async"]


def test_run_hooks_directly_and_state_helpers():
    seen: list[str] = []
    f = flow(on_crashed=[lambda fl, run, st: seen.append(st.name)])(lambda: None)
    run = FlowRun(id="r1", name=None, deployment="f/d", parameters={})
    f.run_hooks("crashed", run, State(RunState.CRASHED, "killed"))
    assert seen == ["Crashed"]
    assert State(RunState.CANCELLED).is_cancelled()
    assert State(RunState.RUNNING).is_running()
    assert not State(RunState.CRASHED).is_completed()
    with pytest.raises(ValueError, match="unknown hook kind"):
        f.hooks_for("finished")


def test_async_flow_call_returns_a_coroutine():
    @flow(retries=1)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    assert fetch.isasync and not add_numbers.isasync
    coroutine = fetch("4")
    assert asyncio.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == 8
    assert fetch.call_fn({"n": 5}) == 10


def test_async_flow_retries():
    attempts: list[int] = []

    @flow(retries=1)
    async def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first")
        return "ok"

    assert asyncio.run(flaky()) == "ok"


def test_log_prints_routes_print_to_logging(caplog, capsys):
    f = flow(log_prints=True)(lambda: print("hello", "world"))
    with caplog.at_level(logging.INFO, logger="dockyard.flow_runs"):
        f()
    messages = [r.getMessage() for r in caplog.records if r.name == "dockyard.flow_runs"]
    assert messages[1:] == ["hello world", "Finished in state Completed()"]
    assert messages[0].startswith("Beginning flow run")
    assert "hello world" not in capsys.readouterr().out


def test_without_log_prints_print_is_untouched(capsys):
    flow(lambda: print("plain"))()
    assert capsys.readouterr().out == "plain\n"


# ── instance methods ─────────────────────────────────────────────────────────────────


def test_flow_on_an_instance_method():
    processor = DataProcessor("staging")
    bound = processor.process_batch
    assert isinstance(bound, Flow)
    assert bound.bound_instance is processor and bound.ismethod
    assert bound(batch_id=1) == "https://staging.example.com/1"
    assert processor.process_batch("2") == "https://staging.example.com/2"
    assert bound.call_fn({"batch_id": "3"}) == "https://staging.example.com/3"


def test_bound_flow_schema_and_name_exclude_self():
    bound = DataProcessor("prod").process_batch
    assert bound.name == "process-batch"
    assert list(bound.parameters["properties"]) == ["batch_id"]
    assert bound.parameters["required"] == ["batch_id"]
    assert bound.description == "Process a batch using the configured settings."


def test_accessing_on_the_class_returns_the_flow_itself():
    unbound = DataProcessor.__dict__["process_batch"]
    assert DataProcessor.process_batch is unbound
    assert unbound.bound_instance is None
    assert DataProcessor("x").process_batch is not unbound


def test_bound_flow_with_options_stays_bound():
    copy = DataProcessor("dev").process_batch.with_options(name="batches")
    assert copy.name == "batches" and copy.bound_instance is not None
    assert copy(batch_id="a") == "https://dev.example.com/a"


def test_bound_flow_to_deployment_passes_the_bound_flow():
    pytest.importorskip("dockyard.core.deployments")
    bound = DataProcessor("staging").process_batch
    deployment = bound.to_deployment(name="batch-processor")
    assert deployment is not None


# ── from_source ──────────────────────────────────────────────────────────────────────


def test_from_source_local_directory(monkeypatch):
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    loaded = Flow.from_source(str(FIXTURES), "pipelines.py:extract_load")
    assert loaded.name == "extract-load"
    assert loaded.source == str(FIXTURES.resolve())
    assert loaded.entrypoint == "pipelines.py:extract_load"
    assert loaded(day="2026-01-01") == "2026-01-01:10"
    assert add_numbers.source is None and add_numbers.entrypoint is None


def test_from_source_on_the_decorator(monkeypatch):
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    loaded = flow.from_source(FIXTURES, "pipelines.py:processor.process_batch")
    assert loaded(batch_id="7") == "staging:7"


def test_from_source_missing_directory(tmp_path):
    with pytest.raises(UsageError, match="source directory .* not found"):
        Flow.from_source(str(tmp_path / "nope"), "f.py:f")


def test_from_source_unreachable_git_url_is_one_clear_error(tmp_path, monkeypatch):
    from dockyard.sources import GitSyncError

    monkeypatch.setenv("DOCKYARD_SOURCE_DIR", str(tmp_path / "sources"))
    with pytest.raises(GitSyncError, match=r"127\.0\.0\.1:1/org/repo\.git") as caught:
        Flow.from_source("http://user:s3cr3t@127.0.0.1:1/org/repo.git", "flows.py:etl")
    assert "s3cr3t" not in str(caught.value)


def test_from_source_git_repository_on_disk(tmp_path, monkeypatch):
    import subprocess

    from dockyard import GitRepository

    work = tmp_path / "work"
    (work / "flows").mkdir(parents=True)
    (work / "flows" / "f.py").write_text(
        "from dockyard import flow\n\n@flow\ndef etl(x: int = 1):\n    return x\n"
    )
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "one"], check=True)
    monkeypatch.setenv("DOCKYARD_SOURCE_DIR", str(tmp_path / "sources"))
    loaded = Flow.from_source(GitRepository(str(work), branch="main"), "flows/f.py:etl")
    assert loaded.name == "etl" and loaded(x="3") == 3
    assert len(loaded.revision) == 40
    deployment = loaded.to_deployment("d")
    assert deployment.version == loaded.revision and deployment.source_key
