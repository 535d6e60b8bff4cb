"""Parsing entrypoints and importing the flows they name, from real files."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard import Flow
from dockyard.core.entrypoints import Entrypoint, parse_entrypoint
from dockyard.errors import EntrypointError
from dockyard.execution.loading import (
    flows_in_module,
    import_file,
    load_flow,
    module_name_for,
)
from tests import helpers

FIXTURES = helpers.FIXTURES / "flows"


@pytest.fixture(autouse=True)
def _restore_import_state(monkeypatch):
    """load_flow edits sys.path and sys.modules['__main__']; undo that after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    monkeypatch.delitem(sys.modules, "__mp_main__", raising=False)


def write(directory: Path, relative: str, text: str) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flows.py:etl", Entrypoint("flows.py", "etl")),
        (
            "path/to/file.py:processor.process_batch",
            Entrypoint("path/to/file.py", "processor.process_batch"),
        ),
        ("C:\\code\\flows.py:etl", Entrypoint("C:\\code\\flows.py", "etl")),
        ("  flows.py:etl \n", Entrypoint("flows.py", "etl")),
    ],
)
def test_parse_entrypoint(text, expected):
    assert parse_entrypoint(text) == expected
    assert str(expected) == f"{expected.path}:{expected.attr}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("flows.py", "has no ':'"),
        ("flows.py:", "is incomplete"),
        (":etl", "is incomplete"),
        ("flows.txt:etl", "must be a .py file"),
        ("flows.py:etl-flow", "is not a Python name"),
        ("flows.py:a..b", "is not a Python name"),
    ],
)
def test_parse_entrypoint_errors(text, problem):
    with pytest.raises(EntrypointError, match=problem) as info:
        parse_entrypoint(text)
    assert "\n" not in str(info.value)


def test_load_flow_from_fixture_directory():
    loaded = load_flow("pipelines.py:extract_load", FIXTURES)
    assert isinstance(loaded, Flow)
    assert loaded.name == "extract-load"
    assert loaded(day="2026-03-01", limit="2") == "2026-03-01:2"
    # a sibling module of the file is importable (its directory is on sys.path)
    assert load_flow(Entrypoint("pipelines.py", "clean"), FIXTURES)() == (
        "hello from a sibling module"
    )


def test_main_block_does_not_run_and_module_name_is_unique():
    loaded = load_flow("pipelines.py:extract_load", FIXTURES)
    module_name = loaded.fn.__module__
    assert module_name == module_name_for((FIXTURES / "pipelines.py").resolve())
    assert module_name not in ("__main__", "pipelines")
    assert sys.modules[module_name].extract_load is loaded


def test_load_dotted_attribute_on_a_module_level_instance():
    loaded = load_flow("pipelines.py:processor.process_batch", FIXTURES)
    assert loaded.bound_instance is not None
    assert list(loaded.parameters["properties"]) == ["batch_id"]
    assert loaded(batch_id="9") == "staging:9"


def test_class_attribute_gives_the_unbound_flow():
    loaded = load_flow("pipelines.py:DataProcessor.process_batch", FIXTURES)
    assert loaded.bound_instance is None
    instance = sys.modules[loaded.fn.__module__].DataProcessor("prod")
    assert loaded.__get__(instance)(batch_id="1") == "prod:1"


def test_missing_file(tmp_path):
    with pytest.raises(EntrypointError) as info:
        load_flow("flows/x.py:etl", tmp_path)
    assert str(info.value) == f"entrypoint file 'flows/x.py' not found in {tmp_path.resolve()}"


def test_missing_attribute_lists_the_flows_there():
    with pytest.raises(EntrypointError) as info:
        load_flow("pipelines.py:etl", FIXTURES)
    assert str(info.value) == (
        "pipelines.py has no flow 'etl'; flows defined there: clean, extract_load"
    )


def test_missing_attribute_in_a_file_without_flows(tmp_path):
    write(tmp_path, "empty.py", "X = 1\n")
    with pytest.raises(EntrypointError, match="flows defined there: none"):
        load_flow("empty.py:etl", tmp_path)


