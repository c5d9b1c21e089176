"""`pkg build`: the build context of a package (building it on a Docker engine comes later)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from packager._build import write_context
from packager._errors import PackagerError
from packager._spec_load import read_package

_EPILOG = """\b
Example:
  $ pkg build ./my-model --context-only ./my-model-context"""


@click.command(epilog=_EPILOG)
@click.argument("path", default=".")
@click.option(
    "--context-only",
    "context_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Write the build context (Dockerfile and a copy of the package) to DIR; build nothing.",
)
def build(path: str, context_dir: Path | None) -> None:
    """Build the package at PATH into a container image that serves it.

    For now only --context-only is available: it writes a Dockerfile and
    everything it copies into DIR, to build with `docker buildx build DIR`,
    kaniko or podman. DIR must not exist or be empty.
    """
    package = read_package(path)
    if context_dir is None:
        raise PackagerError(
            "building with a Docker engine is not available yet; "
            "use `pkg build PATH --context-only DIR` and build DIR with your own tooling"
        )
    context = write_context(package, context_dir)
    click.echo(f"wrote build context to {context_dir} (base {context.base_image})")
    if context.cuda_flavour:
        click.echo(
            f"torch {context.cuda_flavour} for compute capability {context.compute_capability}: "
            f"needs an NVIDIA host driver >= {context.cuda_driver}"
        )
    elif context.cuda_driver:
        click.echo(f"CUDA base image: needs an NVIDIA host driver >= {context.cuda_driver}")
    click.echo(f"next: docker buildx build {shlex.quote(str(context_dir))}")
