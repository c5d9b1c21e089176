"""Helpers shared by the Docker tests (marker `docker`): `from docker_helpers import ...`.

Needs an engine and the base image packager-base:bookworm: `scripts/docker-setup` makes both
(.ci/run calls it). Without them `engine_or_skip()` fails the test under CI (CI=true) and skips
it elsewhere. Containers publish their port on 127.0.0.1 only; everything a test builds or
starts is removed in teardown (`built_image`, `running`).

Stable names, other test modules import them: `docker`, `engine_problem`, `engine_or_skip`,
`free_port`, `wait_ready`, `Container`, `built_image`, `running`, `FIXTURES`, `BASE`.
"""

from __future__ import annotations

import contextlib
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker"
BASE = "packager-base:bookworm"


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI with `args`; never raises on a non-zero exit (check `.returncode`)."""
    return subprocess.run(
        [docker_client(), *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def engine_problem() -> str | None:
    """Why the Docker tests cannot run here, or None when the engine and base image are there."""
    try:
        if docker("info", timeout=20).returncode != 0:
            return "the Docker engine does not answer"
    except (OSError, subprocess.TimeoutExpired, packager.PackagerError) as exc:
        return f"no docker client: {exc}"
    if docker("image", "inspect", BASE).returncode != 0:
        return f"the base image {BASE} is missing"
    return None


def engine_or_skip() -> None:
    """Skip the test when there is no engine, but fail it under CI=true (CI must run them)."""
    problem = engine_problem()
    if problem is None:
        return
    message = f"{problem}: run scripts/docker-setup"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def unique_tag(prefix: str = "packager-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}:latest"


@contextlib.contextmanager
def built_image(package: Path, tag: str | None = None) -> Iterator[str]:
    """`packager.build(package)` into a fresh tag; the image is removed on exit."""
    engine_or_skip()
    tag = tag or unique_tag()
    try:
        assert packager.build(package, tag=tag) == tag
        yield tag
    finally:
        docker("image", "rm", "--force", tag)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Container:
    id: str
    url: str


@contextlib.contextmanager
def running(image: str, *run_args: str) -> Iterator[Container]:
    """`docker run --detach` the image with its port on 127.0.0.1; removed on exit."""
    port = free_port()
    started = docker("run", "--detach", "--publish", f"127.0.0.1:{port}:8080", *run_args, image)
    assert started.returncode == 0, started.stderr
    box = Container(started.stdout.strip(), f"http://127.0.0.1:{port}")
    try:
        yield box
    finally:
        docker("rm", "--force", box.id)


def wait_ready(url: str, name: str, timeout: float = 30) -> None:
    """Poll `GET {url}/v1/models/{name}` until it answers 200; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models/{name}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # the port is published before the server listens
        time.sleep(0.1)
    raise AssertionError(f"{url} was not ready within {timeout} s")


def container_state(container_id: str) -> dict[str, object]:
    """`docker inspect`'s .State of a container (Status, ExitCode, Health, ...)."""
    found = docker("inspect", "--format", "{{json .State}}", container_id)
    assert found.returncode == 0, found.stderr
    state = json.loads(found.stdout)
    assert isinstance(state, dict)
    return state
