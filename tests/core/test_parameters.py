"""Parameter models, validation and CLI parsing (pure, no I/O)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.core.parameters import (
    MAX_DEPTH,
    check_values,
    jsonable,
    merge_parameters,
    parameter_model,
    parameter_schema,
    parse_param_args,
    scrub_text,
    validate_parameters,
)
from dockyard.errors import ParameterError, UsageError


class Window(pydantic.BaseModel):
    start: datetime.date
    days: int = 1


def etl(day: datetime.date, ids: list[int], window: Window | None = None, limit: int = 10):
    """A flow function with a mix of parameter types."""


def untyped(a, b="x"):
    pass


class Job:
    def run(self, batch_id: str, size: int = 100) -> None:
        pass


def test_coerces_strings_in_lax_mode():
    values = validate_parameters(etl, {"day": "2026-01-01", "ids": ["1", 2], "limit": "5"})
    assert values == {"day": datetime.date(2026, 1, 1), "ids": [1, 2], "window": None, "limit": 5}


def test_json_text_is_decoded_for_containers_and_models():
    values = validate_parameters(
        etl, {"day": "2026-01-01", "ids": "[1, 2]", "window": '{"start": "2026-02-01"}'}
    )
    assert values["ids"] == [1, 2]
    assert values["window"] == Window(start=datetime.date(2026, 2, 1))
    assert isinstance(values["window"], Window)  # the model instance, not a dict


def test_invalid_json_text_is_reported_by_pydantic():
    with pytest.raises(ParameterError) as info:
        validate_parameters(etl, {"day": "2026-01-01", "ids": "[1,"})
    assert info.value.errors[0]["loc"] == ["ids"]


def test_error_names_every_bad_field_on_one_line():
    with pytest.raises(ParameterError) as info:
        validate_parameters(etl, {"ids": "abc", "limit": "many", "extra": 1}, flow_name="etl")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("invalid parameters for flow 'etl': ")
    assert "day: missing required parameter" in message
    assert "limit: Input should be a valid integer" in message
    assert "(got 'many')" in message
    assert "extra: unknown parameter" in message
    by_field = {tuple(e["loc"]): e for e in info.value.errors}
    assert by_field[("day",)]["type"] == "missing"
    assert by_field[("extra",)]["type"] == "extra_forbidden"
    assert by_field[("limit",)]["type"] == "int_parsing"
    assert set(by_field[("limit",)]) == {"loc", "msg", "type"}


def test_nested_error_location():
    with pytest.raises(ParameterError) as info:
        validate_parameters(etl, {"day": "2026-01-01", "ids": [1, "x"]})
    assert info.value.errors[0]["loc"] == ["ids", 1]
    assert "ids.1: " in str(info.value)


def test_flow_name_defaults_to_function_name():
    with pytest.raises(ParameterError, match="for flow 'etl'"):
        validate_parameters(etl, {})


def test_unannotated_parameters_are_any():
    assert validate_parameters(untyped, {"a": [1]}) == {"a": [1], "b": "x"}


def test_var_keyword_accepts_extra_names_and_var_positional_is_ignored():
    def fn(x: int, *args, **kwargs):
        pass

    assert validate_parameters(fn, {"x": "1", "other": "y"}) == {"x": 1, "other": "y"}
    assert list(parameter_schema(fn)["properties"]) == ["x"]


def test_parameter_names_that_clash_with_basemodel_attributes():
    def fn(json: str, schema: int = 1, model_config: str = "c"):
        pass

    assert validate_parameters(fn, {"json": "j", "schema": "2"}) == {
        "json": "j",
        "schema": 2,
        "model_config": "c",
    }


def test_schema_content():
    schema = parameter_schema(etl)
    assert schema["type"] == "object"
    assert schema["title"] == "Parameters"
    assert schema["required"] == ["day", "ids"]
    props = schema["properties"]
    assert list(props) == ["day", "ids", "window", "limit"]
    assert [props[name]["position"] for name in props] == [0, 1, 2, 3]
    assert all(props[name]["title"] == name for name in props)
    assert props["day"]["format"] == "date"
    assert props["ids"]["items"] == {"type": "integer"}
    assert props["limit"] == {"default": 10, "position": 3, "title": "limit", "type": "integer"}
    json.dumps(schema)  # serialisable as a whole


def test_schema_of_a_bound_method_has_no_self():
    schema = parameter_schema(Job().run)
    assert list(schema["properties"]) == ["batch_id", "size"]
    assert schema["required"] == ["batch_id"]
    assert schema["properties"]["batch_id"]["position"] == 0


class Client:
    pass


DEFAULT_CLIENT = Client()
SENTINEL = object()


def test_schema_skips_unserialisable_defaults_and_unknown_types():
    def fn(client: Client = DEFAULT_CLIENT, when: Any = SENTINEL, empty=None):
        pass

    props = parameter_schema(fn)["properties"]
    assert "default" not in props["client"]
    assert "default" not in props["when"]
    assert props["empty"]["default"] is None
    json.dumps(props)


def test_field_defaults_and_annotated_constraints():
    def fn(
        size: int = pydantic.Field(5, ge=1),
        name: Annotated[str, pydantic.Field(min_length=2)] = "ab",
    ):
        pass

    assert validate_parameters(fn, {}) == {"size": 5, "name": "ab"}
    with pytest.raises(ParameterError, match="size: "):
        validate_parameters(fn, {"size": 0})
    assert parameter_schema(fn)["properties"]["size"]["minimum"] == 1


def test_model_is_cached_per_function_and_boundness():
    assert parameter_model(etl) is parameter_model(etl)
    assert parameter_model(Job().run) is parameter_model(Job().run)
    assert parameter_model(Job.run) is not parameter_model(Job().run)


def test_merge_parameters_overrides_win():
    assert merge_parameters({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["day=2026-01-01"], {"day": "2026-01-01"}),
        (["q=a=b", "empty="], {"q": "a=b", "empty": ""}),
        (["ids=[1,2]", "ids=[3]"], {"ids": "[3]"}),
    ],
)
def test_parse_param_args(items, expected):
    assert parse_param_args(items) == expected


@pytest.mark.parametrize("item", ["x", "=1", ""])
def test_parse_param_args_rejects_missing_key_or_equals(item):
    with pytest.raises(UsageError, match=r"expected KEY=VALUE"):
        parse_param_args([item])


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text())
def test_parse_param_args_round_trip(key, value):
    assert parse_param_args([f"{key}={value}"]) == {key: value}


def test_jsonable():
    value = {
        "day": datetime.date(2026, 1, 1),
        "window": Window(start=datetime.date(2026, 1, 2)),
        "path": Path("/tmp/x"),
        "other": object(),
    }
    result = jsonable(value)
    assert result["day"] == "2026-01-01"
    assert result["window"] == {"start": "2026-01-02", "days": 1}
    assert result["path"] == "/tmp/x"
    assert result["other"].startswith("<object object")
    json.dumps(result)


def _nested(depth: int, leaf: Any = 1) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"a": None, "b": 1.5, "c": "text with ünïcode and 😀", "d": datetime.date(2026, 1, 1)},
        {"deep": _nested(MAX_DEPTH)},
        {"deep": {"k": _nested(MAX_DEPTH - 1)}},
        {"big": "x" * 1000},
        {"pairs": [("a", 1)], "set": {1, 2}},
    ],
)
def test_check_values_accepts(params):
    check_values(params, max_bytes=1100)


@pytest.mark.parametrize(
    ("params", "loc", "kind"),
    [
        ({"deep": _nested(MAX_DEPTH + 1)}, ["deep", *[0] * MAX_DEPTH], "too_deep"),
        ({"deep": {"k": _nested(MAX_DEPTH)}}, ["deep", "k", *[0] * (MAX_DEPTH - 1)], "too_deep"),
        ({"deep": _nested(100_000)}, ["deep", *[0] * MAX_DEPTH], "too_deep"),
        ({"s": "\ud800"}, ["s"], "string_unicode"),
        ({"s": ["ok", {"k": "a\udfffb"}]}, ["s", 1, "k"], "string_unicode"),
        ({"s": {"\udc00": 1}}, ["s", "\\udc00"], "string_unicode"),
        ({"\ud800": 1}, ["\\ud800"], "string_unicode"),
        ({"big": "x" * 1100, "small": 1}, ["big"], "too_large"),
        ({"big": "é" * 600}, ["big"], "too_large"),  # bytes, not characters
    ],
)
def test_check_values_refuses_naming_the_field(params, loc, kind):
    with pytest.raises(ParameterError) as info:
        check_values(params, max_bytes=1100)
    assert info.value.errors[0]["loc"] == loc
    assert info.value.errors[0]["type"] == kind
    json.dumps(info.value.errors).encode()  # the errors themselves can be answered
    str(info.value).encode()


def test_check_values_reports_a_bounded_number_of_errors():
    with pytest.raises(ParameterError) as info:
        check_values({"s": ["\ud800"] * 1000})
    assert len(info.value.errors) == 20
    assert [e["loc"] for e in info.value.errors[:2]] == [["s", 0], ["s", 1]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": ["x"]}, {"a": ["x"]}),
        ({"a": ["\ud800x\udc00"]}, {"a": ["\ufffdx\ufffd"]}),
        ({"\ud83d": "😀"}, {"\ufffd": "😀"}),
    ],
)
def test_scrub_text(value, expected):
    assert scrub_text(value) == expected
