"""About 2 ms of numpy work per request: a fixed-size matmul, repeated `loops` times.

bench/serve.py calibrates `loops` on this machine and passes it to both servers
in BENCH_NUMPY_LOOPS, so the packaged model and the baseline do identical work.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SIZE = 128
_A = np.random.default_rng(0).standard_normal((SIZE, SIZE))
_B = np.random.default_rng(1).standard_normal((SIZE, SIZE)) / SIZE


def work(body: Any, loops: int) -> dict[str, Any]:
    x = _A
    for _ in range(loops):
        x = x @ _B
    return {"checksum": float(x[0, 0]), "loops": loops, "echo": body}


def calibrate(target_ms: float = 2.0, samples: int = 50) -> int:
    """How many loops take about `target_ms` here (median of `samples` timings)."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work(None, 10)
        times.append((time.perf_counter() - started) / 10)
    per_loop_ms = sorted(times)[samples // 2] * 1e3
    return max(1, round(target_ms / per_loop_ms))
