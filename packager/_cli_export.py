"""`pkg export truss PATH OUT`: write a package in another tool's format."""

from __future__ import annotations

import click

_EPILOG = """\b
Examples:
  $ pkg export truss ./my-model ./my-model-truss
  $ truss push ./my-model-truss"""


@click.group()
def export() -> None:
    """Write a package in another tool's format (see docs/truss.md)."""


@export.command(epilog=_EPILOG)
@click.argument("path")
@click.argument("out")
def truss(path: str, out: str) -> None:
    """Write a Truss directory at OUT that runs the package at PATH.

    OUT holds config.yaml (requirements, resources, secrets, the first example
    as model_metadata.example_model_input, remote weights as `weights`), the
    package under data/package, packager's runtime under packages/ and a
    model/model.py that loads the package. OUT must not exist or be empty; it
    is written atomically.
    """
    from packager._export import export_truss  # build side: only when exporting

    export_truss(path, out)
    click.echo(f"wrote {out}")
