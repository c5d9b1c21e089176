"""`packager.build()`: a package into a container image on the local Docker engine.

The build side (jinja2, the docker CLI) is imported only when `build` is called, so the
in-image runtime, which imports `packager`, never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO


def build(
    path: str | Path, *, tag: str | None = None, no_cache: bool = False, log: IO[str] | None = None
) -> str:
    """Build the package at `path` into an image on the local Docker engine; return its reference.

    `tag` defaults to ``NAME:latest`` (the spec's name). Progress streams to `log` (stderr by
    default). BuildKit is used where the docker client runs it, the classic builder otherwise.
    A failed build raises PackagerError naming the failing step, with the end of its log.

    Example::

        image = packager.build("my-model", tag="my-model:dev")
    """
    from packager._build._engine import build_image  # the build side, loaded on use
    from packager._spec_load import read_package

    package = read_package(path)
    return build_image(package, tag or f"{package.spec.name}:latest", no_cache=no_cache, log=log)
