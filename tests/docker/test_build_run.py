"""`pkg build` on the local Docker engine, then the image run as a container (marker `docker`).

Needs an engine and the base image packager-base:bookworm: `scripts/docker-setup` makes both
(.ci/run calls it). Without an engine these tests fail under CI (CI=true) and skip elsewhere.
Containers publish their port on 127.0.0.1 only. One image is built for the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from docker_helpers import FIXTURES, Container, built_image, container_state, docker, running, wait_ready

import packager

FIXTURE = FIXTURES / "hooks"
NAME = "docker-hooks"


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    with built_image(FIXTURE) as tag:
        yield tag


@pytest.fixture
def container(image: str) -> Iterator[Container]:
    with running(image) as box:
        yield box


def test_image_serves_the_package(container: Container) -> None:
    wait_ready(container.url, NAME)
    response = httpx.post(f"{container.url}/v1/models/{NAME}:predict", json={"x": 2}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"y": 9, "done": True}  # preprocess +1, predict *3, postprocess
    assert packager.connect(container.url, timeout=10).predict({"x": 4}) == {"y": 15, "done": True}
    uid = docker("exec", container.id, "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() not in ("", "0")
    stopped = docker("stop", "--time", "20", container.id)  # SIGTERM, then SIGKILL after 20 s
    assert stopped.returncode == 0, stopped.stderr
    state = container_state(container.id)
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert "received SIGTERM" in docker("logs", container.id).stderr


def test_image_metadata(image: str) -> None:
    found = docker("image", "inspect", "--format", "{{json .Config}}", image)
    config = json.loads(found.stdout)
    assert config["User"] == "app"
    assert config["Labels"]["dev.packager.spec.name"] == NAME
    assert config["Labels"]["dev.packager.version"] == packager.__version__
    assert "8080/tcp" in config["ExposedPorts"]
