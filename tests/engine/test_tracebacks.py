"""Which frames of a failed run's traceback are kept: from the user's code on."""

from __future__ import annotations

import traceback

import pytest

import dockyard
from dockyard.engine.tracebacks import format_user_exception, user_frames

DOCKYARD = f"{dockyard.__path__[0]}"
STDLIB = traceback.__file__.rpartition("/")[0]
USER = "/srv/flows/etl.py"
LIB = "/venv/lib/python3.11/site-packages/pandas/io.py"


def frame(where: str) -> traceback.FrameSummary:
    filename = {
        "child": f"{DOCKYARD}/execution/child.py",
        "engine": f"{DOCKYARD}/engine/tasks.py",
        "asyncio": f"{STDLIB}/asyncio/runners.py",
        "thread": f"{STDLIB}/concurrent/futures/thread.py",
        "user": USER,
        "helper": "/srv/flows/helpers.py",
        "lib": LIB,
        "frozen": "<frozen importlib._bootstrap>",
    }[where]
    return traceback.FrameSummary(filename, 1, where)


@pytest.mark.parametrize(
    ("frames", "kept"),
    [
        # the child and the invoke layers before the flow's function
        ("child engine user helper", "user helper"),
        # an async flow: asyncio.run between dockyard and the flow
        ("child asyncio user", "user"),
        # a task called from the flow: the task engine (and its thread) in between
        ("child user engine thread engine helper", "user helper"),
        # plain calls between the user's frames stay, through the standard library too
        ("child user thread helper", "user thread helper"),
        # where a call from the user's code failed inside a library, or inside dockyard
        ("child user lib", "user lib"),
        ("child user engine", "user engine"),
        # no user frame at all: a failure inside dockyard keeps the whole traceback
        ("child engine asyncio", "child engine asyncio"),
        ("frozen child", "frozen child"),
    ],
)
def test_user_frames(frames: str, kept: str) -> None:
    summary = [frame(where) for where in frames.split()]
    assert [f.name for f in user_frames(summary)] == kept.split()


def _raise_chained() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError("bad day") from exc


def test_a_chain_keeps_every_exception_and_its_link() -> None:
    try:
        _raise_chained()
    except ValueError as exc:
        text = format_user_exception(exc)
    assert text.count("Traceback (most recent call last):") == 2
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.rstrip().endswith("ValueError: bad day")
    assert "KeyError: 'missing'" in text
