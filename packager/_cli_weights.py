"""`pkg weights`: fetch a package's remote weights into the local cache ahead of time."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from packager._fetch import fetch_weights, remote_sources, token_secret
from packager._pipeline import weights_dir_for
from packager._secrets import resolve_secrets
from packager._spec_load import read_package

_EPILOG = """\b
Examples:
  $ pkg weights ./my-model
  $ pkg weights ./my-model --dir /mnt/weights"""


@click.command(epilog=_EPILOG)
@click.argument("path", default=".")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Weights directory (default: $PACKAGER_WEIGHTS_DIR, else ~/.cache/packager/weights/NAME).",
)
def weights(path: str, directory: Path | None) -> None:
    """Fetch the remote weights of the package at PATH into the weights cache.

    Downloads every hf://, https://, s3:// and gs:// source (whatever its
    `fetch`) that is not complete in the cache yet, verifying sha256 where
    given, and prints the folder of each. `packager.load()` and `pkg serve`
    with the same weights directory then download nothing. Does not import
    the model.
    """
    package = read_package(path)
    spec = package.spec
    root = weights_dir_for(package, directory)
    name = token_secret(spec)
    secrets = resolve_secrets([name]) if name else {}
    with _progress_to_stderr():
        fetched = fetch_weights(spec, root, secrets)
    for source in spec.weights:
        where = fetched.get(source.dir) if source in remote_sources(spec) else package.root / source.source
        click.echo(f"{source.dir}: {where}")
    if not spec.weights:
        click.echo(f"{spec.name} declares no weights")


@contextmanager
def _progress_to_stderr() -> Iterator[None]:
    """Show the packager.weights progress lines on stderr while fetching."""
    logger = logging.getLogger("packager.weights")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
