"""`pkg run` / `packager.run()`: an image packager built, started as a container and waited for.

The port is published on 127.0.0.1 unless `host` says otherwise; GPUs are requested as
_gpu.plan_gpus decides; secrets go through a private directory mounted at /secrets (_stage),
removed once the model is ready (it has read them then) or the start failed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import DeviceRequest, Mount

from packager._container._engine import ImageFacts, engine, image_facts
from packager._container._gpu import (
    GpuRequest,
    check_driver,
    engine_gpu_driver,
    host_driver,
    parse_gpus,
    plan_gpus,
)
from packager._container._ready import ContainerExited, http_probe, wait_ready
from packager._container._stage import MOUNT, remove_staged, stage_secrets
from packager._errors import PackagerError
from packager._secrets import resolve_secrets

CONTAINER_PORT = 8080
TAIL = 20
STOP_MARGIN = 5  # seconds past the spec's shutdown_grace_s before SIGKILL


@dataclass(frozen=True)
class RunOptions:
    """How to start the container; see `packager.run` for each field."""

    port: int = 8080
    host: str = "127.0.0.1"
    gpus: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()
    timeout: float = 300


class Running:
    """A container serving a package: `url`, `id`, `stop()`; a context manager that stops it."""

    def __init__(self, container: Container, url: str, facts: ImageFacts, stream: Any) -> None:
        self.container = container
        self.grace = int(facts.grace) + STOP_MARGIN
        self.url = url
        self.id: str = container.id or ""
        self.name = facts.name
        self._stream = stream

    def __repr__(self) -> str:
        return f"Running({self.url!r}, id={self.id[:12]!r})"

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop_following(self) -> None:
        """Stop streaming the container's log (it keeps running)."""
        _close(self._stream)

    def wait(self) -> int:
        """Block until the container exits (logs keep streaming); its exit code."""
        return int(self.container.wait().get("StatusCode", 1))

    def stop(self, timeout: int | None = None) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` s (default: the spec's shutdown_grace_s + 5); remove
        the container; return its exit code (None when it was gone already)."""
        timeout = self.grace if timeout is None else timeout
        try:
            self.container.stop(timeout=timeout)
            code = int(self.container.wait(timeout=timeout + 10).get("StatusCode", 1))
            self.container.remove(force=True)
        except docker.errors.NotFound:
            return None
        finally:
            _close(self._stream)
        return code


def run_image(reference: str, options: RunOptions, log: IO[str] | None = None) -> Running:
    """Start the packager image `reference` and wait until it is ready."""
    out = log if log is not None else sys.stderr
    client = engine()
    facts = image_facts(client, reference)
    gpu = plan_gpus(
        parse_gpus(options.gpus), facts.accelerator, facts.gpu_count, engine_gpu_driver(client.info())
    )
    if gpu is not None:
        check_driver(host_driver(), facts.cuda_driver)
    optional = set(facts.build_only) - set(options.secrets)
    values = resolve_secrets(sorted({*facts.secrets, *options.secrets}), optional=optional)  # as serve
    staged = stage_secrets(values, facts.owner) if len(values) else None
    try:
        container = _create(client, facts, options, gpu, staged)
        return _start(container, facts, options, out)
    finally:
        remove_staged(staged)  # read by the model by now, or the start failed


def _create(
    client: docker.DockerClient,
    facts: ImageFacts,
    options: RunOptions,
    gpu: GpuRequest | None,
    staged: Path | None,
) -> Container:
    port = int(options.env.get("PORT", CONTAINER_PORT))
    ports: dict[str, Any] = {f"{port}/tcp": (options.host, options.port or None)}  # None: any free port
    requests = [_device_request(gpu)] if gpu is not None else []
    mounts = [Mount(MOUNT, str(staged), type="bind", read_only=True)] if staged is not None else []
    try:
        return client.containers.create(
            facts.reference,
            detach=True,
            environment=dict(options.env),
            ports=ports,
            device_requests=requests,
            mounts=mounts,
        )
    except docker.errors.APIError as exc:
        raise PackagerError(f"cannot create a container of {facts.reference}: {exc.explanation}") from None


def _device_request(gpu: GpuRequest) -> DeviceRequest:
    if gpu.driver == "cdi":
        return DeviceRequest(driver="cdi", device_ids=list(gpu.device_ids))
    return DeviceRequest(driver="nvidia", count=gpu.count, capabilities=[["gpu"]])


def _start(container: Container, facts: ImageFacts, options: RunOptions, out: IO[str]) -> Running:
    stream: Any = None
    try:
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise PackagerError(f"cannot start {facts.reference}: {exc.explanation}") from None
        stream = _follow(container, out)
        url = f"http://{_local(options.host)}:{_published(container)}"
        probe = http_probe(f"{url}/v1/models/{facts.name}")
        wait_ready(probe, lambda: _exit_code(container), timeout=options.timeout)
    except ContainerExited as exc:
        tail = container.logs(tail=TAIL).decode("utf-8", errors="replace").rstrip()
        _discard(container, stream)
        raise PackagerError(f"{exc}; its log ends:\n{tail}") from None
    except BaseException:
        _discard(container, stream)
        raise
    return Running(container, url, facts, stream)


def _local(host: str) -> str:
    """The address to reach a port published on `host` from this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 (names, not binds)


def _published(container: Container) -> int:
    container.reload()
    ports: dict[str, Any] = container.attrs["NetworkSettings"]["Ports"] or {}
    for bindings in ports.values():
        for binding in bindings or []:
            return int(binding["HostPort"])
    raise PackagerError("the container published no port; is another process using it?")


def _exit_code(container: Container) -> int | None:
    container.reload()
    state: dict[str, Any] = container.attrs["State"]
    return None if state.get("Running") or state.get("Status") == "created" else int(state["ExitCode"])


def _follow(container: Container, out: IO[str]) -> Any:
    """Stream the container's log to `out` in a daemon thread; the stream (close() ends it)."""
    stream = container.logs(stream=True, follow=True)

    def pump() -> None:
        try:
            for chunk in stream:
                out.write(chunk.decode("utf-8", errors="replace"))
                out.flush()
        except Exception:  # noqa: S110 (the stream was closed, or the container went)
            pass

    threading.Thread(target=pump, name="packager-container-log", daemon=True).start()
    return stream


def _close(stream: Any) -> None:
    if stream is not None:
        stream.close()


def _discard(container: Container, stream: Any) -> None:
    _close(stream)
    with contextlib.suppress(docker.errors.APIError):
        container.remove(force=True)
