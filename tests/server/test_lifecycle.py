"""A real server when things go wrong: stuck predicts, the end of the grace period, second signals."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from harness import ServerProcess
from test_serve import metric, until

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]
Start = Callable[..., ServerProcess]


def test_a_stuck_predict_fails_readiness_then_exits_3_saying_why(start: Start) -> None:
    server = start("hung").wait_listening().wait_ready("hung")
    predict = f"{server.url}/v1/models/hung:predict"
    assert httpx.post(predict, json={"block": 600}, timeout=60).status_code == 504
    refused = httpx.post(predict, json={}, timeout=60)
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    ready = httpx.get(f"{server.url}/v1/models/hung", timeout=30)
    assert ready.status_code == 503
    assert "every predict slot" in ready.json()["error"]
    assert metric(server, "packager_predict_slots_stuck") == 1.0
    assert metric(server, "packager_model_ready") == 0.0
    assert server.wait_exit(timeout=60) == 3  # runtime.stuck_exit_s is 2
    records = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    reasons = [r["msg"] for r in records if "exit code 3" in r["msg"]]
    assert len(reasons) == 1
    assert "runtime.stuck_exit_s" in reasons[0]
    assert not any("exc" in r for r in records)
    with pytest.raises(httpx.TransportError):  # liveness fails: the process is gone
        httpx.get(server.url, timeout=10)


def test_a_request_cut_off_by_the_grace_period_gets_a_json_503(start: Start) -> None:
    server = start("graceful").wait_listening().wait_ready("graceful")
    outcome: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            httpx.post(f"{server.url}/v1/models/graceful:predict", json={"sleep": 600}, timeout=300)
        )
    )
    thread.start()
    until(lambda: metric(server, "packager_requests_in_flight") == 1)
    server.signal(signal.SIGTERM)
    assert server.wait_exit(timeout=120) == 0  # long before the 600 s predict would end
    thread.join(120)
    (answer,) = outcome
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/json"
    assert "runtime.shutdown_grace_s (1s)" in answer.json()["error"]
    logged = server.output()
    assert "Traceback" not in logged
    assert "Exception in ASGI" not in logged
    cut = [line for line in logged.splitlines() if "cut off" in line or "Cancel" in line]
    assert len(cut) == 1
    assert answer.json()["request_id"] in cut[0]


def test_a_stream_cut_off_by_the_grace_period_ends_with_an_error_event(start: Start) -> None:
    server = start("graceful_stream").wait_listening().wait_ready("graceful-stream")
    with (
        httpx.Client(timeout=120) as client,
        client.stream(
            "POST",
            f"{server.url}/v1/models/graceful-stream:predict",
            json={"n": 100000, "delay": 0.01},
            headers={"accept": "text/event-stream"},
        ) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == 'data: "tok0 "'
        server.signal(signal.SIGTERM)
        rest = list(lines)
    assert server.wait_exit(timeout=120) == 0
    assert "event: error" in rest
    data = json.loads(rest[rest.index("event: error") + 1].removeprefix("data: "))
    assert data["status"] == 503
    assert "runtime.shutdown_grace_s" in data["error"]
    assert "Traceback" not in server.output(), server.output()[-4000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_during_the_grace_period_exits_at_once(start: Start, sig: int) -> None:
    server = start("slow").wait_listening().wait_ready("slow")  # shutdown_grace_s: 30

    def call() -> None:
        with contextlib.suppress(httpx.TransportError):
            httpx.post(f"{server.url}/v1/models/slow:predict", json={"sleep": 600}, timeout=300)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    until(lambda: metric(server, "packager_requests_in_flight") == 1)
    server.signal(sig)
    until(lambda: "finishing in-flight requests" in server.output())
    server.signal(sig)
    assert server.wait_exit(timeout=20) == 128 + sig  # long before the 30 s grace period ends
    assert f"received {signal.Signals(sig).name} again" in server.output()


def test_a_client_leaving_a_joined_stream_stops_the_generator(start: Start, tmp_path: Path) -> None:
    server = start("stream").wait_listening().wait_ready("stream")
    marker = tmp_path / "marker"
    body = json.dumps({"n": 100000, "delay": 0.01, "marker": str(marker)}).encode()
    head = (
        f"POST /v1/models/stream:predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        until(lambda: marker.exists())  # the model is yielding; nothing has been answered yet
    until(lambda: "closed" in marker.read_text())
    # predict_concurrency is 1: the next request only runs if the slot was given back
    again = httpx.post(f"{server.url}/v1/models/stream:predict", json={"n": 2}, timeout=60)
    assert again.json() == "tok0 tok1 "
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'packager_requests_total{model="stream",status="499"} 1.0' in text
    assert 'packager_requests_total{model="stream",status="200"} 1.0' in text
