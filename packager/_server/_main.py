"""`serve(path)`: check the package, bind, run uvicorn, load the model once the port is open.

Order matters: the spec is validated and the model class imported and
inspected first (a PackagerError raised here never opens a port); then the
socket is bound (a port in use is a PackagerError too); then uvicorn serves
and, once it is accepting, the model loads in a worker thread. A failed load
is logged with its traceback and shuts the server down with exit code 1.
SIGTERM/SIGINT stop accepting, let in-flight requests finish for up to
``runtime.shutdown_grace_s`` (those still running then get a JSON 503), and
return 0; a second signal exits at once with 128 + its number. When every
predict slot has been stuck for ``runtime.stuck_exit_s`` the server shuts
down the same way and returns 3. With ``reload=True`` uvicorn serves a
`ReloadingApp` (_reload.py) that loads the package again when it changes;
without it, uvicorn gets the App itself (nothing added per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Coroutine, Generator
from pathlib import Path
from types import FrameType
from typing import Any, Optional, Union

import uvicorn

from packager._errors import PackagerError
from packager._pipeline import Pipeline
from packager._server._app import App
from packager._server._logging import configure_logging
from packager._server._proxy_process import ON_EXIT, signal_all
from packager._server._reload import ReloadingApp
from packager._spec_load import read_package
from packager._stdio import model_output_to_stderr

_log = logging.getLogger("packager.server")
EXIT_OK, EXIT_FAILED, EXIT_STUCK = 0, 1, 3
EXIT_INNER = 4  # the inner server of a `server:` package exited (docs/server.md#supervision)
Served = Union[App, ReloadingApp]  # ReloadingApp (--reload) hands each request to its current App


def serve(
    path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    reload: bool = False,
) -> int:
    """See `packager._server.serve`. What model code prints goes to stderr (stdout is not a log)."""
    configure_logging(log_level)
    with model_output_to_stderr():
        pipeline = Pipeline(read_package(path))
        sock = bind(host, port)
        plain = App(pipeline, autoload=False)
        app: Served = ReloadingApp(path, plain) if reload else plain
        server = _Server(_config(app, pipeline, host, port, log_level), app)
        try:
            return _run(_main(server, app, sock))
        except SystemExit as exc:  # uvicorn exits this way when startup fails
            return exc.code if isinstance(exc.code, int) else 1
        finally:
            sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port (port 0 picks a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise PackagerError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = (
            "another process is using it; pick another --port"
            if exc.errno == 98
            else "check --host and --port"
        )
        raise PackagerError(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
    return sock


def _config(app: Served, pipeline: Pipeline, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_http_protocol(),
        interface="asgi3",
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=pipeline.spec.runtime.shutdown_grace_s,  # type: ignore[arg-type]
    )


def _http_protocol() -> Any:
    """uvicorn's httptools protocol with coalesced writes, or h11 when httptools is missing."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from packager._server._protocol import CoalescingHttpToolsProtocol

    return CoalescingHttpToolsProtocol


class _QuietCancel(logging.Filter):
    """Drops uvicorn's line about cancelling tasks at the end of the grace period: each cut-off
    request logs its own line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Cancel %s running task")


_QUIET_CANCEL = _QuietCancel()


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal after a graceful stop (we return 0 instead).

    The first SIGTERM/SIGINT starts a graceful stop (and marks the app as
    stopping, so that requests cut off at the end of the grace period get a
    JSON 503); a second one exits at once with 128 + the signal number.
    """

    def __init__(self, config: uvicorn.Config, app: Served) -> None:
        super().__init__(config)
        self.app = app
        self.exit_code = EXIT_OK
        self.signalled = False
        uvicorn_log = logging.getLogger("uvicorn.error")
        if _QUIET_CANCEL not in uvicorn_log.filters:
            uvicorn_log.addFilter(_QUIET_CANCEL)

    def stop(self, exit_code: int) -> None:
        """Shut down gracefully (as on SIGTERM) and exit with `exit_code`."""
        self.exit_code = self.exit_code or exit_code
        self.app.stopping = True
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Optional[FrameType]) -> None:
        name = signal.Signals(sig).name
        if self.signalled:
            _log.error(
                "received %s again: exiting now with code %d, abandoning %d request(s) in flight",
                name,
                128 + sig,
                self.app.inflight,
            )
            for handler in logging.getLogger().handlers:
                handler.flush()
            signal_all(signal.SIGKILL)  # a `server:` package's inner server goes too
            os._exit(128 + sig)
        self.signalled = True
        if not self.should_exit:
            grace = self.config.timeout_graceful_shutdown
            _log.info(
                "received %s: finishing in-flight requests (up to %gs, runtime.shutdown_grace_s), then "
                "exiting; send it again to exit at once",
                name,
                grace or 0,
            )
        self.app.stopping = True
        super().handle_exit(sig, frame)


async def _main(server: _Server, app: Served, sock: socket.socket) -> int:
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.005)
    if server.started:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        _log.info("serving %s on http://%s:%d", app.name, shown, port, extra={"port": port})

        def loaded(error: Optional[BaseException]) -> None:
            if error is not None:
                server.stop(EXIT_FAILED)

        def stuck(reason: str) -> None:
            _log.error("%s: shutting down with exit code %d so that it gets restarted", reason, EXIT_STUCK)
            server.stop(EXIT_STUCK)

        def inner_died(reason: str) -> None:
            _log.error("%s: shutting down with exit code %d", reason, EXIT_INNER)
            server.stop(EXIT_INNER)

        app.state.on_stuck = stuck
        ON_EXIT.append(inner_died)
        app.start_loading(loaded)
    try:
        await serving
    finally:
        if server.started:
            ON_EXIT.remove(inner_died)
    if server.exit_code == EXIT_OK and app.load_error is not None:
        return EXIT_FAILED
    return server.exit_code


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # novermin (3.11+ only)
            return runner.run(main)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(main)
