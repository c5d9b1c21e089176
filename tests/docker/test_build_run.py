"""`pkg build` on the local Docker engine, then the image run as a container (marker `docker`).

Needs an engine and the base image packager-base:bookworm: `scripts/docker-setup` makes both
(.ci/run calls it). Without an engine these tests fail under CI (CI=true) and skip elsewhere.
Containers publish their port on 127.0.0.1 only. One image is built for the module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import packager
from packager._build._engine import docker_client

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "docker" / "hooks"
BASE = "packager-base:bookworm"
NAME = "docker-hooks"


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_client(), *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def engine_problem() -> str | None:
    try:
        if docker("info", timeout=20).returncode != 0:
            return "the Docker engine does not answer"
    except (OSError, subprocess.TimeoutExpired, packager.PackagerError) as exc:
        return f"no docker client: {exc}"
    if docker("image", "inspect", BASE).returncode != 0:
        return f"the base image {BASE} is missing"
    return None


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    problem = engine_problem()
    if problem is not None:
        message = f"{problem}: run scripts/docker-setup"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the real Docker tests
        pytest.skip(message)
    tag = f"packager-test-{uuid.uuid4().hex[:12]}:latest"
    try:
        assert packager.build(FIXTURE, tag=tag) == tag
        yield tag
    finally:
        docker("image", "rm", "--force", tag)


@dataclass
class Container:
    id: str
    url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def container(image: str) -> Iterator[Container]:
    port = free_port()
    started = docker("run", "--detach", "--publish", f"127.0.0.1:{port}:8080", image)
    assert started.returncode == 0, started.stderr
    box = Container(started.stdout.strip(), f"http://127.0.0.1:{port}")
    try:
        yield box
    finally:
        docker("rm", "--force", box.id)


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models/{NAME}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # the port is published before the server listens
        time.sleep(0.1)
    raise AssertionError(f"{url} was not ready within {timeout} s")


def test_image_serves_the_package(container: Container) -> None:
    wait_ready(container.url)
    response = httpx.post(f"{container.url}/v1/models/{NAME}:predict", json={"x": 2}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"y": 9, "done": True}  # preprocess +1, predict *3, postprocess
    assert packager.connect(container.url, timeout=10).predict({"x": 4}) == {"y": 15, "done": True}
    uid = docker("exec", container.id, "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() not in ("", "0")
    stopped = docker("stop", "--time", "20", container.id)  # SIGTERM, then SIGKILL after 20 s
    assert stopped.returncode == 0, stopped.stderr
    state = json.loads(docker("inspect", "--format", "{{json .State}}", container.id).stdout)
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert "received SIGTERM" in docker("logs", container.id).stderr


def test_image_metadata(image: str) -> None:
    found = docker("image", "inspect", "--format", "{{json .Config}}", image)
    config = json.loads(found.stdout)
    assert config["User"] == "app"
    assert config["Labels"]["dev.packager.spec.name"] == NAME
    assert config["Labels"]["dev.packager.version"] == packager.__version__
    assert "8080/tcp" in config["ExposedPorts"]
