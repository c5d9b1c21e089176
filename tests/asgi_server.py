"""A package's ASGI app served by uvicorn in a thread on a free loopback port, for tests that
need a real server in their own process (shared by the client and `pkg predict --url` tests)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from packager._pipeline import Pipeline
from packager._server import create_app
from packager._server._main import bind
from packager._spec_load import read_package


@contextlib.contextmanager
def serving(path: Path) -> Iterator[str]:
    """Serve the package at `path`; yields its base URL and stops the server afterwards."""
    app = create_app(Pipeline(read_package(path)))
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        assert thread.is_alive(), "server thread died"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
