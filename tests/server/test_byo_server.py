"""Bring your own server (spec `server:`): real inner servers behind `pkg serve`, on 127.0.0.1.

The third-party server is mockllm (an OpenAI-compatible mock LLM server from PyPI that
streams), installed once into a cached throwaway venv; a plain-script server
(tests/fixtures/byo/echo) covers the rest. Under CI=true a failed install fails the tests.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

import httpx
import pytest

from packager._errors import SpecError
from packager._spec_load import read_package

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "tests" / "fixtures" / "byo" / "echo"
MOCKLLM = "mockllm==0.0.8"
LISTENING = re.compile(r"serving \S+ on http://127\.0\.0\.1:(\d+)")
INNER_PID = re.compile(r"model server started \(pid (\d+)\)")
CHAT = {"model": "gpt-4", "messages": [{"role": "user", "content": "what colour is the sky?"}]}
RESPONSES = """responses:
  "what colour is the sky?": "The sky is blue."
defaults:
  unknown_response: "I do not know."
settings:
  lag_enabled: {lag}
  lag_factor: 1
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mockllm_python() -> Path:
    """The Python of a cached venv holding mockllm (built once, under a lock)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "packager-tests"
    home = cache / MOCKLLM.replace("==", "-")
    python = home / "bin" / "python"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "mockllm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "ok").exists():
            shutil.rmtree(home, ignore_errors=True)
            venv.create(home, with_pip=True)
            done = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", MOCKLLM],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                message = f"cannot install {MOCKLLM}: {done.stderr[-2000:]}"
                if os.environ.get("CI") == "true":
                    pytest.fail(message)
                pytest.skip(message)
            (home / "ok").write_text("ok")
    return python


def mockllm_package(tmp: Path, python: Path, port: int, lag: bool = False) -> Path:
    (tmp / "responses.yml").write_text(RESPONSES.format(lag="true" if lag else "false"))
    command = [str(python), "-m", "uvicorn", "mockllm.server:app", "--host", "127.0.0.1", "--port", str(port)]
    (tmp / "package.yaml").write_text(
        json.dumps(
            {
                "spec_version": 1,
                "name": "mock",
                "runtime": {"predict_concurrency": 8, "shutdown_grace_s": 5},
                "server": {
                    "command": command,
                    "port": port,
                    "predict_path": "/v1/chat/completions",
                    "readiness_path": "/models",
                    "routes": ["/v1/chat/completions", "/models"],
                    "startup_timeout_s": 120,
                    "environment": {"MOCKLLM_RESPONSES_FILE": "responses.yml"},
                },
            }
        )
    )
    return tmp


def echo_package(tmp: Path, port: int) -> Path:
    shutil.copy(ECHO / "server.py", tmp / "server.py")
    text = (ECHO / "package.yaml").read_text().replace("8011", str(port))
    (tmp / "package.yaml").write_text(text + "runtime: {shutdown_grace_s: 5}\n")
    return tmp


class Front:
    """`pkg serve PATH --port 0` in a subprocess; its log goes to a file."""

    def __init__(self, package: Path, log: Path, **env: str) -> None:
        self.log = log
        pkg = Path(sys.executable).parent / "pkg"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(pkg), "serve", str(package), "--port", "0"],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=ROOT,
            )  # fmt: skip
        self.url = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.output())
            if found:
                return found
            assert self.process.poll() is None, self.output()
            time.sleep(0.02)
        raise AssertionError(f"never saw {pattern.pattern}:\n{self.output()}")

    def listening(self) -> Front:
        self.url = f"http://127.0.0.1:{self.wait_for(LISTENING).group(1)}"
        return self

    def ready(self, name: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/v1/models/{name}").status_code != 200:
            assert time.monotonic() < deadline, self.output()
            assert self.process.poll() is None, self.output()
            time.sleep(0.05)

    def inner_pid(self) -> int:
        return int(self.wait_for(INNER_PID).group(1))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def front(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[Front] = []

    def start(package: Path, **env: str) -> Front:
        started.append(Front(package, tmp_path / f"front{len(started)}.log", **env).listening())
        return started[-1]

    yield start
    for one in started:
        one.stop()


def _answer(body: dict) -> tuple:  # type: ignore[type-arg]
    return body["model"], body["choices"], body["usage"]


def test_mockllm_predict_routes_and_stream_match_the_inner_server(mockllm_python, front, tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
    served = front(mockllm_package(tmp_path, mockllm_python, port))
    assert httpx.get(f"{served.url}/v1/models/mock").status_code == 503  # mockllm still importing
    served.ready("mock")
    through = httpx.post(f"{served.url}/v1/models/mock:predict", json=CHAT, headers={"x-request-id": "r-1"})
    direct = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT)
    assert through.status_code == direct.status_code == 200
    assert _answer(through.json()) == _answer(direct.json())
    assert through.headers["x-request-id"] == "r-1"
    route = httpx.get(f"{served.url}/models")
    assert route.json() == httpx.get(f"http://127.0.0.1:{port}/models").json()
    stream = {**CHAT, "stream": True}
    via_route = httpx.post(f"{served.url}/v1/chat/completions", json=stream)
    via_predict = httpx.post(
        f"{served.url}/v1/models/mock:predict", json=stream, headers={"accept": "text/event-stream"}
    )
    inner = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=stream)
    assert _deltas(via_route.text) == _deltas(via_predict.text) == _deltas(inner.text) != ""
    assert via_predict.headers["content-type"].startswith("text/event-stream")
    bad_input = {"model": "gpt-4", "messages": "x"}  # mockllm fails on it with a 500
    assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=bad_input).status_code == 500
    bad = httpx.post(f"{served.url}/v1/models/mock:predict", json=bad_input)
    assert bad.status_code == 502
    assert set(bad.json()) == {"error", "request_id"}
    assert bad.json()["error"].startswith("the model server failed with 500")
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'packager_requests_total{model="mock",status="200"} 4.0' in metrics
    assert 'packager_requests_total{model="mock",status="502"} 1.0' in metrics


def _deltas(sse: str) -> str:
    events = [line[len("data: ") :] for line in sse.splitlines() if line.startswith("data: ")]
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def test_mockllm_killed_mid_request_gives_503_json_and_the_front_exits_4(mockllm_python, front, tmp_path):  # type: ignore[no-untyped-def]
    served = front(mockllm_package(tmp_path, mockllm_python, free_port(), lag=True))
    served.ready("mock")
    pid = served.inner_pid()
    with httpx.Client(timeout=60) as client:
        slow = {
            **CHAT,
            "messages": [{"role": "user", "content": "anything"}],
        }  # "I do not know.": ~1.4 s of lag

        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        answer = client.post(f"{served.url}/v1/models/mock:predict", json=slow)
    assert answer.status_code == 503, answer.text
    assert "killed by signal 9" in answer.json()["error"]
    assert "request_id" in answer.json()
    assert served.process.wait(timeout=60) == 4
    assert "shutting down with exit code 4" in served.output()


def test_streaming_passes_through_without_buffering(front, tmp_path):  # type: ignore[no-untyped-def]
    served = front(echo_package(tmp_path, free_port()), SLOW_S="0.4")
    served.ready("echo")
    started = time.monotonic()
    arrivals = []
    with httpx.stream("POST", f"{served.url}/stream", json={"text": "a b c d"}, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic() - started, json.loads(line[6:])["word"]))
    assert [word for _, word in arrivals] == ["a", "b", "c", "d"]
    assert arrivals[0][0] < arrivals[-1][0] - 0.8  # the first event came long before the last was written


def test_echo_errors_request_id_liveness_and_sigterm(front, tmp_path):  # type: ignore[no-untyped-def]
    served = front(echo_package(tmp_path, free_port()))
    served.ready("echo")
    assert httpx.post(f"{served.url}/v1/models/echo:predict", json={"text": "hi"}).json() == {"text": "HI"}
    refused = httpx.post(f"{served.url}/v1/models/echo:predict", json={"nope": 1})
    assert refused.status_code == 422
    assert "field 'text' is required" in refused.json()["error"]
    info = httpx.get(f"{served.url}/info?q=1", headers={"x-request-id": "abc-9"})
    assert info.json()["request_id"] == "abc-9"
    assert info.json()["path"] == "/info?q=1"
    assert info.headers["x-request-id"] == "abc-9"
    assert httpx.get(f"{served.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{served.url}/not-exposed").status_code == 404
    pid = served.inner_pid()
    with httpx.Client(timeout=30) as client:
        threading.Timer(0.5, served.process.send_signal, (signal.SIGTERM,)).start()
        slow = client.post(f"{served.url}/v1/models/echo:predict", json={"text": "late", "sleep": 1.5})
    assert slow.json() == {"text": "LATE"}  # in flight at SIGTERM: finished before the inner server stopped
    assert served.process.wait(timeout=30) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_readiness_and_liveness_turn_503_when_the_inner_server_dies(tmp_path):  # type: ignore[no-untyped-def]
    from packager._pipeline import Pipeline
    from packager._server._app import App

    async def main() -> tuple[int, int, int, int]:
        app = App(Pipeline(read_package(echo_package(tmp_path, free_port()))))
        await app.startup()
        await app.wait_loaded()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as client:
            before = (await client.get("/v1/models/echo")).status_code
            process = app.pipeline.model.process
            os.kill(process.proc.pid, signal.SIGKILL)
            await process.exited_soon(10)
            ready = await client.get("/v1/models/echo")
            live = (await client.get("/v2/health/live")).status_code
            predict = (await client.post("/v1/models/echo:predict", json={"text": "x"})).status_code
        await app.shutdown()
        assert "killed by signal 9" in ready.json()["error"]
        return before, ready.status_code, live, predict

    assert asyncio.run(main()) == (200, 503, 503, 503)


def test_spec_server_rules(tmp_path: Path) -> None:
    package = echo_package(tmp_path, 8123)
    spec = read_package(package).spec
    assert spec.server is not None
    assert spec.server.command == ["python", "server.py", "8123"]
    assert spec.server.exposes("/info")
    assert not spec.server.exposes("/informed")
    (package / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    text = (package / "package.yaml").read_text()
    (package / "package.yaml").write_text(text + "model: {file: model.py}\n")
    with pytest.raises(SpecError) as caught:
        read_package(package)
    message = str(caught.value)
    assert "remove the model section" in message
    assert "model.py would never run" in message
    (package / "model.py").unlink()
    bad = text.replace("routes: [/stream, /info]", "routes: [/v1/models/x, 'nope']")
    (package / "package.yaml").write_text(bad)
    with pytest.raises(SpecError, match="shadow packager's own routes"):
        read_package(package)
