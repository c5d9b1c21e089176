"""`pkg build`: a package into an image on the local Docker engine, or only its build context."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from packager._build import write_context
from packager._build._engine import build_image
from packager._spec_load import read_package

_EPILOG = """\b
Examples:
  $ pkg build ./my-model --tag my-model:dev
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
@click.option("--tag", "-t", metavar="IMAGE", help="The image reference to build [default: NAME:latest].")
@click.option("--no-cache", is_flag=True, help="Build every layer again, reusing none.")
def build(path: str, context_dir: Path | None, tag: str | None, no_cache: bool) -> None:
    """Build the package at PATH into a container image that serves it.

    The image is built on the local Docker engine (BuildKit where the docker
    client runs it, else the classic builder), with progress on stderr; the
    image reference is printed at the end. With --context-only DIR, only the
    build context is written, to build with `docker buildx build DIR`, kaniko
    or podman; DIR must not exist or be empty.
    """
    package = read_package(path)
    if context_dir is None:
        click.echo(build_image(package, tag or f"{package.spec.name}:latest", no_cache=no_cache))
        return
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
