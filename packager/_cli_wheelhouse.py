"""`pkg wheelhouse`: every wheel a package's image installs, in one folder, for offline builds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from packager._build._wheelhouse import ARCHES, fill_wheelhouse
from packager._spec_load import read_package

_EPILOG = """\b
Examples:
  $ pkg wheelhouse ./my-model ./wheels
  $ pkg build ./my-model --wheelhouse ./wheels --network none"""


@click.command(epilog=_EPILOG)
@click.argument("path")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--platform",
    type=click.Choice(sorted(ARCHES)),
    default="linux/amd64",
    show_default=True,
    help="The image's platform: wheels are downloaded for it, not for this machine.",
)
@click.option(
    "--constraint",
    "-c",
    metavar="FILE",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A pip constraints file, e.g. to pin torch to a wheel you have.",
)
@click.option(
    "--torch-index/--no-torch-index",
    default=True,
    show_default=True,
    help="Take torch from PyTorch's CPU or CUDA index, as the image build would.",
)
def wheelhouse(path: str, dest: Path, platform: str, constraint: Path | None, torch_index: bool) -> None:
    """Download into DEST every wheel the image of the package at PATH installs.

    The wheels are the packager runtime's requirements and the spec's, for the
    image's Python (python_version) and Linux platform, with pip's own progress
    on stderr. Then `pkg build PATH --wheelhouse DEST --network none` builds
    without reaching any index.
    """
    package = read_package(path)
    where = fill_wheelhouse(
        package, dest, platform=platform, constraint=constraint, torch_index=torch_index, log=sys.stderr
    )
    click.echo(f"wheelhouse ready: {where} ({sum(1 for _ in where.glob('*.whl'))} wheels)")
