"""A built image's life: readiness while loading, SIGTERM with a request in flight, layer reuse.

Marker `docker`; fails under CI=true without an engine (docker_helpers.engine_or_skip). Two
fixture packages, three builds: slow_load (load() takes 2.5 s, predict sleeps on demand) and
layered (a system package, a requirement and a build command) built twice, the second time with
only model.py edited. Every image and container is removed in teardown.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker_helpers import FIXTURES, Container, built_image, container_state, docker, running, wait_ready

import packager

pytestmark = pytest.mark.timeout(600)

SLOW = "docker-slow-load"
LAYERED = "docker-layered"


@pytest.fixture(scope="module")
def slow_image() -> Iterator[str]:
    with built_image(FIXTURES / "slow_load") as tag:
        yield tag


def readiness_until_ready(url: str, timeout: float = 60) -> list[tuple[int, object]]:
    """Poll readiness from container start; the (status, JSON body) answers up to the first 200."""
    seen: list[tuple[int, object]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/v1/models/{SLOW}", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.05)  # the port is published before the server listens
            continue
        body = (
            answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
        )
        seen.append((answer.status_code, body))
        if answer.status_code == 200:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{url} was not ready within {timeout} s; saw {seen[-3:]}")


def health_status(container_id: str) -> str:
    health = container_state(container_id).get("Health")
    assert isinstance(health, dict), "the image has no HEALTHCHECK"
    return str(health["Status"])


def test_readiness_is_503_while_loading_then_200_and_health_turns_healthy(slow_image: str) -> None:
    with running(slow_image) as box:
        assert health_status(box.id) == "starting"
        seen = readiness_until_ready(box.url)
        status, body = seen[0]
        assert status == 503, seen
        assert isinstance(body, dict), seen
        assert (body["name"], body["ready"]) == (SLOW, False), body
        assert seen[-1] == (200, {"name": SLOW, "ready": True})
        # The HEALTHCHECK probes every 10 s: the first probe after load turns it healthy.
        deadline = time.monotonic() + 40
        while (health := health_status(box.id)) == "starting" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health == "healthy"


def in_flight(box: Container) -> float:
    for line in httpx.get(f"{box.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("packager_requests_in_flight{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def refused_while(box: Container, alive: threading.Thread, timeout: float = 10) -> bool:
    """Whether a new request is refused (no HTTP answer) while `alive` still runs."""
    deadline = time.monotonic() + timeout
    while alive.is_alive() and time.monotonic() < deadline:
        try:
            httpx.post(f"{box.url}/v1/models/{SLOW}:predict", json={"id": 0}, timeout=5)
        except httpx.TransportError:
            return alive.is_alive()
        time.sleep(0.05)
    return False


def test_sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0(slow_image: str) -> None:
    with running(slow_image) as box:
        wait_ready(box.url, SLOW, timeout=60)
        answers: list[httpx.Response] = []
        call = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{box.url}/v1/models/{SLOW}:predict", json={"sleep": 4, "id": 7}, timeout=60)
            )
        )
        call.start()
        deadline = time.monotonic() + 10
        while in_flight(box) < 1:
            assert time.monotonic() < deadline, "the predict never started"
            time.sleep(0.05)
        killed = docker("kill", "--signal", "TERM", box.id)
        assert killed.returncode == 0, killed.stderr
        assert refused_while(box, call), "a new request was not refused while the old one drained"
        call.join(60)
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"slept": 4, "id": 7})]
        assert docker("wait", box.id, timeout=60).stdout.strip() == "0"
        assert container_state(box.id)["ExitCode"] == 0
        assert "finishing in-flight requests" in docker("logs", box.id).stderr


_STEP = re.compile(r"^#(\d+) \[(?:[\w.-]+ )?\d+/\d+\] (.+)$")  # [deps 2/5] RUN ..., [stage-1 3/4] COPY ...
_CACHED = re.compile(r"^#(\d+) CACHED$")


def steps_and_cache(log: str) -> dict[str, bool]:
    """BuildKit's plain progress: each Dockerfile step and whether it was CACHED."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in log.splitlines():
        if (step := _STEP.match(line)) and step.group(1) not in names:
            names[step.group(1)] = " ".join(step.group(2).split())
        elif cached_line := _CACHED.match(line):
            cached.add(cached_line.group(1))
    return {name: key in cached for key, name in names.items()}


def layers(tag: str) -> list[str]:
    found = docker("image", "inspect", "--format", '{{join .RootFS.Layers " "}}', tag)
    assert found.returncode == 0, found.stderr
    return found.stdout.split()


def build_logged(package: Path, tag: str) -> str:
    log = io.StringIO()
    assert packager.build(package, tag=tag, log=log) == tag
    return log.getvalue()


def test_editing_model_py_rebuilds_only_the_package_layer(tmp_path: Path) -> None:
    package = tmp_path / "layered"
    shutil.copytree(FIXTURES / "layered", package)
    with built_image(package) as first:
        model = package / "model.py"
        version = random.randrange(2, 10**9)  # new content each run: BuildKit's cache outlives images
        model.write_text(model.read_text().replace("VERSION = 1", f"VERSION = {version}"))
        second = f"{first.rsplit(':', 1)[0]}:edited"
        try:
            log = build_logged(package, second)
            steps = steps_and_cache(log)
            assert steps.pop("COPY package/ /app/package/") is False, "the package layer was not rebuilt"
            for step in ("apt-get install", "pip install", "jq --version", "COPY runtime/"):
                assert any(step in name for name in steps), f"no step {step!r} in {list(steps)}"
            rebuilt = [name for name, cached in steps.items() if not cached]
            assert all(name.startswith(("FROM", "WORKDIR")) for name in rebuilt), f"not reused: {rebuilt}"
            old, new = layers(first), layers(second)
            assert len(old) == len(new)
            changed = [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
            # one layer differs, the package's: after it only WORKDIR's (unchanged) may follow
            assert len(changed) == 1, changed
            assert changed[0] >= len(new) - 2, (changed, len(new))
            with running(second) as box:
                wait_ready(box.url, LAYERED, timeout=60)
                answer = httpx.post(f"{box.url}/v1/models/{LAYERED}:predict", json={"text": "hi"}, timeout=10)
                assert answer.json() == {"version": version, "text": "HI"}
        finally:
            docker("image", "rm", "--force", second)
