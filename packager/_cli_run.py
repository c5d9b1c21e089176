"""`pkg run` (a package or image as a local container) and `pkg push` (an image to a registry)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from packager._container._stage import parse_env
from packager._errors import PackagerError
from packager._image import run as run_container

_RUN_EPILOG = """\b
Examples:
  $ pkg run ./my-model                      # build, run, follow the log; Ctrl-C stops it
  $ pkg run my-model:dev --port 0 --detach  # any free port; prints the URL and the container id
  $ pkg run my-model:dev --secret hf_token --gpus all"""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends `pkg run` as Ctrl-C does: the container is stopped and removed."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command(epilog=_RUN_EPILOG)
@click.argument("target", metavar="PATH|IMAGE", default=".")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Host port for the server (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Host address the port is published on; 0.0.0.0 lets other machines reach it.",
)
@click.option(
    "--gpus", metavar="all|N", help="GPUs to give it; 0 runs on the CPU [default: the spec's accelerator]."
)
@click.option(
    "--env", "-e", "env", multiple=True, metavar="KEY=VALUE", help="An environment variable (repeat)."
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="NAME",
    help="A secret beyond those the spec declares, from $PACKAGER_SECRET_<NAME> (repeat).",
)
@click.option("--detach", "-d", is_flag=True, help="Print the URL and container id once ready, and return.")
@click.option("--tag", "-t", metavar="IMAGE", help="With a PATH: the image to build [default: NAME:latest].")
@click.option(
    "--timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds to wait for readiness.",
)
def run(
    target: str,
    port: int,
    host: str,
    gpus: str | None,
    env: tuple[str, ...],
    secrets: tuple[str, ...],
    detach: bool,
    tag: str | None,
    timeout: float,
) -> None:
    """Run a package (PATH, built first) or a packager image (IMAGE) as a container.

    Waits until the model is ready, streaming the container's log to stderr,
    then prints the URL. Without --detach it keeps following the log until
    Ctrl-C or SIGTERM, then stops and removes the container. Declared secrets
    are read from $PACKAGER_SECRET_<NAME> (or the secrets directory) here and
    reach the container as files in a private read-only mount at /secrets,
    removed once the model has loaded; never as environment or labels.
    """
    environment = parse_env(env)
    with _sigterm_interrupts():
        running = run_container(
            target,
            port=port,
            host=host,
            gpus=gpus,
            env=environment,
            secrets=secrets,
            tag=tag,
            timeout=timeout,
        )
        click.echo(running.url)
        if detach:
            running.stop_following()
            click.echo(running.id)
            return
        click.echo(f"packager: serving at {running.url}; Ctrl-C stops the container", err=True)
        try:
            code = running.wait()
        except KeyboardInterrupt:
            click.echo("packager: stopping the container", err=True)
            running.stop()
            return
        running.stop()
        raise PackagerError(f"the container exited with code {code}; its log is above")


@click.command(epilog="\b\nExample:\n  $ pkg push my-model:dev registry.example.com/team/my-model:1.0")
@click.argument("image")
@click.argument("target", metavar="REGISTRY/REPO[:TAG]")
def push(image: str, target: str) -> None:
    """Tag the local IMAGE as REGISTRY/REPO[:TAG] and push it there.

    Progress goes to stderr; the pushed reference with its digest is printed
    at the end. Credentials are the Docker engine's: `docker login REGISTRY`
    first for a registry that needs them. TAG defaults to latest.
    """
    from packager._container._push import push_image  # the docker SDK, loaded on use

    click.echo(push_image(image, target, log=sys.stderr))
