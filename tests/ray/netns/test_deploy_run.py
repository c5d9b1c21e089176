"""`pkg deploy --target ray --run` for real: the written config run by Ray's own `serve run`.

Runs only inside a private network namespace (conftest.py guards it; test_ray_serve.py starts it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from netns_helpers import FIXTURES, PROXY, wait_for
from ray import serve

pytestmark = pytest.mark.timeout(150)


def test_pkg_deploy_run_serves_the_package_until_interrupted(serve_cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    command = [sys.executable, "-m", "packager", "deploy", str(FIXTURES / "echo"), "--target", "ray"]
    env = {**os.environ, "RAY_ADDRESS": serve_cluster}  # `serve run` joins the test's cluster
    log = tmp_path / "serve.log"  # a file, not a pipe: a pipe nobody reads would fill and block serve
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            [*command, "--out", str(out), "--run"], env=env, stdout=sink, stderr=subprocess.STDOUT
        ) as running,
    ):
        try:
            wait_for(f"{PROXY}/v1/models/ray-echo", seconds=90)
            answer = httpx.post(f"{PROXY}/v1/models/ray-echo:predict", json={"via": "pkg deploy"}, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["echo"] == {"via": "pkg deploy"}
            assert (out / "ray-serve.yaml").is_file()
        finally:
            running.send_signal(signal.SIGINT)  # Ctrl-C: `serve run` deletes the app and exits
            try:
                running.wait(timeout=60)
            except subprocess.TimeoutExpired:
                running.kill()
                raise
    output = log.read_text(errors="replace")
    assert running.returncode == 0, output[-3000:]  # asked to stop: pkg exits 0
    assert "ray-echo" not in serve.status().applications, output[-3000:]
