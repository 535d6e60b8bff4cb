"""scripts/import_cycles.py on throwaway packages: cycles found, acyclic packages pass."""

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_cycles.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import_cycles = load_script()


def make_package(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path → source) under ``root/pkg``; return the package directory."""
    package = root / "pkg"
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return package


CYCLIC = {
    "__init__.py": "",
    "a.py": "from pkg import b\n",
    # Function-level and relative: still an edge.
    "b.py": """\
        def later():
            from .sub import c
        """,
    "sub/__init__.py": "",
    # TYPE_CHECKING: still an edge.
    "sub/c.py": """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from ..a import thing
        """,
    "d.py": "import pkg.a\n",  # imports into the cycle, is not on it
}

ACYCLIC = {
    "__init__.py": "from pkg.api import run\n",
    "api.py": "from . import core\nfrom .core import helpers\n",
    "core/__init__.py": "",
    # `from pkg.core import VALUE`: an edge to pkg.core (the package), not to a module.
    "core/helpers.py": "import json\nimport pkg.core.values\nfrom pkg.core import VALUE\n",
    "core/values.py": "import os.path\n",
}


def test_a_cycle_is_found_through_relative_function_and_type_checking_imports(tmp_path):
    package = make_package(tmp_path, CYCLIC)

    assert import_cycles.find_cycles(package) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_an_acyclic_package_passes(tmp_path):
    package = make_package(tmp_path, ACYCLIC)

    assert import_cycles.find_cycles(package) == []
    assert import_cycles.import_graph(package) == {
        "pkg": {"pkg.api": 1},
        "pkg.api": {"pkg.core": 1, "pkg.core.helpers": 2},
        "pkg.core": {},
        "pkg.core.helpers": {"pkg.core.values": 2, "pkg.core": 3},
        "pkg.core.values": {},
    }


def test_every_cycle_is_reported_largest_first(tmp_path):
    package = make_package(
        tmp_path,
        {
            "__init__.py": "",
            "x.py": "from . import y\n",
            "y.py": "from . import x\n",
            **{f"m{i}.py": f"from . import m{(i + 1) % 3}\n" for i in range(3)},
        },
    )

    assert import_cycles.find_cycles(package) == [
        ["pkg.m0", "pkg.m1", "pkg.m2"],
        ["pkg.x", "pkg.y"],
    ]


def test_a_long_chain_does_not_hit_the_recursion_limit(tmp_path):
    n = sys.getrecursionlimit() + 100
    files = {"__init__.py": ""} | {f"m{i}.py": f"from . import m{i + 1}\n" for i in range(n)}
    files[f"m{n}.py"] = "from . import m0\n"
    package = make_package(tmp_path, files)

    [cycle] = import_cycles.find_cycles(package)

    assert len(cycle) == n + 1


@pytest.mark.parametrize(("files", "status"), [(CYCLIC, 1), (ACYCLIC, 0)])
def test_main_prints_the_cycles_and_sets_the_exit_status(tmp_path, capsys, files, status):
    package = make_package(tmp_path, files)

    assert import_cycles.main([str(package)]) == status

    out = capsys.readouterr().out
    if status:
        assert out.splitlines() == [
            "import cycle of 3 modules: pkg.a, pkg.b, pkg.sub.c",
            "  e.g. pkg.a -> pkg.b (l.1)",
            "       pkg.b -> pkg.sub.c (l.2)",
            "       pkg.sub.c -> pkg.a (l.4)",
            "1 import cycle(s) among 6 modules",
        ]
    else:
        assert out == "no import cycles among 5 modules\n"
