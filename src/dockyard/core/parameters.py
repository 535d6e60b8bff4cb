"""Flow parameters: a pydantic model from a function signature, validation, CLI parsing.

Also the bounds every stored value must keep, whatever the flow's signature
(``check_values``: nesting depth, valid UTF-8 text, size as JSON).

Pure functions, no I/O. The model's fields use internal names (``p0``, ``p1``, ...) with
the real parameter names as aliases, so a parameter may be called ``json``, ``schema``
or ``_private`` without clashing with ``BaseModel`` attributes.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import to_jsonable_python

from dockyard.errors import ParameterError, UsageError

MAX_DEPTH = 32
"""How deeply containers may nest inside one parameter value."""
MAX_PARAMETER_BYTES = 256 * 1024
"""The most an ad-hoc run's parameters may take as JSON (UTF-8 bytes)."""
MAX_ERRORS = 20
"""Field errors reported at most for one set of parameters."""

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_JSON_CONTAINERS = (list, dict, tuple, set, frozenset)
_MODELS: weakref.WeakKeyDictionary[Any, dict[bool, type[pydantic.BaseModel]]] = (
    weakref.WeakKeyDictionary()
)


def signature_parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters of ``fn`` that a flow run can set (no ``self`` when bound, no ``*args``)."""
    return [p for p in _signature(fn).parameters.values() if p.kind not in _VARIADIC]


def accepts_var_keyword(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes ``**kwargs``."""
    kinds = (p.kind for p in _signature(fn).parameters.values())
    return inspect.Parameter.VAR_KEYWORD in kinds


def parameter_model(fn: Callable[..., Any]) -> type[pydantic.BaseModel]:
    """A pydantic model of ``fn``'s parameters, cached per function (and per bound-ness)."""
    func, bound = getattr(fn, "__func__", fn), inspect.ismethod(fn)
    try:
        cached = _MODELS.setdefault(func, {})
    except TypeError:  # not weak-referenceable: build every time
        cached = {}
    if bound not in cached:
        cached[bound] = _build_model(fn)
    return cached[bound]


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """JSON schema of ``fn``'s parameters, for the HTTP API and a web form.

    Every property has ``title`` (the parameter name) and ``position`` (its index in the
    signature). Defaults that cannot be turned into JSON are left out.
    """
    schema = parameter_model(fn).model_json_schema(schema_generator=_LenientSchema)
    schema["title"] = "Parameters"
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    return schema


def validate_parameters(
    fn: Callable[..., Any], params: Mapping[str, Any], *, flow_name: str | None = None
) -> dict[str, Any]:
    """Validate and coerce ``params`` against ``fn``'s signature (pydantic lax mode).

    Returns every parameter (defaults included) with its validated value. Unknown names
    are rejected unless ``fn`` takes ``**kwargs`` (extra values then pass through
    unvalidated). Raises ``ParameterError`` naming every bad field.
    """
    model = parameter_model(fn)
    data = _decode_json_strings(model, params)
    try:
        instance = model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _parameter_error(flow_name or _default_name(fn), exc) from None
    # Every field has its parameter's name as alias (``_field``); the ``or`` is for the type.
    fields = model.model_fields.items()
    values = {(field.alias or key): getattr(instance, key) for key, field in fields}
    values.update(instance.model_extra or {})
    return values


def merge_parameters(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Shallow merge: a deployment's default parameters under ad-hoc ones."""
    return {**defaults, **overrides}


def check_values(
    params: Mapping[str, Any], *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_PARAMETER_BYTES
) -> None:
    """Refuse values that could not be stored and answered as JSON, before anything is written.

    Containers nested more than ``max_depth`` deep, strings (values or keys) that are not
    valid UTF-8 (lone surrogates such as JSON's ``"\\ud800"``), and parameters that take
    more than ``max_bytes`` as JSON. Raises ``ParameterError`` whose ``loc`` names the
    parameter and the path inside it.
    """
    errors = [e for name, value in params.items() for e in _value_errors(name, value, max_depth)]
    if not errors:
        errors = _size_errors(params, max_bytes)
    if errors:
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors]
        raise ParameterError("invalid parameters: " + "; ".join(parts), errors)


