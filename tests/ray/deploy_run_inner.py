"""Run inside a private network namespace by test_ray_serve.py (not collected by pytest):
`pkg deploy --target ray --run` on a fixture, one predict through Ray's proxy, then SIGINT.

Prints one JSON line: what the outer test checks. Nothing here imports ray; `serve run` (started
by pkg) starts its own local Ray, in this namespace.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ray" / "echo"
PROXY = "http://127.0.0.1:8000"


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def main(out: Path) -> dict[str, object]:
    command = [sys.executable, "-m", "packager", "deploy", str(FIXTURE), "--target", "ray"]
    report: dict[str, object] = {}
    with (
        (out / "serve.log").open("wb") as log,
        subprocess.Popen(
            [*command, "--out", str(out / "deploy"), "--run"], stdout=log, stderr=subprocess.STDOUT
        ) as running,
    ):
        report["ready"] = wait_ready(f"{PROXY}/v1/models/ray-echo", running, 120)
        if report["ready"]:
            answer = httpx.post(f"{PROXY}/v1/models/ray-echo:predict", json={"via": "pkg deploy"}, timeout=30)
            report["predict"] = [answer.status_code, answer.json()]
        running.send_signal(signal.SIGINT)  # Ctrl-C: `serve run` shuts Serve down and exits
        started = time.monotonic()
        try:
            report["exit_code"] = running.wait(timeout=90)
        except subprocess.TimeoutExpired:
            running.kill()
            report["exit_code"] = "hung"
        report["stop_seconds"] = round(time.monotonic() - started, 1)
    try:
        httpx.get(f"{PROXY}/v1/models/ray-echo", timeout=5)
        report["still_serving"] = True
    except httpx.HTTPError:
        report["still_serving"] = False
    report["config_written"] = (out / "deploy" / "ray-serve.yaml").is_file()
    report["log_tail"] = (out / "serve.log").read_text(errors="replace")[-2000:]
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
