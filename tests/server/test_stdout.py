"""The server's stdout stays empty: what model code prints goes to stderr, with the logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]
CHATTY = ROOT / "tests" / "fixtures" / "packages" / "chatty"


def test_model_prints_go_to_stderr_and_stdout_stays_empty(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "packager._server", str(CHATTY), "--port", "0"],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 60
            while not (found := re.search(rb"http://127\.0\.0\.1:(\d+)", err.read_bytes())):
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.02)
            url = f"http://127.0.0.1:{int(found.group(1))}/v1/models/chatty"
            while httpx.get(url, timeout=10).status_code != 200:
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.02)
            answer = httpx.post(url + ":predict", json={"text": "hi"}, timeout=10)
            assert answer.json() == {"text": "hi"}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert out.read_bytes() == b""
    logged = err.read_bytes()
    for said in (b"chatty: importing", b"chatty: fd 1 while loading", b"chatty: fd 1 while predicting"):
        assert said in logged
