"""Ad-hoc parameters checked against a flow's parameter JSON schema, as the serve process
does it (it never imports the flow): the same verdicts as the flow's own validation."""

from __future__ import annotations

import enum
from datetime import date
from typing import Literal

import pydantic
import pytest

from dockyard import flow
from dockyard.core.parameters import parameter_schema
from dockyard.core.schema_check import validate_against_schema
from dockyard.errors import ParameterError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Window(pydantic.BaseModel):
    start: int
    end: int = 10


@flow
def etl(
    count: int,
    name: str = "world",
    day: date | None = None,
    ids: list[int] = [1],  # noqa: B006 - a default the schema carries
    window: Window | None = None,
    colour: Colour = Colour.RED,
    mode: Literal["fast", "slow"] = "fast",
    ratio: float = 1.0,
    dry_run: bool = False,
):
    return count


SCHEMA = parameter_schema(etl.fn)


def check(**params):
    return validate_against_schema(SCHEMA, params, flow_name="etl")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"count": "5"}, {"count": 5}),
        ({"count": 5, "name": 7}, {"count": 5, "name": "7"}),
        ({"count": 1, "ids": "[1, 2]"}, {"count": 1, "ids": [1, 2]}),
        ({"count": 1, "ids": ["3"]}, {"count": 1, "ids": [3]}),
        (
            {"count": 1, "ratio": "0.5", "dry_run": "true"},
            {"count": 1, "ratio": 0.5, "dry_run": True},
        ),
        ({"count": 1, "day": "2026-01-02"}, {"count": 1, "day": "2026-01-02"}),
        ({"count": 1, "window": '{"start": "3"}'}, {"count": 1, "window": {"start": 3}}),
        (
            {"count": 1, "colour": "blue", "mode": "slow"},
            {"count": 1, "colour": "blue", "mode": "slow"},
        ),
        ({"count": 2.0}, {"count": 2}),
    ],
)
def test_values_are_coerced_like_the_flow_does(given, expected):
    checked = check(**given)
    assert {k: checked[k] for k in expected} == expected
    # ... and the flow's own validation accepts what the serve process wrote.
    assert etl.validate_parameters(checked)["count"] == expected["count"]


def test_defaults_from_the_schema_are_filled_in():
    assert check(count=1) == {
        "count": 1, "name": "world", "day": None, "ids": [1], "window": None,
        "colour": "red", "mode": "fast", "ratio": 1.0, "dry_run": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("given", "loc", "kind"),
    [
        ({"count": "many"}, ["count"], "type"),
        ({}, ["count"], "missing"),
        ({"count": 1, "colour": "green"}, ["colour"], "enum"),
        ({"count": 1, "mode": "medium"}, ["mode"], "enum"),
        ({"count": 1, "day": "not-a-day"}, ["day"], "anyOf"),
        ({"count": 1, "ids": ["x"]}, ["ids", 0], "type"),
        ({"count": 1, "window": {"end": 3}}, ["window"], "anyOf"),
    ],
)
def test_wrong_values_name_the_field(given, loc, kind):
    with pytest.raises(ParameterError) as caught:
        check(**given)
    error = caught.value.errors[0]
    assert (error["loc"], error["type"]) == (loc, kind)
    assert str(caught.value).startswith("invalid parameters for flow 'etl': " + str(loc[0]))
    with pytest.raises(ParameterError):  # the flow's own validation agrees
        etl.validate_parameters(given)


def test_unknown_parameters_are_refused_unless_the_flow_takes_kwargs():
    with pytest.raises(ParameterError, match="colour_name: unknown parameter"):
        check(count=1, colour_name="red")

    @flow
    def loose(a: int, **extra):
        return a

    schema = parameter_schema(loose.fn)
    assert validate_against_schema(schema, {"a": "1", "b": "x"}, flow_name="loose") == {
        "a": 1,
        "b": "x",
    }


def test_names_only_checks_names_and_keeps_values():
    given = {"count": "not checked"}
    assert validate_against_schema(SCHEMA, given, flow_name="etl", names_only=True) == given
    with pytest.raises(ParameterError, match="unknown parameter"):
        validate_against_schema(SCHEMA, {"nope": 1}, flow_name="etl", names_only=True)
