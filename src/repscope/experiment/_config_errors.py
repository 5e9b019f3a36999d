"""One line per config error: ``"<file>:<line>: <problem>; <fix>"``.

Turns :mod:`tomllib` syntax errors and pydantic validation errors into that line. The line of a
pydantic error comes from :func:`repscope.experiment._toml_lines.key_lines`; of several errors
the one written first in the file is reported, a missing key only when nothing else is wrong
(a misspelt key is both unknown and missing, and its suggestion is the fix).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from repscope.experiment._sections import LocatedError
from repscope.experiment._toml_lines import Loc, key_lines, line_of

__all__ = ["syntax_message", "validation_message"]

_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "tuple_type": "an array",
    "list_type": "an array",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_SHOWN = 60


def syntax_message(error: tomllib.TOMLDecodeError, text: str, source: str) -> str:
    """``"<source>:<line>: TOML syntax error: ...; fix ..."`` from tomllib's message."""
    message = str(error)
    at_line = _AT_LINE.search(message)
    if at_line:
        line, where = int(at_line.group(1)), f" at column {at_line.group(2)}"
    else:
        line, where = max(text.count("\n"), 1), " at the end of the file"
    problem = _AT_END.sub("", _AT_LINE.sub("", message))
    return (
        f"{source}:{line}: TOML syntax error{where}: {problem}; fix the syntax there (strings "
        'need quotes, arrays are ["a", "b"], tables are [name], each key is written once).'
    )


def validation_message(
    error: ValidationError, text: str, source: str, root: type[BaseModel]
) -> str:
    """The error of ``error`` written first in ``text``, as one line with its file and line."""
    lines = key_lines(text)
    # a default computed from other keys fails only because those did: not a problem of its own
    errors = [e for e in error.errors() if e["type"] != "default_factory_not_called"]
    placed = [_place(e, lines) for e in errors]
    line, loc, details = min(placed, key=lambda p: (p[2]["type"] == "missing", p[0]))
    return f"{source}:{line}: {_problem(details, loc, root)}"


def _place(details: Any, lines: dict[Loc, int]) -> tuple[int, Loc, Any]:
    """(line, loc) of one pydantic error; a LocatedError names its own keys."""
    loc = tuple(details["loc"])
    exc = details.get("ctx", {}).get("error")
    candidates = [(*loc, *rel) for rel in exc.locs] if isinstance(exc, LocatedError) else [loc]
    for candidate in candidates:
        if candidate in lines:
            return lines[candidate], candidate, details
    return line_of(lines, candidates[0]), candidates[0], details


def _problem(details: Any, loc: Loc, root: type[BaseModel]) -> str:
    kind = details["type"]
    where = _dotted(loc)
    if kind == "extra_forbidden":
        return _unknown_key(loc, root)
    if kind == "missing":
        return _missing(loc, root)
    if kind in ("value_error", "assertion_error"):
        return f"{where}: {details['ctx']['error']}"
    value = _toml(details["input"])
    example = _example(loc, root)
    if kind == "literal_error":
        expected = details["ctx"]["expected"]
        return f"{where} = {value} is not one of {expected}; write one of them{example}."
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        bound = details["ctx"][name]
        return (
            f"{where} = {value} must be {op} {bound}; change it to a value {op} {bound}{example}."
        )
    if kind in ("too_short", "string_too_short"):
        return f"{where} is empty; give it a value{example}."
    expected = details["ctx"]["expected"] if kind == "wrong_type" else _EXPECTED.get(kind)
    if expected is None:
        return f"{where} = {value}: {details['msg']}; correct the value{example}."
    got = f"{_kind(details['input'])} ({value})"
    return f"{where} is {got}, expected {expected}; write {expected} instead{example}."


def _unknown_key(loc: Loc, root: type[BaseModel]) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1], root)
    valid = list(model.model_fields) if model is not None else []
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not loc[:-1]:
        hint = f"did you mean [{near[0]}]?" if near else f"the sections are {', '.join(valid)}."
        return f"unknown section [{key}]; {hint}"
    hint = f"did you mean {near[0]!r}?" if near else f"valid keys: {', '.join(valid)}."
    return f"unknown key {key!r} in [{_dotted(loc[:-1])}]; {hint}"


def _missing(loc: Loc, root: type[BaseModel]) -> str:
    key = str(loc[-1])
    if len(loc) == 1:
        model = _model_at(loc, root)
        required = [n for n, f in model.model_fields.items() if f.is_required()] if model else []
        keys = f" with {', '.join(required)}" if required else ""
        return f"the section [{key}] is missing; add [{key}]{keys}."
    section = _dotted(loc[:-1])
    return f"[{section}] lacks the required key {key!r}; add {key} = ... under [{section}]."


def _model_at(loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        info = _field(model, part)
        model = _submodel(info.annotation) if info is not None else None
    return model


def _field(model: type[BaseModel] | None, part: str | int) -> FieldInfo | None:
    if model is None or not isinstance(part, str):
        return None
    return model.model_fields.get(part)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The table model inside ``annotation`` (``Model`` or ``Model | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, (_submodel(arg) for arg in get_args(annotation))), None)


def _example(loc: Loc, root: type[BaseModel]) -> str:
    """``", e.g. key = default"`` for a key with a plain default, else ``""``."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    info = _field(_model_at(loc[:-1], root), loc[-1])
    if info is None or info.default is PydanticUndefined or info.default is None:
        return ""
    return f", e.g. {loc[-1]} = {_toml(info.default)}"


def _toml(value: Any) -> str:
    """``value`` as TOML would write it, shortened to a few dozen characters."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = f"[{', '.join(_toml(v) for v in value)}]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, str):
        text = json.dumps(value)
    else:
        text = str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"))
    kinds += (((list, tuple), "an array"), (dict, "a table"))
    return next((name for types, name in kinds if isinstance(value, types)), "a date or time")


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
