"""The one rule for flow and deployment names: each must be usable as a URL path segment.

The HTTP API's path parameters take their length bound from here (``MAX_NAME_LENGTH``),
so every name that can be served can also be reached.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import UsageError

_BANNED_CHARS = "/%?#\\"
MAX_NAME_LENGTH = 200
"""The longest flow or deployment name, in characters (one API path segment each)."""


def check_name(kind: str, name: Any) -> str:
    """Return ``name`` if it can be one segment of ``flow/deployment`` in a URL, else raise.

    ``kind`` ("flow", "deployment") starts the message. A value that is not a str is a
    programming error (TypeError); a str that is not allowed is a UsageError.
    """
    if not isinstance(name, str):
        hint = " (did you mean to call it?)" if callable(name) else ""
        raise TypeError(f"{kind} name must be a str, got {type(name).__name__}{hint}")
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{kind} name {name!r} is not allowed: {problem}")
    return name


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a URL path segment, or None."""
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long; use at most {MAX_NAME_LENGTH}"
    if name != name.strip():
        return "remove the leading/trailing whitespace"
    bad = [c for c in name if c in _BANNED_CHARS or ord(c) < 32 or ord(c) == 127]
    if bad:
        return f"it contains {bad[0]!r}; do not use / % ? # \\ or control characters"
    return None


_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crimson", "daring",
    "eager", "electric", "fancy", "fearless", "gentle", "glowing", "golden", "grateful",
    "happy", "hidden", "humble", "icy", "jolly", "keen", "lively", "lucky", "magnetic",
    "mellow", "merry", "mighty", "misty", "nimble", "noble", "olive", "patient", "polite",
    "proud", "quick", "quiet", "rapid", "royal", "rustic", "silver", "sleek", "smart",
    "snowy", "spry", "steady", "sunny", "swift", "tidy", "tranquil", "vivid", "wise", "zesty",
)  # fmt: skip
_ANIMALS = (
    "albatross", "alpaca", "badger", "beaver", "bison", "cheetah", "cobra", "condor",
    "coyote", "crane", "dingo", "dolphin", "eagle", "falcon", "ferret", "finch", "fox",
    "gazelle", "gecko", "gibbon", "heron", "hyena", "ibex", "jackal", "jaguar", "koala",
    "lemur", "leopard", "lynx", "manatee", "marmot", "meerkat", "mongoose", "moose",
    "narwhal", "ocelot", "orca", "otter", "panda", "pelican", "puffin", "quail", "raven",
    "salamander", "seal", "sparrow", "stork", "tapir", "tiger", "toucan", "walrus", "wolf",
    "wombat", "yak", "zebra",
)  # fmt: skip


def friendly_run_name(run_id: str) -> str:
    """A readable name for a run that has none (``nimble-otter``), the same for one id."""
    try:
        number = int(run_id, 16)
    except ValueError:
        number = sum(run_id.encode())
    adjective = _ADJECTIVES[number % len(_ADJECTIVES)]
    animal = _ANIMALS[(number // len(_ADJECTIVES)) % len(_ANIMALS)]
    return f"{adjective}-{animal}"
