"""constraints.txt (written by scripts/lock) pins what pyproject.toml asks for, transitively.

Checked for CPython 3.11 on Linux, the runtime image's Python. The dependencies of a pinned
package come from its installed metadata: `make install` installs with the same
constraints, so the installed version is the pinned one (checked too). That the runtime
image holds exactly these versions is checked in tests/e2e/test_docker.py.
"""

from __future__ import annotations

import importlib.metadata
import platform
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FIX = "run scripts/lock, then make install"
# The marker environment of the runtime image's Python.
ENVIRONMENT: dict[str, str] = {
    **{key: str(value) for key, value in default_environment().items()},
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": platform.machine(),
}


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: {raw!r} is not an exact pin NAME==VERSION"
        key = canonicalize_name(name)
        assert key not in found, f"constraints.txt pins {name} twice"
        found[key] = Version(version)
    return found


def pyproject_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(text) for text in data["project"]["dependencies"]]


def applies(requirement: Requirement, extras: frozenset[str] = frozenset()) -> bool:
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**ENVIRONMENT, "extra": extra}) for extra in extras | {""}
    )


def check(requirement: Requirement, pinned: dict[str, Version], needed_by: str) -> str:
    name = canonicalize_name(requirement.name)
    assert name in pinned, f"{requirement.name} ({needed_by}) is not in constraints.txt: {FIX}"
    assert requirement.specifier.contains(pinned[name], prereleases=True), (
        f"constraints.txt pins {requirement.name}=={pinned[name]}, outside {requirement} "
        f"({needed_by}): {FIX}"
    )
    return name


def test_every_runtime_requirement_is_pinned_within_its_range() -> None:
    pinned = pins()
    needed: set[str] = set()
    todo = [
        (check(r, pinned, "pyproject.toml"), frozenset(r.extras))
        for r in pyproject_requirements()
        if applies(r)
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        needed.add(name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        installed = importlib.metadata.distribution(name)
        assert Version(installed.version) == pinned[name], (
            f"{name} {installed.version} is installed, constraints.txt pins {pinned[name]}: "
            "make install installs the pinned versions"
        )
        for text in installed.requires or []:
            requirement = Requirement(text)
            if applies(requirement, extras):
                dep = check(requirement, pinned, f"needed by {name}")
                todo.append((dep, frozenset(requirement.extras)))
    stale = sorted(set(pinned) - needed)
    assert not stale, f"constraints.txt pins {stale}, which nothing needs: {FIX}"


@pytest.mark.parametrize(
    ("pyproject_line", "message"),
    [
        ("PyYAML>=99", "outside PyYAML>=99"),
        ("no-such-dependency>=1", r"no-such-dependency \(pyproject.toml\) is not in constraints"),
    ],
)
def test_check_names_what_to_fix(pyproject_line: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check(Requirement(pyproject_line), pins(), "pyproject.toml")
