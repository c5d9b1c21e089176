"""Render the Dockerfile from a `BuildContext` and write a whole build context, atomically.

A build context directory holds::

    Dockerfile          rendered from templates/Dockerfile.jinja
    .dockerignore       caches and VCS folders never reach the engine
    requirements.txt    the runtime's requirements, then the spec's
    wheelhouse/         the spec's wheelhouse (empty when it has none)
    weights/            local weight sources, at their path in the package (empty when none)
    fetch/              with `fetch: build` sources only: what the weights stage runs (_bake.py)
    runtime/packager/   the packager modules serving needs, from this installation
    package/            a copy of the package (no __pycache__, .git, ...)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import jinja2

import packager
from packager._build import _bake
from packager._build._context import WHEELHOUSE_MOUNT, BuildContext, BuildOptions, build_context
from packager._errors import PackagerError
from packager._resources import templates_dir
from packager._spec_load import Package

TEMPLATE = "Dockerfile.jinja"
IGNORED = ("__pycache__", "*.pyc", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache")
# Build-side modules left out of the in-image runtime (the import-linter contract keeps the
# runtime from importing them), and the data folders of a wheel install: top level only
# (packager/_server/__main__.py is the image's entrypoint).
NOT_RUNTIME = (
    "_cli.py",
    "_cli_*.py",
    "_resources.py",
    "__main__.py",
    "_build",
    "_container",
    "_deploy",
    "_catalogue",
    "_export",
    "integrations",
    "templates",
    "library",
)
ENTRYPOINT = 'exec python -m packager._server /app/package --host 0.0.0.0 --port "${PORT}"'
CA_SECRET = "packager-ca-bundle"  # noqa: S105 (the --secret id of --ca-bundle, not a secret)
CA_COPY = "/usr/local/share/packager/ca-bundle.crt"  # where the classic builder leaves it
CA_VARIABLES = ("PIP_CERT", "PACKAGER_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
HEALTHCHECK = (
    "import os, urllib.request; urllib.request.urlopen("
    "'http://127.0.0.1:' + os.environ.get('PORT', '{port}') + '/v1/models/{name}', timeout=4)"
)


def docker_quoted(value: str) -> str:
    """`value` as a double-quoted Dockerfile ENV/LABEL value: `"`, `\\` and `$` escaped."""
    if "\n" in value or "\r" in value:
        raise PackagerError(f"{value!r}: a line break cannot go into an image's environment or labels")
    return json.dumps(value, ensure_ascii=False).replace("$", "\\$")


def render_dockerfile(context: BuildContext, *, buildkit: bool = True) -> str:
    """The Dockerfile of `context` (jinja2, StrictUndefined: a variable not given is an error).

    With `buildkit` false, for the classic builder: no mounts, so the requirements and the
    wheelhouse are copied in and pip keeps no cache."""
    source = templates_dir() / TEMPLATE
    if not source.is_file():
        raise PackagerError(f"template {TEMPLATE!r} is missing from this installation; reinstall packager")
    env = jinja2.Environment(  # noqa: S701 (a Dockerfile, not HTML: escaping would corrupt it)
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["dq"] = docker_quoted
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    return env.from_string(source.read_text(encoding="utf-8")).render(
        **fields,
        **_builder_fields(context, buildkit),
        buildkit=buildkit,
        pip_options=context.pip_options,
        wheelhouse_mount=WHEELHOUSE_MOUNT,
        healthcheck=["python", "-c", HEALTHCHECK.format(port=context.port, name=context.name)],
        entrypoint=["/bin/sh", "-c", ENTRYPOINT],
    )


def _builder_fields(context: BuildContext, buildkit: bool) -> dict[str, object]:
    """What differs between the builders, as flat values: the CA bundle is a secret mount with
    BuildKit and a copied file with the classic builder; tokens are secret mounts (BuildKit)."""
    ca_path = (f"/run/secrets/{CA_SECRET}" if buildkit else CA_COPY) if context.ca_bundle else None
    ca_env = "".join(f"{name}={ca_path} " for name in CA_VARIABLES) if ca_path else ""
    mounts = [f"--mount=type=secret,id={CA_SECRET}"] if ca_path and buildkit else []
    secrets = [f"--mount=type=secret,id={name}" for name in context.build_secrets]
    return {
        "bake": bool(context.baked),
        "ca_env": ca_env,
        "ca_copies": [f"COPY ca-bundle.crt {CA_COPY}"] if ca_path and not buildkit else [],
        "pip_mounts": mounts,
        "bake_mounts": [*mounts, *secrets] if buildkit else [],
    }


def write_context(
    package: Package, out_dir: str | Path, *, buildkit: bool = True, options: BuildOptions | None = None
) -> BuildContext:
    """Write the build context of `package` to `out_dir`, which must not exist or be empty.
    `buildkit` false writes a Dockerfile for the classic builder (see `render_dockerfile`);
    `options` are the build's own (`BuildOptions`).

    Everything is written to a temporary directory beside `out_dir` and renamed into place
    at the end, so a failure leaves no half-written context behind.
    """
    context = build_context(package, options)
    dockerfile = render_dockerfile(context, buildkit=buildkit)
    target = Path(out_dir).resolve()
    _check_target(target, package.root)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _fill(staging, package, context, dockerfile, buildkit)
        if target.exists():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return context


def _check_target(target: Path, root: Path) -> None:
    if target == root or root in target.parents:
        raise PackagerError(f"{target} is inside the package {root}; write the build context elsewhere")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PackagerError(f"{target} already exists and is not empty; remove it or pick a new directory")


def _fill(staging: Path, package: Package, context: BuildContext, dockerfile: str, buildkit: bool) -> None:
    (staging / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    ignore = "".join(f"**/{pattern}\n" for pattern in IGNORED)
    (staging / ".dockerignore").write_text(ignore, encoding="utf-8")
    (staging / "requirements.txt").write_text("\n".join(context.requirements) + "\n", encoding="utf-8")
    wheelhouse = staging / "wheelhouse"
    if context.wheelhouse is not None:
        shutil.copytree(context.wheelhouse, wheelhouse, ignore=shutil.ignore_patterns(*IGNORED))
    else:
        wheelhouse.mkdir()
    runtime = Path(packager.__file__).resolve().parent
    shutil.copytree(
        runtime, staging / "runtime" / "packager", ignore=_ignore(IGNORED, top=(runtime, NOT_RUNTIME))
    )
    local = _bake.local_paths(package.root, package.spec)
    skip = [*local, *([context.wheelhouse] if context.wheelhouse is not None else [])]
    shutil.copytree(package.root, staging / "package", ignore=_ignore(IGNORED, skip=skip))
    _bake.write_local(staging / "weights", package.root, package.spec, _ignore(IGNORED))
    if context.baked:
        _bake.write_fetch(staging / "fetch", package.spec, context.baked, _ignore(IGNORED))
    if context.ca_bundle is not None and not buildkit:
        shutil.copy2(context.ca_bundle, staging / "ca-bundle.crt")


def _ignore(
    patterns: Iterable[str], skip: Iterable[Path] = (), top: tuple[Path, Iterable[str]] | None = None
) -> Callable[[str, list[str]], set[str]]:
    """A copytree `ignore` for glob `patterns` that also leaves out the folders in `skip`, and
    the names matching `top[1]` in the folder `top[0]` only."""
    by_pattern = shutil.ignore_patterns(*patterns)
    at_top = shutil.ignore_patterns(*top[1]) if top else None
    skipped = set(skip)

    def ignore(folder: str, names: list[str]) -> set[str]:
        found: set[str] = set(by_pattern(folder, names))
        if top and at_top and Path(folder).resolve() == top[0]:
            found |= set(at_top(folder, names))
        return found | {n for n in names if (Path(folder) / n).resolve() in skipped}

    return ignore
