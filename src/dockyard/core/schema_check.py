"""Checking parameters against a flow's parameter JSON schema, without the flow itself.

The serve process never imports a flow, so it checks an ad-hoc run's parameters against
the JSON schema the probe reported (``Deployment.parameter_schema``), before anything is
written. Strings are coerced the way pydantic's lax mode does for the common types (``"5"``
for an integer, ``"true"`` for a boolean, JSON text for a list or an object); the run's
child validates again against the real signature.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from copy import deepcopy
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pydantic
from jsonschema import Draft202012Validator, FormatChecker

from dockyard.errors import ParameterError

_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})
_FORMATS: dict[str, type] = {
    "date": date, "date-time": datetime, "time": time, "uuid": UUID, "duration": timedelta,
}  # fmt: skip


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, kind in _FORMATS.items():
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(kind)

        def check(value: object, adapter: pydantic.TypeAdapter[Any] = adapter) -> bool:
            if not isinstance(value, str):
                return True
            try:
                adapter.validate_python(value)
            except pydantic.ValidationError:
                return False
            return True

        checker.checks(name)(check)
    return checker


_CHECKER = _format_checker()


def validate_against_schema(
    schema: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    flow_name: str,
    names_only: bool = False,
) -> dict[str, Any]:
    """``parameters`` coerced and with the schema's defaults filled in, or ParameterError.

    With ``names_only`` (a flow with ``validate_parameters=False``) only unknown names are
    refused and the values pass through as given.
    """
    properties: Mapping[str, Any] = schema.get("properties") or {}
    errors = _unknown(schema, properties, parameters)
    if names_only:
        _raise_if(errors, flow_name)
        return dict(parameters)
    errors += [_missing(name) for name in schema.get("required", []) if name not in parameters]
    values: dict[str, Any] = {}
    for name, value in parameters.items():
        prop = properties.get(name)
        if prop is None:
            values[name] = value  # **kwargs: passed through
            continue
        values[name], problem = _check_value(schema, name, prop, value)
        if problem:
            errors.append(problem)
    _raise_if(errors, flow_name)
    for name, prop in properties.items():
        if name not in values and "default" in prop:
            values[name] = deepcopy(prop["default"])
    return values


def _unknown(
    schema: Mapping[str, Any], properties: Mapping[str, Any], parameters: Mapping[str, Any]
) -> list[dict[str, Any]]:
    if schema.get("additionalProperties", True) is not False:
        return []
    return [
        {"loc": [name], "msg": "unknown parameter", "type": "extra_forbidden"}
        for name in sorted(set(parameters) - set(properties))
    ]


def _missing(name: str) -> dict[str, Any]:
    return {"loc": [name], "msg": "missing required parameter", "type": "missing"}


def _check_value(
    schema: Mapping[str, Any], name: str, prop: Mapping[str, Any], value: Any
) -> tuple[Any, dict[str, Any] | None]:
    sub = {**prop, "$defs": schema.get("$defs", {})}
    validator = Draft202012Validator(sub, format_checker=_CHECKER)
    coerced = _coerce(value, prop, _resolver(schema), validator.is_valid)
    error = next(iter(sorted(validator.iter_errors(coerced), key=lambda e: e.path)), None)
    if error is None:
        return coerced, None
    loc = [name, *error.absolute_path]
    msg = f"{_first_line(error.message)} (got {_short_repr(value)})"
    return coerced, {"loc": loc, "msg": msg, "type": str(error.validator)}


def _resolver(schema: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    defs = schema.get("$defs", {})

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return resolve(defs.get(ref.removeprefix("#/$defs/"), {}))
        return node

    return resolve


def _coerce(
    value: Any,
    node: Mapping[str, Any],
    resolve: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    valid: Callable[[Any], bool],
) -> Any:
    """``value`` converted towards ``node``'s type where pydantic's lax mode would."""
    node = resolve(node)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        if valid(value):
            return value
        for option in options:
            candidate = _coerce(value, option, resolve, lambda _v: True)
            if candidate is not value:
                return candidate
        return value
    kinds = node.get("type")
    types = set(kinds) if isinstance(kinds, list) else {kinds}
    if isinstance(value, str) and "string" not in types:
        value = _from_text(value, types)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _from_number(value, types)
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [_coerce(item, node["items"], resolve, lambda _v: True) for item in value]
    if isinstance(value, dict) and isinstance(node.get("properties"), Mapping):
        props = node["properties"]
        return {
            k: _coerce(v, props[k], resolve, lambda _v: True) if k in props else v
            for k, v in value.items()
        }
    return value


def _from_text(text: str, types: set[Any]) -> Any:
    stripped = text.strip()
    if "integer" in types:
        try:
            return int(stripped)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(stripped)
        except ValueError:
            pass
    if "boolean" in types and stripped.lower() in _TRUE | _FALSE:
        return stripped.lower() in _TRUE
    if types & {"array", "object"}:
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text


def _from_number(number: float, types: set[Any]) -> Any:
    if "integer" in types and isinstance(number, float) and number.is_integer():
        return int(number)
    if "string" in types and not types & {"integer", "number"}:
        return str(number)  # coerce_numbers_to_str, as the flow's own model does
    return number


def _raise_if(errors: list[dict[str, Any]], flow_name: str) -> None:
    if not errors:
        return
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors]
    message = f"invalid parameters for flow {flow_name!r}: " + "; ".join(parts)
    raise ParameterError(message, errors)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "invalid value"


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
