"""A run's return value as the store keeps it: JSON when it can be, a short repr otherwise.

The child encodes (``encode_result``) and the API decodes (``decode_result``). The stored
text is a one-key JSON object, ``{"json": value}`` or ``{"repr": "..."}``, so the two can
never be mistaken for each other; text stored before this format (a bare repr) decodes as
a repr.
"""

from __future__ import annotations

import json
from typing import Any

JSON_LIMIT = 64 * 1024
"""The largest result kept as JSON (characters of its JSON text); a larger one is a repr."""
REPR_LIMIT = 2000
"""A repr longer than this is cut, ending in ``…``."""


def encode_result(value: Any) -> str | None:
    """What the store keeps of a Completed run's return value (None for ``None``)."""
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is not None and len(text) <= JSON_LIMIT:
        return '{"json": ' + text + "}"
    return json.dumps({"repr": _short_repr(value)}, ensure_ascii=False)


def decode_result(stored: str | None) -> tuple[Any, str | None]:
    """``(value, None)`` for a JSON result, ``(None, repr)`` for any other."""
    if stored is None:
        return None, None
    try:
        data = json.loads(stored)
    except (ValueError, RecursionError):
        return None, stored
    if isinstance(data, dict) and len(data) == 1:
        if "json" in data:
            return data["json"], None
        if isinstance(data.get("repr"), str):
            return None, data["repr"]
    return None, stored  # a bare repr, stored before results were kept as JSON


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may raise anything
        text = f"<{type(value).__name__} object; repr() raised {type(exc).__name__}>"
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + "…"
