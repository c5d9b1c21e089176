"""The inner server's process: started in its own process group, logged, watched, stopped.

Its stdout and stderr become lines of our structured log (logger
`packager.server.inner`). When it exits while nobody asked it to, every
callback in `ON_EXIT` is called (the server then shuts down with exit code 4,
docs/server.md#supervision). `signal_all` forwards a signal to every running
inner process group (SIGTERM to the front); an exiting interpreter kills
whatever is still running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from packager._errors import ModelLoadError
from packager._server._proxy_http import InnerUnreachable, get_status
from packager._spec_server import Server

_log = logging.getLogger("packager.server")
_inner_log = logging.getLogger("packager.server.inner")
ON_EXIT: list[Callable[[str], None]] = []  # called with the reason when an inner server dies
_RUNNING: weakref.WeakSet[InnerProcess] = weakref.WeakSet()
_PROBE_TIMEOUT_S = 5.0


class InnerProcess:
    """One run of `server.command`."""

    def __init__(self, server: Server, root: Path, name: str) -> None:
        self.server = server
        self.root = root
        self.name = name
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.exit_code: Optional[int] = None
        self.stopping = False
        self._exited = asyncio.Event()
        self._tasks: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        """Start the command and wait for readiness; ModelLoadError (process killed) when it never comes."""
        await self._check_port_free()
        command = list(self.server.command)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable  # the Python that runs packager (the image's venv)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.server.environment}
        _log.info("starting the model server: %s", " ".join(command), extra={"port": self.server.port})
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: signals reach all its children
            )
        except OSError as exc:
            raise ModelLoadError(
                f"cannot start the model server {command[0]!r}: {exc.strerror}; check server.command"
            ) from None
        _RUNNING.add(self)
        _log.info("model server started (pid %d)", self.proc.pid, extra={"pid": self.proc.pid})
        self._tasks = [asyncio.ensure_future(_pipe_lines(s, n)) for s, n in self._streams(self.proc)]
        self._tasks.append(asyncio.ensure_future(self._watch(self.proc)))
        await self._wait_ready()

    @staticmethod
    def _streams(proc: asyncio.subprocess.Process) -> list[tuple[Optional[asyncio.StreamReader], str]]:
        return [(proc.stdout, "stdout"), (proc.stderr, "stderr")]

    async def probe(self, path: str) -> int:
        """The status `path` answers now; 0 when the server cannot be reached."""
        try:
            return await get_status(self.server.port, path, _PROBE_TIMEOUT_S)
        except InnerUnreachable:
            return 0

    async def exited_soon(self, within: float = 1.0) -> bool:
        """Whether the process has exited, or does so within `within` seconds."""
        try:
            await asyncio.wait_for(self._exited.wait(), within)
        except asyncio.TimeoutError:
            return False
        return True

    def exit_message(self) -> str:
        code = self.exit_code
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        return f"the model server ({self.server.command[0]}) {how}"

    def signal(self, sig: int) -> None:
        """Send `sig` to the process group (a stop on purpose: its exit is not a failure)."""
        self.stopping = True
        if self.proc is not None and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    async def stop(self, grace: float) -> None:
        """SIGTERM the group, wait up to `grace` seconds, then SIGKILL it."""
        self.signal(signal.SIGTERM)
        if not await self.exited_soon(grace):
            _log.warning("the model server did not exit within %gs of SIGTERM: killing it", grace)
            self.kill()

    async def _check_port_free(self) -> None:
        if await self.probe(self.server.readiness_path) != 0:
            raise ModelLoadError(
                f"something already answers on 127.0.0.1:{self.server.port} (server.port); "
                "stop it or give the model server another port"
            )

    async def _wait_ready(self) -> None:
        limit = self.server.startup_timeout_s
        deadline, delay = time.monotonic() + limit, 0.05
        while True:
            if self.exit_code is not None:
                raise ModelLoadError(
                    f"{self.exit_message()} before it was ready; its output is in the log above"
                )
            if await self.probe(self.server.readiness_path) == 200:
                _log.info("the model server is ready (%s answers 200)", self.server.readiness_path)
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise ModelLoadError(
                    f"the model server did not answer 200 on {self.server.readiness_path} within "
                    f"{limit:g}s (server.startup_timeout_s); it was stopped"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self.exit_code = code
        self._exited.set()
        _RUNNING.discard(self)
        if self.stopping:
            _log.info("the model server stopped (code %d)", code)
            return
        reason = self.exit_message()
        _log.error("%s", reason)
        for callback in list(ON_EXIT):
            callback(reason)


async def _pipe_lines(stream: Optional[asyncio.StreamReader], name: str) -> None:
    if stream is None:
        return
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode("utf-8", errors="replace").rstrip()
        if text:
            _inner_log.info("%s", text, extra={"stream": name})


def signal_all(sig: int) -> None:
    """Send `sig` to every running inner server's process group."""
    for process in list(_RUNNING):
        process.signal(sig)


async def stop_all(grace: float) -> None:
    """Stop every running inner server (SIGTERM, then SIGKILL after `grace` seconds)."""
    await asyncio.gather(*(process.stop(grace) for process in list(_RUNNING)))


@atexit.register
def _kill_leftovers() -> None:
    signal_all(signal.SIGKILL)
