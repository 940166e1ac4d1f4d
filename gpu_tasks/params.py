"""Checking a job's parameters against its kind, and describing them as JSON Schema.

Messages are written for the person who typed the value: they name the allowed values or range.
"""

from __future__ import annotations

import math
from typing import Any

from gpu_tasks.base import JobKind, Param, ParamError

JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}
NOUNS = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
SEED = Param("seed", int, 0, 0, 2**32 - 1, help="Seed of the generated data: the same seed gives the same result")


def dtype_param(*choices: str) -> Param:
    """The `dtype` parameter of a kind that computes in any of `choices` (the first is the default)."""
    return Param("dtype", str, choices[0], choices=choices, help="Element type of the arrays")


class _Invalid(ValueError):
    pass


def validate(kind: JobKind, raw: Any) -> dict[str, Any]:
    """Cleaned parameters for `kind` (defaults filled in, types checked); ParamError names every bad field."""
    if not isinstance(raw, dict):
        raise ParamError({"params": "must be an object mapping parameter names to values"})
    errors = _unknown_names(kind, [str(name) for name in raw if name not in {p.name for p in kind.params}])
    clean = {}
    for p in kind.params:
        try:
            clean[p.name] = _clean(p, raw)
        except _Invalid as exc:
            errors[p.name] = str(exc)
    if errors:
        raise ParamError(errors)
    return clean


# An answer must not be larger than the request: a few unknown names are listed, the rest counted.
UNKNOWN_SHOWN, NAME_SHOWN = 5, 60


def _unknown_names(kind: JobKind, names: list[str]) -> dict[str, str]:
    errors = {name[:NAME_SHOWN]: _unknown(kind) for name in names[:UNKNOWN_SHOWN]}
    if len(names) > UNKNOWN_SHOWN:
        errors["params"] = f"{len(names)} unknown parameters; the first {UNKNOWN_SHOWN} are listed"
    return errors


def _unknown(kind: JobKind) -> str:
    if not kind.params:
        return f"unknown parameter: {kind.name} takes no parameters"
    return f"unknown parameter: {kind.name} takes {', '.join(p.name for p in kind.params)}"


def _clean(p: Param, raw: dict) -> Any:
    if p.name not in raw:
        if p.default is None:
            raise _Invalid(f"is required: {describe(p)}")
        return p.default
    value = _typed(p, raw[p.name])
    if not _allowed(p, value):
        raise _Invalid(f"must be {describe(p)}, got {_shown(raw[p.name])}")
    problem = p.check(value) if p.check else None
    if problem:
        raise _Invalid(problem)
    return value


def _typed(p: Param, value: Any) -> Any:
    """`value` as the parameter's type: an int may stand for a float, an integral float for an int."""
    if p.type is float and type(value) in (int, float) and _finite(value):
        return float(value)
    if p.type is int and type(value) is float and value.is_integer():
        return int(value)
    if type(value) is p.type and p.type is not float:  # `type(...) is`: to a user a bool is no int
        return value
    raise _Invalid(f"must be {describe(p)}, got {_shown(value)}")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _allowed(p: Param, value: Any) -> bool:
    if p.choices is not None and value not in p.choices:
        return False
    return (p.minimum is None or value >= p.minimum) and (p.maximum is None or value <= p.maximum)


def describe(p: Param) -> str:
    """What a parameter accepts, in words: "an integer between 16 and 32768", "one of float32, float64"."""
    if p.choices is not None:
        return "one of " + ", ".join(map(str, p.choices))
    noun = NOUNS[p.type]
    if p.minimum is not None and p.maximum is not None:
        return f"{noun} between {_number(p.minimum)} and {_number(p.maximum)}"
    if p.minimum is not None:
        return f"{noun} of at least {_number(p.minimum)}"
    if p.maximum is not None:
        return f"{noun} of at most {_number(p.maximum)}"
    return noun


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def json_schema(kind: JobKind) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12 subset) for the parameters of `kind`."""
    return {
        "type": "object",
        "title": kind.title,
        "description": kind.description,
        "properties": {p.name: _property(p) for p in kind.params},
        "required": [p.name for p in kind.params if p.default is None],
        "additionalProperties": False,
    }


def _property(p: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[p.type], "description": p.help or describe(p).capitalize()}
    extras = {"minimum": p.minimum, "maximum": p.maximum, "default": p.default}
    schema.update({k: v for k, v in extras.items() if v is not None})
    if p.choices is not None:
        schema["enum"] = list(p.choices)
    return schema
