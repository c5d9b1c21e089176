"""`pkg run` and `pkg push` on the local Docker engine (marker `docker`).

The fixture package tests/fixtures/docker/secret declares a secret `token` and reports its
length and sha256, never the value. Pushes go to Debian's `docker-registry` on 127.0.0.1 (a
localhost registry needs no TLS), one open and one behind htpasswd; `scripts/docker-setup`
installs it. Without an engine (or the registry) these tests fail under CI=true, skip elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from docker_helpers import FIXTURES, built_image, docker, engine_or_skip, free_port, unique_tag

import packager

pytestmark = pytest.mark.docker

PACKAGE = FIXTURES / "secret"
NAME = "docker-secret"
SECRET = "s3cr3t-Value-for-the-run-test"  # never in inspect, logs or labels


def pkg(*args: str, secret: str | None = SECRET, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKAGER_SECRET")}
    if secret is not None:
        env["PACKAGER_SECRET_TOKEN"] = secret
    return subprocess.run(
        [sys.executable, "-m", "packager", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    with built_image(PACKAGE, unique_tag("packager-run-test")) as tag:
        yield tag


def containers_of(image: str) -> list[str]:
    listed = docker("ps", "--all", "--quiet", "--filter", f"ancestor={image}")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def test_run_detached_serves_the_package_with_its_secret(image: str) -> None:
    tag = unique_tag("packager-run-path")  # PATH: built first (from the cache of `image`)
    started = pkg("run", str(PACKAGE), "--tag", tag, "--port", "0", "--detach")
    assert started.returncode == 0, started.stderr
    url, container = started.stdout.split()
    try:
        assert url.startswith("http://127.0.0.1:")
        answer = packager.connect(url, timeout=10).predict({"echo": 7})
        assert answer == {
            "length": len(SECRET),
            "sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            "echo": 7,
        }
        inspected = docker("inspect", container)
        assert inspected.returncode == 0, inspected.stderr
        assert SECRET not in inspected.stdout
        facts = json.loads(inspected.stdout)[0]
        assert [b["HostIp"] for b in facts["HostConfig"]["PortBindings"]["8080/tcp"]] == ["127.0.0.1"]
        (mount,) = [m for m in facts["Mounts"] if m["Destination"] == "/secrets"]
        assert mount["RW"] is False
        assert not Path(mount["Source"]).exists()  # removed from the host once the model was ready
        logs = docker("logs", container)
        assert SECRET not in logs.stdout + logs.stderr + started.stderr
    finally:
        docker("rm", "--force", container)
        docker("image", "rm", "--force", tag)


def test_run_in_the_foreground_stops_and_removes_the_container_on_sigterm(image: str) -> None:
    env = {**os.environ, "PACKAGER_SECRET_TOKEN": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "packager", "run", image, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        assert httpx.post(f"{url}/v1/models/{NAME}:predict", json={}, timeout=10).json()["length"] == len(
            SECRET
        )
        assert len(containers_of(image)) == 1
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "received SIGTERM" in err  # the server in the container shut down gracefully
        assert containers_of(image) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_shows_the_log_of_a_container_that_exits_before_ready(image: str) -> None:
    failed = pkg("run", image, "--port", "0", "--detach", "-e", "PACKAGER_MAX_BODY_BYTES=bogus")
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the container exited with code 1 before it was ready; its log ends:")
    assert "PACKAGER_MAX_BODY_BYTES" in last
    assert containers_of(image) == []


def test_run_without_a_declared_secret_fails_before_starting(image: str) -> None:
    failed = pkg("run", image, "--detach", secret=None)
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        "error: missing secret: 'token': set $PACKAGER_SECRET_TOKEN or write the file /secrets/token"
    )
    assert containers_of(image) == []


@dataclass
class Registry:
    address: str
    process: subprocess.Popen[bytes]


def start_registry(work: Path, auth: str | None = None) -> Registry:
    binary = shutil.which("docker-registry")
    if binary is None:
        message = "docker-registry is missing: run scripts/docker-setup"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    address = f"127.0.0.1:{free_port()}"
    config = [
        "version: 0.1",
        f"storage: {{filesystem: {{rootdirectory: {work / 'data'}}}}}",
        f"http: {{addr: {address}}}",
    ]
    if auth is not None:
        config.append(f"auth: {{htpasswd: {{realm: test, path: {auth}}}}}")
    (work / "config.yml").write_text("\n".join(config) + "\n")
    with (work / "registry.log").open("wb") as log:  # the registry keeps its own descriptor
        process = subprocess.Popen([binary, "serve", str(work / "config.yml")], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{address}/v2/", timeout=1).status_code in (200, 401):
                return Registry(address, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(
        f"docker-registry did not answer on {address}: {(work / 'registry.log').read_text()}"
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    engine_or_skip()
    started = start_registry(tmp_path)
    yield started
    started.process.terminate()
    started.process.wait(timeout=10)


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    engine_or_skip()
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        message = "htpasswd (apache2-utils) is missing: run scripts/docker-setup"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    made = subprocess.run(
        [htpasswd, "-Bbn", "alice", "a-password"], capture_output=True, text=True, check=True
    )
    (tmp_path / "htpasswd").write_text(made.stdout)
    started = start_registry(tmp_path, auth=str(tmp_path / "htpasswd"))
    yield started
    started.process.terminate()
    started.process.wait(timeout=10)


def test_push_to_a_registry_serves_the_manifest(image: str, registry: Registry) -> None:
    target = f"{registry.address}/packager-test/secret:v1"
    try:
        pushed = pkg("push", image, target)
        assert pushed.returncode == 0, pushed.stderr
        reference, _, digest = pushed.stdout.strip().partition("@")
        assert reference == target
        assert "Pushed" in pushed.stderr
        manifest = httpx.get(
            f"http://{registry.address}/v2/packager-test/secret/manifests/v1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        assert manifest.status_code == 200, manifest.text
        assert manifest.headers["Docker-Content-Digest"] == digest
    finally:
        docker("image", "rm", target)


def test_push_without_login_says_to_log_in(image: str, auth_registry: Registry) -> None:
    target = f"{auth_registry.address}/packager-test/secret:v1"
    try:
        refused = pkg("push", image, target)
        assert refused.returncode == 1
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: the registry {auth_registry.address} refused {target}")
        assert f"run `docker login {auth_registry.address}` first" in last
        assert docker("image", "inspect", target).returncode != 0  # the tag it added is taken back
    finally:
        docker("image", "rm", target)


def test_push_to_an_unreachable_registry_and_of_an_unknown_image(image: str) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    try:
        failed = pkg("push", image, f"{address}/m:v1")
        assert failed.returncode == 1
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: cannot reach the registry {address}")
        assert docker("image", "inspect", f"{address}/m:v1").returncode != 0
    finally:
        docker("image", "rm", f"{address}/m:v1")
    unknown = pkg("push", "packager-no-such-image:1", f"{address}/m:v1")
    assert unknown.returncode == 1
    assert "no image 'packager-no-such-image:1' on the local Docker engine" in unknown.stderr
