"""Compare a model's output with an example's expected one, numbers within a tolerance."""

from __future__ import annotations

import math
from typing import Any


def close(got: Any, want: Any, *, rtol: float, atol: float) -> str | None:
    """None when `got` matches `want` (numbers within rtol/atol), else where the first difference is."""
    return _diff(got, want, "", rtol, atol)


def _diff(got: Any, want: Any, at: str, rtol: float, atol: float) -> str | None:
    where = at or "the output"
    if isinstance(want, bool) or isinstance(got, bool):
        return None if got is want else f"{where}: expected {want!r}, got {got!r}"
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{where}: expected {want!r}, got {got!r} (rtol {rtol:g}, atol {atol:g})"
    if isinstance(want, dict) and isinstance(got, dict):
        if want.keys() != got.keys():
            return f"{where}: expected keys {sorted(want)}, got {sorted(got)}"
        found = (_diff(got[k], v, f"{at}.{k}" if at else str(k), rtol, atol) for k, v in want.items())
        return next((d for d in found if d), None)
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return f"{where}: expected {len(want)} items, got {len(got)}"
        found = (_diff(g, w, f"{at}[{i}]", rtol, atol) for i, (g, w) in enumerate(zip(got, want)))
        return next((d for d in found if d), None)
    return None if got == want else f"{where}: expected {_short(want)}, got {_short(got)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
