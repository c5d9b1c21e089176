"""The Docker engine through the `docker` SDK, and what packager reads off an image it built."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import yaml
from docker.models.containers import Container
from docker.models.images import Image

from packager._container._stage import parse_user
from packager._errors import PackagerError
from packager._fetch import build_only_secrets
from packager._spec import Spec

PACKAGE_DIR = "/app/package"  # where the Dockerfile puts the package (docs/building.md, Layers)
NAME_LABEL = "dev.packager.spec.name"
DRIVER_LABEL = "dev.packager.cuda.driver"
ACCELERATOR_LABEL = "dev.packager.accelerator"
DEFAULT_GRACE = 30.0  # runtime.shutdown_grace_s when the spec cannot be read


def engine() -> docker.DockerClient:
    """A client of the local engine ($DOCKER_HOST, else the default socket) that answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise PackagerError(
            f"cannot reach the Docker engine ({_reason(exc)}); start dockerd, then try again"
        ) from None
    return client


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


NO_IMAGE = (
    "{reference!r} is neither a package directory (with package.yaml) nor an image on the "
    "local Docker engine; build it with `pkg build`, or `docker pull` it"
)


def get_image(client: docker.DockerClient, reference: str, missing: str = NO_IMAGE) -> Image:
    """The local image `reference`, or PackagerError (`missing`, formatted) saying how to get one."""
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        raise PackagerError(missing.format(reference=reference)) from None
    except docker.errors.APIError as exc:
        raise PackagerError(f"cannot inspect image {reference!r}: {_reason(exc)}") from None


@dataclass(frozen=True)
class ImageFacts:
    """What `pkg run` needs to know about an image packager built."""

    reference: str
    name: str
    accelerator: str | None
    gpu_count: int
    cuda_driver: str | None
    secrets: tuple[str, ...]
    build_only: tuple[str, ...]  # secrets only `fetch: build` weights use: optional at start
    owner: tuple[int, int] | None  # the USER's uid and gid
    user: str
    grace: float  # runtime.shutdown_grace_s: how long a stop lets requests finish


def image_facts(client: docker.DockerClient, reference: str) -> ImageFacts:
    """Labels, the spec and the user of the image `reference`, read without starting it."""
    image = get_image(client, reference)
    config: dict[str, Any] = image.attrs.get("Config") or {}
    labels: dict[str, str] = config.get("Labels") or {}
    if NAME_LABEL not in labels:
        raise PackagerError(
            f"image {reference!r} was not built by packager (no label {NAME_LABEL}); "
            "build it with `pkg build`, or run it with `docker run`"
        )
    files = read_files(client, image, [f"{PACKAGE_DIR}/package.yaml", "/etc/passwd"])
    spec = _spec(files.get(f"{PACKAGE_DIR}/package.yaml"))
    user = config.get("User") or ""
    accelerator = labels.get(ACCELERATOR_LABEL) or (spec.resources.accelerator if spec else None)
    count = _count(accelerator)
    return ImageFacts(
        reference=reference,
        name=labels[NAME_LABEL],
        accelerator=accelerator,
        gpu_count=count,
        cuda_driver=labels.get(DRIVER_LABEL),
        secrets=tuple(spec.secrets) if spec else (),
        build_only=tuple(sorted(build_only_secrets(spec))) if spec else (),
        owner=parse_user(user, files.get("/etc/passwd", "")),
        user=user,
        grace=spec.runtime.shutdown_grace_s if spec else DEFAULT_GRACE,
    )


def _count(accelerator: str | None) -> int:
    """How many GPUs an accelerator ('A10G', 'A100:2') asks for; 0 for none."""
    if not accelerator:
        return 0
    count = accelerator.partition(":")[2]
    return int(count) if count.isdigit() else 1


def _spec(text: str | None) -> Spec | None:
    if text is None:
        return None
    try:
        return Spec.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValueError):
        return None  # written by another packager version: go by the labels alone


def read_files(client: docker.DockerClient, image: Image, paths: list[str]) -> dict[str, str]:
    """The text of each of `paths` that exists in `image`, read from a container never started."""
    probe: Container = client.containers.create(image, entrypoint=["/bin/true"], command=[])
    found: dict[str, str] = {}
    try:
        for path in paths:
            try:
                chunks, _ = probe.get_archive(path)
            except docker.errors.NotFound:
                continue
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                member = archive.next()
                data = archive.extractfile(member) if member is not None else None
                if data is not None:
                    found[path] = data.read().decode("utf-8", errors="replace")
    finally:
        probe.remove(force=True)
    return found
