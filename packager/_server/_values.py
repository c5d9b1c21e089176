"""Finding the part of an output that an encoding cannot carry, to name it in the error.

Used only after orjson or msgpack refused a value (or, for NaN, after
orjson wrote ``null``), so the hot path never walks an output. Paths are
written as Python subscripts of ``output``: ``output['scores'][2]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Optional

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1
MAX_DEPTH = 300
Problem = Callable[[Any], Optional[str]]
Expand = Callable[[Any], Any]
_INDEX, _KEY, _ATTR = 0, 1, 2
_LEAVES = (str, bytes, bytearray, int, float, type(None), datetime.date, datetime.time, uuid.UUID)
_JSON_KEYS = (str, int, float, type(None), datetime.date, datetime.time, enum.Enum, uuid.UUID)
Children = Iterator[tuple[Any, int, Any]]


def where(path: str) -> str:
    """The path as shown to users."""
    return "output" + path


def find(
    value: Any, value_problem: Problem, key_problem: Optional[Problem], expand: Expand
) -> Optional[tuple[str, str]]:
    """(path, problem) for the first value (or dict key) the checks flag, in document order; else None.

    `expand` turns an object that is not a plain container (a pydantic model,
    a torch tensor) into the value the encoder would write for it.
    """
    problem = value_problem(value)
    if problem is not None:
        return "", problem
    stack: list[tuple[str, Children]] = []
    children = _children(value, expand)
    if children is not None:
        stack.append(("", children))
    while stack:
        path, children = stack[-1]
        for label, kind, child in children:
            if kind == _KEY and key_problem is not None:
                problem = key_problem(label)
                if problem is not None:
                    return path, problem
            problem = value_problem(child)
            if problem is not None:
                return path + _segment(label, kind), problem
            grand = _children(child, expand) if len(stack) < MAX_DEPTH else None
            if grand is not None:
                stack.append((path + _segment(label, kind), grand))
                break
        else:
            stack.pop()
    return None


def _segment(label: Any, kind: int) -> str:
    if kind == _INDEX:
        return f"[{label}]"
    return f"[{label!r}]" if kind == _KEY else f".{label}"


def _children(value: Any, expand: Expand) -> Optional[Children]:
    if isinstance(value, _LEAVES):
        return None
    if isinstance(value, dict):
        return ((k, _KEY, v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ((i, _INDEX, v) for i, v in enumerate(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, _ATTR, getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, enum.Enum):
        return _children(value.value, expand)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and type(value).__module__ == "numpy" and not getattr(dtype, "hasobject", False):
        return None  # numeric arrays and scalars: the checks look at them whole
    try:
        expanded = expand(value)
    except Exception:  # the encoder's own error names it; nothing more to find here
        return None
    return None if expanded is value else _children(expanded, expand)


def non_finite(value: Any) -> Optional[str]:
    """'is NaN' and the like for a float, numpy scalar or array JSON cannot write; else None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else "is " + _float_name(value)
    if type(value).__module__ != "numpy" or getattr(value, "dtype", None) is None:
        return None
    import numpy as np

    if value.dtype.kind != "f":
        return None
    if isinstance(value, np.ndarray):
        bad = ~np.isfinite(value)
        if not bad.any():
            return None
        index = [int(i) for i in np.argwhere(bad)[0]]
        return f"is a numpy array holding {_float_name(float(value[tuple(index)]))} at index {index}"
    return None if np.isfinite(value) else "is " + _float_name(float(value))


def _float_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def big_int(value: Any) -> Optional[str]:
    """'is an integer over 64 bits' for an int no 64-bit type holds; else None."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= UINT64_MAX:
        return "is an integer over 64 bits"
    return None


def json_key(key: Any) -> Optional[str]:
    """Why `key` cannot be a JSON object key (orjson with OPT_NON_STR_KEYS); else None."""
    shown = repr(key)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    if isinstance(key, _JSON_KEYS):
        if isinstance(key, int) and big_int(key):
            return f"has an integer key over 64 bits ({shown}); convert the keys with str()"
        return None
    return (
        f"has a key of type {type(key).__name__} ({shown}), but JSON object keys are text: "
        "convert the keys with str(), or return a list of pairs"
    )


def no_problem(value: Any) -> Optional[str]:
    return None


def widen_ints(value: Any, make: Callable[[int], Any], expand: Expand, depth: int = 0) -> Any:
    """A copy of `value` with each integer over 64 bits replaced by `make(integer)`."""
    if isinstance(value, int) and not isinstance(value, (bool, enum.Enum)):
        return make(int(value)) if big_int(value) else value
    if depth > MAX_DEPTH or isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict):
        return {k: widen_ints(v, make, expand, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [widen_ints(v, make, expand, depth + 1) for v in value]
    children = _children(value, expand)
    if children is None:
        return value
    if dataclasses.is_dataclass(value):
        return {name: widen_ints(v, make, expand, depth + 1) for name, _, v in children}
    try:
        expanded = expand(value)
    except Exception:
        return value
    return widen_ints(expanded, make, expand, depth + 1)
