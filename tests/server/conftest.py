"""The `start` fixture: server subprocesses that are killed when the test ends, whatever happened."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import ServerProcess


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def _start(package: str | Path, *args: str) -> ServerProcess:
        server = ServerProcess(package, tmp_path / f"server-{len(started)}.log", *args)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()
