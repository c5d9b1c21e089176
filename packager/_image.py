"""`packager.build()` and `packager.run()`: a package into a container image, and that image run.

The build side (jinja2, the docker CLI) is imported only when `build` is called, so the
in-image runtime, which imports `packager`, never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from packager._container._run import Running


def build(
    path: str | Path,
    *,
    tag: str | None = None,
    no_cache: bool = False,
    log: IO[str] | None = None,
    wheelhouse: str | Path | None = None,
    ca_bundle: str | Path | None = None,
    network: str | None = None,
    platform: str | None = None,
    base_image: str | None = None,
) -> str:
    """Build the package at `path` into an image on the local Docker engine; return its reference.

    `tag` defaults to ``NAME:latest`` (the spec's name). Progress streams to `log` (stderr by
    default). BuildKit is used where the docker client runs it, the classic builder otherwise.
    A failed build raises PackagerError naming the failing step, with the end of its log.
    `wheelhouse` (a folder of wheels) becomes pip's only source, overriding ``build.wheelhouse``;
    `ca_bundle` (default ``$PACKAGER_CA_BUNDLE``) is trusted by pip and fetches during the build;
    `network` and `platform` go to ``docker build`` (``network="none"`` builds offline).
    `base_image` replaces the base image (``build.base_image`` and the one chosen for the spec).
    docs/building.md has the details.

    Example::

        image = packager.build("my-model", tag="my-model:dev")
    """
    from packager._build._context import BuildOptions  # the build side, loaded on use
    from packager._build._engine import Invocation, build_image
    from packager._spec_load import read_package

    package = read_package(path)
    ca = ca_bundle or os.environ.get("PACKAGER_CA_BUNDLE") or None
    options = BuildOptions(
        wheelhouse=Path(wheelhouse) if wheelhouse else None,
        ca_bundle=Path(ca) if ca else None,
        base_image=base_image or os.environ.get("PACKAGER_BASE_IMAGE") or None,
    )
    return build_image(
        package,
        tag or f"{package.spec.name}:latest",
        no_cache=no_cache,
        log=log,
        options=options,
        invocation=Invocation(network=network, platform=platform),
    )


def run(
    target: str | Path,
    *,
    port: int = 8080,
    host: str = "127.0.0.1",
    gpus: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    tag: str | None = None,
    timeout: float = 300,
    log: IO[str] | None = None,
) -> Running:
    """Start a package (a directory, built first) or a packager image as a container; wait until ready.

    The port is published on `host` (127.0.0.1: this machine only; `port=0` picks a free one).
    `gpus` is "all", a count, or "0" for none (default: the spec's accelerator). `secrets` names
    secrets to pass beyond those the spec declares; each value comes from this process's
    ``PACKAGER_SECRET_<NAME>`` or secrets directory, through a private mount at /secrets. The
    container's log streams to `log` (stderr) until it is ready. Returns a `Running` with `url`,
    `id` and `stop()`; as a context manager it stops the container at the end.

    Example::

        with packager.run("my-model", port=0) as running:
            print(packager.connect(running.url).predict({"name": "world"}))
    """
    from packager._container._gpu import parse_gpus  # the build side, loaded on use
    from packager._container._run import RunOptions, run_image
    from packager._container._target import image_of

    parse_gpus(gpus)  # a bad value fails before anything is built
    image = image_of(target, tag, log)
    options = RunOptions(port, host, gpus, dict(env or {}), tuple(secrets), timeout)
    return run_image(image, options, log)
