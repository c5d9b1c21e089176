"""Ray Serve for real: packages deployed on a local cluster, answered over HTTP through Ray's proxy.

Runs only inside a private network namespace (conftest.py guards it; test_ray_serve.py starts it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from netns_helpers import FIXTURES, PROXY, wait_for
from ray import serve
from ray.serve.schema import ServeDeploySchema

from packager._deploy._ray import RayOptions, write_ray
from packager._spec_load import read_package
from packager.integrations.ray import deployment

pytestmark = pytest.mark.timeout(150)


def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=30, **kwargs)


def replica_pids(url: str, count: int) -> list[int]:
    return [post(url, {"i": i}).raise_for_status().json()["pid"] for i in range(count)]


def test_two_replicas_keep_answering_when_one_is_killed(serve_cluster: str) -> None:
    app = deployment(FIXTURES / "echo", num_replicas=2, health_check_period_s=1)
    serve.run(app, name="echo", route_prefix="/echo")
    url = f"{PROXY}/echo/v1/models/ray-echo:predict"
    try:
        answer = post(url, {"hello": "ray"})
        assert answer.status_code == 200
        assert answer.json()["echo"] == {"hello": "ray"}
        assert answer.headers.get_list("x-request-id") == [answer.headers["x-request-id"]]  # once
        before = set(replica_pids(url, 30))
        assert len(before) == 2, f"two replicas should share the requests, saw pids {before}"

        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        answered, failed, seen = 0, [], set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (len(seen - before) == 1 and answered >= 20):
            try:
                response = post(url, {"after": "kill"})
                if response.status_code == 200:
                    answered += 1
                    seen.add(response.json()["pid"])
                else:
                    failed.append(response.status_code)
            except httpx.HTTPError as exc:
                failed.append(repr(exc))
            time.sleep(0.05)
        assert victim not in seen
        assert len(seen - before) == 1, f"Ray did not replace the killed replica in time: {seen}, {failed}"
        after = set(replica_pids(url, 30))
        assert victim not in after
        assert len(after) == 2
        status = serve.status().applications["echo"].deployments["ray-echo"]
        assert status.replica_states == {"RUNNING": 2}
        print(f"after SIGKILL: {answered} answered, {len(failed)} failed ({failed[:5]})")
    finally:
        serve.delete("echo")


def test_streams_through_ray_as_server_sent_events(serve_cluster: str) -> None:
    serve.run(deployment(FIXTURES / "stream"), name="stream", route_prefix="/stream")
    url = f"{PROXY}/stream/v1/models/ray-stream:predict"
    try:
        joined = post(url, {"n": 3})
        assert joined.status_code == 200
        assert joined.json() == "tok0 tok1 tok2 "
        arrivals: list[tuple[float, str]] = []
        started = time.monotonic()
        with httpx.stream(
            "POST", url, json={"n": 4, "pause": 0.3}, headers={"accept": "text/event-stream"}, timeout=30
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith(("data:", "event:")):
                    arrivals.append((time.monotonic() - started, line))
        data = [line for _, line in arrivals if line.startswith("data:")]
        assert data[:4] == [f'data: "tok{i} "' for i in range(4)]
        assert [line for _, line in arrivals[-2:]] == ["event: done", "data: {}"]
        first, last = arrivals[0][0], arrivals[-1][0]
        assert last - first >= 0.6, f"chunks came together, not as they were made: {arrivals}"
    finally:
        serve.delete("stream")


async def _concurrent(url: str, values: list[int]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(*(client.post(url, json=v) for v in values))
    return [r.raise_for_status().json() for r in responses]


@pytest.mark.parametrize("batching", ["packager", "ray"])
def test_predict_batch_batches_with_either_batcher(serve_cluster: str, batching: str) -> None:
    serve.run(deployment(FIXTURES / "batch", batching=batching), name="batch", route_prefix="/batch")
    url = f"{PROXY}/batch/v1/models/ray-batch:predict"
    try:
        outputs = asyncio.run(_concurrent(url, list(range(12))))
        assert [o["value"] for o in outputs] == [v * 10 for v in range(12)]
        assert max(o["batch_size"] for o in outputs) > 1, outputs
        assert max(o["batch_size"] for o in outputs) <= 4  # runtime.batching.max_batch_size
    finally:
        serve.delete("batch")


def test_failing_is_healthy_gets_the_replica_replaced(serve_cluster: str) -> None:
    app = deployment(FIXTURES / "health", health_check_period_s=1)
    serve.run(app, name="health", route_prefix="/health")
    url = f"{PROXY}/health/v1/models/ray-health:predict"
    try:
        sick = post(url, {"sicken": True}).json()["pid"]
        deadline = time.monotonic() + 60
        pid = sick
        while pid == sick and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                response = post(url, {})
                pid = response.json()["pid"] if response.status_code == 200 else sick
            except httpx.HTTPError:
                pass
        assert pid != sick, "Ray kept the replica whose is_healthy() returned False"
    finally:
        serve.delete("health")


def test_written_serve_config_validates_and_deploys(serve_cluster: str, tmp_path: Path) -> None:
    package = read_package(FIXTURES / "echo")
    (written,) = write_ray(package, RayOptions(num_replicas=1, route_prefix="/config"), tmp_path)
    config = yaml.safe_load(written.read_text())
    ServeDeploySchema.model_validate(config)  # what `serve deploy` / `serve run` check first
    serve_cli = str(Path(sys.executable).with_name("serve"))
    result = subprocess.run(
        [serve_cli, "run", "--non-blocking", "--address", serve_cluster, str(written)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        wait_for(f"{PROXY}/config/v1/models/ray-echo", seconds=60)
        assert post(f"{PROXY}/config/v1/models/ray-echo:predict", {"x": 1}).json()["echo"] == {"x": 1}
        deployed = serve.status().applications["ray-echo"].deployments["ray-echo"]
        assert deployed.replica_states == {"RUNNING": 1}
    finally:
        serve.delete("ray-echo")
