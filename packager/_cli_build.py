"""`pkg build`: a package into an image on the local Docker engine, or only its build context."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from packager._build import write_context
from packager._build._context import BuildOptions
from packager._build._notes import driver_note, schema_labels
from packager._build._write import CA_SECRET
from packager._image import build as build_image
from packager._spec_load import read_package

_EPILOG = """\b
Examples:
  $ pkg build ./my-model --tag my-model:dev
  $ pkg build ./my-model --wheelhouse ./wheels --network none
  $ pkg build ./my-model --context-only ./my-model-context"""
_FILE = click.Path(path_type=Path, exists=True, dir_okay=False)


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
@click.option(
    "--wheelhouse",
    metavar="DIR",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="A folder of wheels, pip's only source (overrides build.wheelhouse).",
)
@click.option(
    "--ca-bundle",
    metavar="FILE",
    type=_FILE,
    envvar="PACKAGER_CA_BUNDLE",
    help="A CA bundle (PEM) that pip and weight fetches trust during the build "
    "(a TLS-intercepting proxy's) [env: PACKAGER_CA_BUNDLE].",
)
@click.option("--network", metavar="MODE", help="docker build --network: 'none' builds offline.")
@click.option("--platform", metavar="OS/ARCH", help="docker build --platform, e.g. linux/amd64.")
@click.option(
    "--base-image",
    metavar="IMAGE",
    envvar="PACKAGER_BASE_IMAGE",
    help="Build on IMAGE instead of the base chosen for the spec (overrides build.base_image) "
    "[env: PACKAGER_BASE_IMAGE].",
)
def build(
    path: str,
    context_dir: Path | None,
    tag: str | None,
    no_cache: bool,
    wheelhouse: Path | None,
    ca_bundle: Path | None,
    network: str | None,
    platform: str | None,
    base_image: str | None,
) -> None:
    """Build the package at PATH into a container image that serves it.

    The image is built on the local Docker engine (BuildKit where the docker
    client runs it, else the classic builder), with progress on stderr; the
    image reference is printed at the end. With --context-only DIR, only the
    build context is written, to build with `docker buildx build DIR`, kaniko
    or podman; DIR must not exist or be empty.
    """
    if context_dir is None:
        click.echo(
            build_image(
                path,
                tag=tag,
                no_cache=no_cache,
                wheelhouse=wheelhouse,
                ca_bundle=ca_bundle,
                network=network,
                platform=platform,
                base_image=base_image,
            )
        )
        return
    package = read_package(path)
    labels, note = schema_labels(package)
    options = BuildOptions(wheelhouse=wheelhouse, ca_bundle=ca_bundle, labels=labels, base_image=base_image)
    context = write_context(package, context_dir, options=options)
    click.echo(f"wrote build context to {context_dir} (base {context.base_image})")
    for line in (note, driver_note(context)):
        if line:
            click.echo(line)
    secrets = [f"--secret id={name},src=FILE" for name in context.build_secrets]
    if context.ca_bundle is not None:
        secrets.append(f"--secret id={CA_SECRET},src={shlex.quote(str(context.ca_bundle))}")
    click.echo(f"next: docker buildx build {' '.join([*secrets, shlex.quote(str(context_dir))])}")
