"""`python -m packager._server` as a real process: shutdown, load failure, streams, logs, start-up errors."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from harness import ServerProcess

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]
Start = Callable[..., ServerProcess]


def metric(server: ServerProcess, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_in_flight_requests_finish_then_exits_0(start: Start, sig: int) -> None:
    server = start("slow").wait_listening().wait_ready("slow")
    url = f"{server.url}/v1/models/slow:predict"

    def call(i: int) -> httpx.Response:
        return httpx.post(url, json={"sleep": 1.5, "id": i}, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(call, i) for i in range(4)]
        until(lambda: metric(server, "packager_requests_in_flight") == 4)
        server.signal(sig)
        answers = [c.result() for c in calls]
    assert [(a.status_code, a.json()["id"]) for a in answers] == [(200, i) for i in range(4)]
    assert server.wait_exit() == 0
    assert "finishing in-flight requests" in server.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url, timeout=10)


def test_shutdown_grace_is_bounded(start: Start) -> None:
    server = start("graceful").wait_listening().wait_ready("graceful")
    url = f"{server.url}/v1/models/graceful:predict"
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(httpx.post(url, json={"sleep": 600}, timeout=300).status_code)
        except httpx.TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    until(lambda: metric(server, "packager_requests_in_flight") == 1)
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=120) == 0  # long before the 600 s predict would end
    thread.join(120)
    assert outcome
    assert outcome[0] != 200


def test_failed_load_is_logged_never_ready_and_exits_nonzero(start: Start) -> None:
    server = start("failing_load").wait_listening()
    seen: set[int] = set()
    while server.process.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            seen.add(httpx.get(f"{server.url}/v1/models/failing-load", timeout=10).status_code)
        time.sleep(0.01)
    assert server.wait_exit() == 1
    assert 200 not in seen
    logged = server.output()
    assert "failed to load" in logged
    assert "weights are corrupt" in logged
    assert "Traceback" in logged


def test_client_disconnect_stops_the_models_generator(start: Start, tmp_path: Path) -> None:
    server = start("stream").wait_listening().wait_ready("stream")
    marker = tmp_path / "marker"
    body = {"n": 100000, "delay": 0.01, "marker": str(marker)}
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST",
            f"{server.url}/v1/models/stream:predict",
            json=body,
            headers={"accept": "text/event-stream"},
        ) as response,
    ):
        lines = response.iter_lines()
        got = [line for line, _ in zip(lines, range(4)) if line.startswith("data:")]
    assert got == ['data: "tok0 "', 'data: "tok1 "']
    until(lambda: marker.exists() and "closed" in marker.read_text())
    # predict_concurrency is 1: the next stream only runs if the slot was given back
    again = httpx.post(f"{server.url}/v1/models/stream:predict", json={"n": 2}, timeout=60)
    assert again.json() == "tok0 tok1 "
    assert 'status="499"} 1.0' in httpx.get(f"{server.url}/metrics", timeout=30).text


def test_logs_are_json_lines_with_no_line_per_request(start: Start) -> None:
    server = start("echo").wait_listening().wait_ready("echo")
    before = server.output()
    for i in range(20):
        httpx.post(f"{server.url}/v1/models/echo:predict", json=i, timeout=30)
    failed = httpx.post(f"{server.url}/v1/models/echo:predict", content=b"{", timeout=30)
    assert failed.status_code == 400
    time.sleep(0.2)  # give the log a moment; the assertion is on content, not timing
    assert server.output() == before
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    records = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any(r["msg"].startswith("model echo loaded") for r in records)


def test_unservable_packages_fail_before_binding(start: Start, tmp_path: Path) -> None:
    missing = start(tmp_path / "nowhere")
    assert missing.wait_exit() == 1
    assert "package.yaml" in missing.output()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "package.yaml").write_text("spec_version: 1\nname: broken\n")
    (broken / "model.py").write_text("class Other:\n    pass\n")
    no_class = start(broken)
    assert no_class.wait_exit() == 1
    assert "defines no class 'Model'" in no_class.output()
    assert "serving" not in no_class.output()


def test_a_port_in_use_is_a_clear_error(start: Start) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = start("echo", "--port", str(taken.getsockname()[1]))  # the later --port wins
        assert server.wait_exit() == 1
    assert "cannot listen on 127.0.0.1" in server.output()
