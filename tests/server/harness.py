"""Real `python -m packager._server` subprocesses on loopback, on free ports (bound as port 0)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "serving"
LISTENING = re.compile(r"serving \S+ on http://127\.0\.0\.1:(\d+)")
STARTUP_TIMEOUT = 120.0


class ServerProcess:
    """One server subprocess; its stderr goes to a file so nothing can block on a full pipe."""

    def __init__(self, package: str | Path, log: Path, *args: str) -> None:
        self.log = log
        self._log_file = log.open("wb")
        path = package if isinstance(package, Path) else FIXTURES / package
        command = [sys.executable, "-m", "packager._server", str(path), "--port", "0", *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT, env=env
        )
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_listening(self) -> ServerProcess:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            found = LISTENING.search(self.output())
            if found:
                self.port = int(found.group(1))
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.02)
        raise AssertionError(f"server never started listening:\n{self.output()}")

    def wait_ready(self, name: str) -> ServerProcess:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/models/{name}", timeout=10).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.output()
            time.sleep(0.02)
        raise AssertionError(f"server never became ready:\n{self.output()}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 120.0) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log_file.close()