@pytest.mark.parametrize(
    ("attr", "kind"),
    [("helper", "a function"), ("DataProcessor", "a class"), ("processor", "a DataProcessor")],
)
def test_attribute_that_is_not_a_flow(attr, kind):
    with pytest.raises(EntrypointError) as info:
        load_flow(f"pipelines.py:{attr}", FIXTURES)
    assert str(info.value) == (f"pipelines.py:{attr} is {kind}, not a flow: decorate it with @flow")


def test_import_error_names_the_exception_and_line(tmp_path):
    write(tmp_path, "flows/x.py", "import os\n\nvalue = y + 1\n")
    with pytest.raises(EntrypointError) as info:
        load_flow("flows/x.py:etl", tmp_path)
    assert str(info.value) == (
        "importing flows/x.py failed: NameError: name 'y' is not defined (flows/x.py, line 3)"
    )


def test_import_error_in_an_imported_sibling_points_at_the_sibling(tmp_path):
    write(tmp_path, "flows/helpers.py", "\n\nraise RuntimeError('no config')\n")
    write(tmp_path, "flows/x.py", "import helpers\n")
    with pytest.raises(EntrypointError) as info:
        load_flow("flows/x.py:etl", tmp_path)
    assert str(info.value) == (
        "importing flows/x.py failed: RuntimeError: no config (flows/helpers.py, line 3)"
    )


def test_syntax_error_has_its_line(tmp_path):
    write(tmp_path, "broken.py", "from dockyard import flow\n\ndef etl(:\n    pass\n")
    with pytest.raises(EntrypointError) as info:
        load_flow("broken.py:etl", tmp_path)
    message = str(info.value)
    assert message.startswith("importing broken.py failed: SyntaxError: ")
    assert message.endswith("(broken.py, line 3)")
    assert "\n" not in message


def test_system_exit_during_import_is_an_entrypoint_error(tmp_path):
    write(tmp_path, "exits.py", "raise SystemExit('bye')\n")
    with pytest.raises(EntrypointError, match="SystemExit: bye"):
        load_flow("exits.py:etl", tmp_path)


def test_failed_import_leaves_no_half_module(tmp_path):
    path = write(tmp_path, "bad.py", "raise ValueError('x')\n")
    with pytest.raises(EntrypointError):
        load_flow("bad.py:etl", tmp_path)
    assert module_name_for(path.resolve()) not in sys.modules


def test_base_dir_is_on_sys_path(tmp_path):
    write(tmp_path, "shared_lib_for_test.py", "NAME = 'from base dir'\n")
    write(
        tmp_path,
        "flows/job.py",
        "from shared_lib_for_test import NAME\nfrom dockyard import flow\n\n"
        "@flow\ndef job():\n    return NAME\n",
    )
    assert load_flow("flows/job.py:job", tmp_path)() == "from base dir"


def test_reloading_a_changed_file_gives_the_new_code(tmp_path):
    code = "from dockyard import flow\n\n@flow\ndef f():\n    return {}\n"
    write(tmp_path, "f.py", code.format(1))
    assert load_flow("f.py:f", tmp_path)() == 1
    write(tmp_path, "f.py", code.format(2))
    assert load_flow("f.py:f", tmp_path)() == 2


def test_as_main_unpickles_objects_pickled_by_the_script(tmp_path):
    out = tmp_path / "instance.pkl"
    subprocess.run([sys.executable, str(FIXTURES / "script.py"), str(out)], check=True, timeout=60)
    loaded = load_flow("script.py:Settings.report", FIXTURES, as_main=True)
    module = sys.modules["__main__"]
    assert module is sys.modules["__mp_main__"]
    assert module.__name__ == "__mp_main__"  # so its own __main__ block did not run
    instance = pickle.loads(out.read_bytes())
    assert isinstance(instance, module.Settings)
    assert loaded.__get__(instance)() == "prod"


def test_flows_in_module():
    module = import_file((FIXTURES / "pipelines.py").resolve(), FIXTURES.resolve())
    assert sorted(flows_in_module(module)) == ["clean", "extract_load"]
