"""What `pkg run PATH|IMAGE` runs: a package directory is built first; anything else is an image."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from packager._errors import PackagerError


def is_package(target: str | Path) -> bool:
    """Whether `target` is a package directory (a directory holding package.yaml)."""
    path = Path(target)
    if path.is_dir() and not (path / "package.yaml").is_file() and not (path / "config.yaml").is_file():
        raise PackagerError(
            f"{target} is a directory without package.yaml; give a package directory or an image reference"
        )
    return path.is_dir()


def image_of(target: str | Path, tag: str | None, log: IO[str] | None) -> str:
    """The image to run for `target`: built from it when it is a package directory."""
    if not is_package(target):
        if tag is not None:
            raise PackagerError(
                "--tag names the image built from a package directory; give a PATH, or drop it"
            )
        return str(target)
    from packager._image import build  # as packager.build(): $PACKAGER_CA_BUNDLE and all

    return build(target, tag=tag, log=log)
