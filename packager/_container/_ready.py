"""Waiting for a started container to turn ready, with injected probes so tests can fake them."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from packager._errors import PackagerError


class ContainerExited(PackagerError):
    """The container stopped before it was ready (the caller adds its last log lines)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the container exited with code {code} before it was ready")
        self.code = code


def wait_ready(
    probe: Callable[[], bool],
    exit_code: Callable[[], int | None],
    *,
    timeout: float,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll `probe` until it is True; return the seconds waited.

    `exit_code` is None while the container runs; once it has a code, ContainerExited. Past
    `timeout` seconds, PackagerError.
    """
    start = clock()
    while True:
        if probe():
            return clock() - start
        code = exit_code()
        if code is not None:
            raise ContainerExited(code)
        if clock() - start >= timeout:
            raise PackagerError(
                f"the container was not ready within {timeout:g} s; see its log above, "
                "or give it longer with --timeout"
            )
        sleep(interval)


def http_probe(url: str) -> Callable[[], bool]:
    """A probe that is True when GET `url` answers 200 (readiness: GET /v1/models/NAME)."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False  # the port is published before the server listens

    return probe
