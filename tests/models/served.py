"""A catalogue entry behind a real server subprocess on a free loopback port (bound as port 0).

    with serve(PACKAGE, tmp / "server.log", env={"PACKAGER_WEIGHTS_DIR": ...}) as url:
        httpx.post(f"{url}/v1/models/NAME:predict", json=...)

The server's output goes to the log file (nothing blocks on a full pipe); the URL is yielded
once the model answers its readiness route, and the server is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Optional

import httpx

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"serving (\S+) on (http://127\.0\.0\.1:\d+)")
STARTUP_TIMEOUT = 180.0


@contextlib.contextmanager
def serve(
    package: Path, log: Path, env: Optional[Mapping[str, str]] = None, via_cli: bool = False
) -> Iterator[str]:
    """`python -m packager._server PACKAGE` (`pkg serve PACKAGE` with `via_cli`); yields its URL.

    `env` is added to this process's environment.
    """
    if via_cli:
        command = [str(Path(sys.executable).parent / "pkg"), "serve", str(package), "--port", "0"]
    else:
        command = [sys.executable, "-m", "packager._server", str(package), "--port", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            yield _wait_ready(proc, log)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            name, url = found.groups()
            if httpx.get(f"{url}/v1/models/{name}", timeout=10).status_code == 200:
                return url
        time.sleep(0.05)
    raise AssertionError(f"the server never became ready:\n{log.read_text(errors='replace')}")
