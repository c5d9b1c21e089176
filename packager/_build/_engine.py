"""Build a package into an image on the local Docker engine, with the `docker` CLI.

The context is rendered into a temporary directory (`write_context`) and handed to
``docker build``: BuildKit (``DOCKER_BUILDKIT=1``, plain progress) where the client runs it,
else the classic builder, with a Dockerfile without BuildKit mounts. Progress streams to
stderr; a failure raises PackagerError naming the failing step and the tail of its log.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from packager._build._context import BuildContext, BuildOptions, build_context
from packager._build._notes import driver_note, schema_labels
from packager._build._progress import Progress
from packager._build._steps import Steps
from packager._build._write import CA_COPY, CA_SECRET, write_context
from packager._errors import PackagerError
from packager._secrets import resolve_secrets
from packager._spec_load import Package

# Debian's docker.io 20.10 client runs BuildKit without the buildx plugin; newer clients need it.
PREFERRED_CLIENT = "/usr/bin/docker"


def docker_client() -> str:
    """The docker CLI to use: $PACKAGER_DOCKER, else /usr/bin/docker, else `docker` on PATH."""
    chosen = os.environ.get("PACKAGER_DOCKER") or (
        PREFERRED_CLIENT if os.access(PREFERRED_CLIENT, os.X_OK) else shutil.which("docker")
    )
    if not chosen:
        raise PackagerError(
            "no docker client found; install Docker (Debian: apt-get install docker.io) "
            "or use `pkg build PATH --context-only DIR` and build with your own tooling"
        )
    return chosen


def has_buildkit(docker: str) -> bool:
    """Whether `docker build` can use BuildKit: the buildx plugin, or a client older than 23
    (which runs BuildKit itself with DOCKER_BUILDKIT=1). $PACKAGER_BUILDKIT=0 forces classic."""
    if os.environ.get("PACKAGER_BUILDKIT") == "0":
        return False
    if _run([docker, "buildx", "version"]).returncode == 0:
        return True
    version = _run([docker, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
    major = re.match(r"(\d+)\.", version)
    return major is not None and int(major.group(1)) < 23


@dataclass(frozen=True)
class Invocation:
    """How `docker build` runs, besides the package: the CLI's and `packager.build()`'s options."""

    no_cache: bool = False
    network: str | None = None  # docker build --network (none: offline, host: reach the host)
    platform: str | None = None  # docker build --platform


def build_image(
    package: Package,
    tag: str,
    *,
    no_cache: bool = False,
    log: IO[str] | None = None,
    options: BuildOptions | None = None,
    invocation: Invocation | None = None,
) -> str:
    """Build `package` into the image `tag` on the local engine and return `tag`."""
    out = log if log is not None else sys.stderr
    how = invocation or Invocation()
    docker = docker_client()
    engine = _run([docker, "version", "--format", "{{.Server.Version}}"])
    if engine.returncode != 0:
        reason = " ".join(engine.stderr.split()) or "no answer"
        raise PackagerError(f"cannot reach the Docker engine ({reason}); start dockerd, then try again")
    buildkit = has_buildkit(docker)
    labels, note = schema_labels(package)
    given = options or BuildOptions()
    options = dataclasses.replace(given, labels=(*given.labels, *labels))
    context = build_context(package, options)
    _check_builder(context, buildkit)
    for line in (note, driver_note(context), *_classic_notes(context, buildkit)):
        if line:
            out.write(f"packager: {line}\n")
    with tempfile.TemporaryDirectory(prefix="packager-build-") as tmp:
        context_dir = Path(tmp) / "context"
        write_context(package, context_dir, buildkit=buildkit, options=options)
        command = [docker, "build", "--tag", tag, *(["--no-cache"] if no_cache or how.no_cache else [])]
        command += [*(["--network", how.network] if how.network else [])]
        command += [*(["--platform", how.platform] if how.platform else [])]
        command += _secret_args(context, Path(tmp) / "secrets") if buildkit else []
        # the classic builder keeps a failed step's container unless told otherwise
        command.append("--progress=plain" if buildkit else "--force-rm")
        env = {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}
        _stream([*command, str(context_dir)], env, out, tag)
    return tag


def _check_builder(context: BuildContext, buildkit: bool) -> None:
    if context.build_secrets and not buildkit:
        names = ", ".join(context.build_secrets)
        raise PackagerError(
            f"the fetch: build weights need the secret {names} at build time, which only BuildKit can pass "
            "without leaving it in the image, and this docker client has no BuildKit; set 'fetch: start' "
            "on those weights (fetched when the container starts), or use a client with BuildKit (buildx)"
        )


def _classic_notes(context: BuildContext, buildkit: bool) -> list[str]:
    if buildkit:
        return []
    notes = [
        "BuildKit is not available with this docker client; using the classic builder "
        "(no pip cache mount, requirements and wheelhouse stay in a layer)"
    ]
    if context.ca_bundle is not None:
        notes.append(f"the classic builder leaves the CA bundle in the image, at {CA_COPY}")
    return notes


def _secret_args(context: BuildContext, folder: Path) -> list[str]:
    """`--secret` options for the CA bundle and each build secret; values go to files in `folder`
    (private, removed with the build's temporary directory), never on the command line."""
    args = [f"--secret=id={CA_SECRET},src={context.ca_bundle}"] if context.ca_bundle else []
    if not context.build_secrets:
        return args
    values = resolve_secrets(list(context.build_secrets))  # as the runtime looks them up
    folder.mkdir(mode=0o700)
    for name in context.build_secrets:
        path = folder / name
        path.touch(mode=0o600)
        path.write_text(values[name], encoding="utf-8")
        args.append(f"--secret=id={name},src={path}")
    return args


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, 1, "", str(exc))


def _stream(command: list[str], env: dict[str, str], out: IO[str], tag: str) -> None:
    steps = Steps()
    with (
        Progress(out, tag, steps) as progress,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            progress.line(line)
    progress.finish(process.returncode == 0)
    if process.returncode != 0:
        raise PackagerError(steps.failure(tag, process.returncode))
