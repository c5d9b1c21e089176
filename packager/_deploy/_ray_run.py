"""`pkg deploy --target ray --run`: hand the written Serve config to Ray's own `serve` CLI.

With an address, `serve deploy CONFIG --address ADDRESS` sends it to a running cluster (Ray's
dashboard address, e.g. http://head:8265) and returns; without one, `serve run CONFIG` starts a
local Ray and serves in the foreground until Ctrl-C. Ray is never imported here.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

from packager._errors import PackagerError


def serve_command(config: Path, address: str | None) -> list[str]:
    """The `serve` command line that runs `config` locally, or deploys it to `address`."""
    beside = Path(sys.executable).parent / "serve"  # the serve script of this environment first
    serve = str(beside) if beside.is_file() else shutil.which("serve")
    if serve is None:
        raise PackagerError(
            "--run needs Ray Serve's `serve` command: pip install 'ray[serve]' (or packager[ray]), "
            "or run the printed `serve run` command where Ray is installed"
        )
    if address:
        return [serve, "deploy", str(config), "--address", address]
    return [serve, "run", str(config)]


def run_serve(config: Path, address: str | None) -> None:
    """Run `serve` on `config`. Ctrl-C or SIGTERM is passed on once, as SIGINT (on which `serve
    run` deletes the app and exits); a second one kills it. `serve` runs in its own session, so a
    terminal's Ctrl-C reaches it only through here, never twice."""
    command = serve_command(config, address)
    # SIGINT may come ignored from whoever started us (a background job of a script, `unshare
    # --fork`); `serve run` must still stop on it, and so must this wait.
    with subprocess.Popen(command, start_new_session=True, preexec_fn=_default_sigint) as process:
        stop = _Stop(process)
        previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = _wait(process, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if code != 0 and not stop.asked:
        raise PackagerError(f"`serve {command[1]}` exited with code {code}; its output is above")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Stop:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process, self.asked = process, False

    def handle(self, *_: object) -> None:
        if self.asked:
            self.process.kill()
        else:
            self.asked = True
            self.process.send_signal(signal.SIGINT)


def _wait(process: subprocess.Popen[bytes], stop: _Stop) -> int:
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            stop.handle()
