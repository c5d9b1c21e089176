"""Per-call overhead of `packager.load(pkg).predict(x)` over calling the model's predict directly.

Two echo packages (bench/packages/echo: untyped; bench/packages/echo_typed: a pydantic
input model). For each, the same input goes through the handle and straight to the
model instance's predict (the typed one gets an already validated object), in
alternating timed loops; the table shows the medians of the repeats in µs per call.

    .venv/bin/python bench/overhead.py [--write] [--calls N] [--repeats R]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import PACKAGES, Row, machine, median, table, write_section

import packager

TARGET_US = 20.0
INPUT = {"text": "hello world", "n": 3}


def per_call_us(fn: Callable[[Any], Any], arg: Any, calls: int) -> float:
    """Microseconds per call of fn(arg), over `calls` calls, with the GC paused."""
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(calls):
            fn(arg)
        return (time.perf_counter() - started) / calls * 1e6
    finally:
        gc.enable()


def compare(cases: dict[str, tuple[Callable[[Any], Any], Any]], calls: int, repeats: int) -> dict[str, float]:
    """Median µs/call of each case; the cases take turns so noise hits them alike."""
    for fn, arg in cases.values():  # warm up caches and lazily built state
        per_call_us(fn, arg, max(1, calls // 10))
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for rep in range(repeats):
        order = list(cases) if rep % 2 == 0 else list(reversed(cases))
        for name in order:
            fn, arg = cases[name]
            samples[name].append(per_call_us(fn, arg, calls))
    return {name: median(values) for name, values in samples.items()}


def measure(calls: int, repeats: int) -> list[Row]:
    untyped = packager.load(PACKAGES / "echo", device="cpu")
    typed = packager.load(PACKAGES / "echo_typed", device="cpu")
    request_type = sys.modules[type(typed.model).__module__].EchoIn
    validated = request_type.model_validate(INPUT)
    t = compare(
        {
            "untyped direct": (untyped.model.predict, INPUT),
            "untyped handle": (untyped.predict, INPUT),
            "typed direct": (typed.model.predict, validated),
            "typed handle": (typed.predict, INPUT),
            "validate only": (request_type.model_validate, INPUT),
        },
        calls,
        repeats,
    )
    return [
        _row("untyped echo: handle.predict vs model.predict", t["untyped handle"], t["untyped direct"]),
        _row(
            "typed echo: handle.predict (validates) vs model.predict",
            t["typed handle"],
            t["typed direct"],
            note=f"pydantic validation alone: {t['validate only']:.2f} µs",
        ),
    ]


def _row(name: str, handle_us: float, direct_us: float, note: str = "") -> Row:
    overhead = handle_us - direct_us
    return Row(
        name=name,
        unit="µs/call",
        measured=handle_us,
        baseline=direct_us,
        target=f"overhead ≤ {TARGET_US:.0f} µs",
        passed=overhead <= TARGET_US,
        note="; ".join(x for x in (f"**overhead {overhead:.2f} µs/call**", note) if x),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed loop")
    parser.add_argument("--repeats", type=int, default=7, help="timed loops per case")
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    rows = measure(args.calls, args.repeats)
    body = f"{table(rows)}\n\n_{machine()}; {args.calls:,} calls x {args.repeats} repeats, median._"
    print(body)
    if args.write:
        write_section("overhead", body)


if __name__ == "__main__":
    main()
