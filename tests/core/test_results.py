"""A run's return value as the store keeps it: JSON when it can be, a repr otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.core.results import JSON_LIMIT, REPR_LIMIT, decode_result, encode_result


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("value", "result", "result_repr"),
    [
        (None, None, None),
        (42, 42, None),
        ("text", "text", None),
        (False, False, None),
        ([1, "a", None], [1, "a", None], None),
        ({"a": {"b": [1.5]}}, {"a": {"b": [1.5]}}, None),
        ((1, 2), [1, 2], None),  # JSON has arrays only
        ({1: "x"}, {"1": "x"}, None),  # and string keys only
        ({"repr": "looks like the envelope"}, {"repr": "looks like the envelope"}, None),
        ("\N{SNOWMAN}", "\N{SNOWMAN}", None),
        ({3, 1, 2}, None, "{1, 2, 3}"),
        (float("nan"), None, "nan"),  # not JSON
        (Opaque(), None, "Opaque()"),
        ({"when": Opaque()}, None, "{'when': Opaque()}"),
        (Hostile(), None, "<Hostile object; repr() raised RuntimeError>"),
    ],
)
def test_a_value_round_trips_as_json_or_as_a_repr(
    value: Any, result: Any, result_repr: str | None
) -> None:
    assert decode_result(encode_result(value)) == (result, result_repr)


def test_json_larger_than_the_limit_is_kept_as_a_cut_repr() -> None:
    value = ["x" * 100] * (JSON_LIMIT // 100)
    result, result_repr = decode_result(encode_result(value))
    assert result is None and result_repr is not None
    assert len(result_repr) == REPR_LIMIT + 1 and result_repr.endswith("…")


@pytest.mark.parametrize("stored", ["42", "'hello'", "{'a': 1}", "[1, 2]", '{"a": 1, "b": 2}'])
def test_a_bare_repr_stored_before_is_a_repr(stored: str) -> None:
    assert decode_result(stored) == (None, stored)