def scrub_text(value: Any) -> Any:
    """JSON data ``value`` with every lone surrogate in its strings replaced by U+FFFD.

    For data stored before ``check_values`` existed, so that it can still be answered.
    """
    text = json.dumps(value, ensure_ascii=False)
    if _is_utf8(text):
        return value
    return json.loads(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def parse_param_args(items: list[str]) -> dict[str, str]:
    """Parse CLI ``--param KEY=VALUE`` strings; the value may itself contain ``=``."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        parsed[key.strip()] = value
    return parsed


def jsonable(value: Any) -> Any:
    """Validated values (dates, models, paths...) as JSON-ready data; repr() as a last resort."""
    return to_jsonable_python(value, fallback=repr)


# ── model construction ─────────────────────────────────────────────────────────────


class _LenientSchema(GenerateJsonSchema):
    """Schema generator that turns types without a JSON schema into ``{}`` silently."""

    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> dict[str, Any]:
        return {}

    def emit_warning(self, kind: Any, detail: str) -> None:
        # Non-serialisable defaults are simply left out of the schema.
        return None


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        # Unresolvable string annotations (forward references): treat them as Any below.
        return inspect.signature(fn)


def _build_model(fn: Callable[..., Any]) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    for position, param in enumerate(signature_parameters(fn)):
        fields[f"p{position}"] = _field(param, position)
    config = pydantic.ConfigDict(
        extra="allow" if accepts_var_keyword(fn) else "forbid",
        arbitrary_types_allowed=True,
        coerce_numbers_to_str=True,
    )
    return pydantic.create_model("Parameters", __config__=config, **fields)


def _field(param: inspect.Parameter, position: int) -> tuple[Any, FieldInfo]:
    annotation = param.annotation
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        annotation = Any
    info: dict[str, Any] = {
        "alias": param.name,
        "title": param.name,
        "json_schema_extra": {"position": position},
    }
    default = param.default
    if isinstance(default, FieldInfo):  # `x: int = Field(5, ge=0)`
        return typing.Annotated[annotation, default], pydantic.Field(**info)
    if default is inspect.Parameter.empty:
        return annotation, pydantic.Field(**info)
    return annotation, pydantic.Field(default=default, **info)


def _default_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", "flow").replace("_", "-")


# ── validation helpers ─────────────────────────────────────────────────────────────


def _decode_json_strings(
    model: type[pydantic.BaseModel], params: Mapping[str, Any]
) -> dict[str, Any]:
    """Decode JSON text given for container/model parameters (``--param ids=[1,2]``)."""
    data = dict(params)
    for field in model.model_fields.values():
        value = data.get(field.alias or "")
        if isinstance(value, str) and _wants_json(field.annotation):
            try:
                data[field.alias or ""] = json.loads(value)
            except ValueError:
                pass  # let pydantic report the type error
    return data


def _wants_json(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _wants_json(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return str not in args and any(_wants_json(a) for a in args)
    target = origin or annotation
    if not isinstance(target, type):
        return False
    return issubclass(target, (*_JSON_CONTAINERS, pydantic.BaseModel))


def _value_errors(name: str, value: Any, max_depth: int) -> list[dict[str, Any]]:
    """Depth and text problems of one parameter, at most MAX_ERRORS of them.

    Iterative, with a stack, so that no nesting depth can exhaust Python's recursion.
    """
    errors: list[dict[str, Any]] = []
    pending: list[tuple[Any, list[Any], int]] = [(value, [_escaped(name)], 0)]
    if not _is_utf8(name):
        errors.append(_text_error([_escaped(name)], name))
    while pending and len(errors) < MAX_ERRORS:
        item, loc, depth = pending.pop()
        if isinstance(item, str):
            if not _is_utf8(item):
                errors.append(_text_error(loc, item))
        elif isinstance(item, (Mapping, list, tuple, set, frozenset)):
            if depth >= max_depth:
                msg = f"nested deeper than {max_depth} levels"
                errors.append({"loc": loc, "msg": msg, "type": "too_deep"})
                continue
            pending.extend(reversed(_children(item, loc, depth + 1)))
            errors.extend(_key_errors(item, loc))
    return errors[:MAX_ERRORS]


def _children(item: Any, loc: list[Any], depth: int) -> list[tuple[Any, list[Any], int]]:
    pairs = item.items() if isinstance(item, Mapping) else enumerate(item)
    return [(v, [*loc, _escaped(k) if isinstance(k, str) else k], depth) for k, v in pairs]


def _key_errors(item: Any, loc: list[Any]) -> list[dict[str, Any]]:
    if not isinstance(item, Mapping):
        return []
    bad = [k for k in item if isinstance(k, str) and not _is_utf8(k)]
    return [_text_error([*loc, _escaped(k)], k) for k in bad]


def _size_errors(params: Mapping[str, Any], max_bytes: int) -> list[dict[str, Any]]:
    sizes = {name: len(_json_bytes(value)) for name, value in params.items()}
    total = len(_json_bytes(params))
    if total <= max_bytes:
        return []
    largest = max(sizes, key=lambda name: sizes[name])
    msg = (
        f"the parameters take {total} bytes as JSON, more than the {max_bytes} allowed "
        f"(this one takes {sizes[largest]})"
    )
    return [{"loc": [largest], "msg": msg, "type": "too_large"}]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")).encode()


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escaped(text: str) -> str:
    return text if _is_utf8(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _text_error(loc: list[Any], text: str) -> dict[str, Any]:
    bad = next(i for i, c in enumerate(text) if not _is_utf8(c))
    msg = (
        f"not valid UTF-8 text: a lone surrogate ({_escaped(text[bad])}) at index {bad}; "
        "send characters, not halves of a UTF-16 pair"
    )
    return {"loc": loc, "msg": msg, "type": "string_unicode"}


def _parameter_error(flow_name: str, exc: pydantic.ValidationError) -> ParameterError:
    errors = [_error_detail(err) for err in exc.errors(include_url=False)]
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors]
    message = f"invalid parameters for flow {flow_name!r}: " + "; ".join(parts)
    return ParameterError(message, errors)


def _error_detail(err: Any) -> dict[str, Any]:
    kind = err["type"]
    if kind == "missing":
        msg = "missing required parameter"
    elif kind == "extra_forbidden":
        msg = "unknown parameter"
    else:
        msg = f"{err['msg']} (got {_short_repr(err.get('input'))})"
    return {"loc": list(err["loc"]), "msg": msg, "type": kind}


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
