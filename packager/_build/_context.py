"""The flat, typed context a Dockerfile is rendered from, computed from a package alone.

`build_context(package)` is pure: it reads the spec (and its requirements file) and the CUDA
table, never the network, the environment or a secret.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from packager._build import _cuda
from packager._errors import PackagerError
from packager._fetch import remote_sources, source_secret
from packager._requirements import requirement_lines
from packager._spec import Spec
from packager._spec_load import Package
from packager._version import __version__

PORT = 8080
USER = "app"
UID = 1000
WHEELHOUSE_MOUNT = "/tmp/packager/wheelhouse"  # noqa: S108 (a build-time bind mount, not a temp file)
WEIGHTS_DIR = "/var/lib/packager/weights"  # $PACKAGER_WEIGHTS_DIR in the image
# What the in-image server needs: pyproject's dependencies without the build side (jinja2, the
# docker SDK; click still comes with uvicorn), without the client's httpx (the server never imports
# it), and uvicorn with httptools but not the other [standard] extras. uvloop is left out too: its
# wheel installs 14 MB (an extension with debug info, and slim bases have no `strip`), which alone
# would take the runtime past its 30 MB budget (bench/build.py). The server runs on uvloop whenever
# it is installed: a spec that wants it (about 1.5x the requests per second of a trivial model,
# nothing measurable once predict takes milliseconds) lists `uvloop` in its requirements.
RUNTIME_REQUIREMENTS = (
    "pydantic>=2.6,<3",
    "pyyaml>=6",
    "uvicorn>=0.29",
    "httptools>=0.5",
    "orjson>=3.9",
    "packaging>=23",
    "msgpack>=1.0",
    "prometheus-client>=0.20",
    'eval-type-backport>=0.2; python_version < "3.10"',
)


@dataclass(frozen=True)
class BuildOptions:
    """What a build adds to the package: the command line's options, never a secret's value."""

    wheelhouse: Path | None = None  # overrides build.wheelhouse
    ca_bundle: Path | None = None  # a CA bundle pip and fetches trust during the build
    labels: tuple[tuple[str, str], ...] = field(default=())  # more labels (the predict schema)
    base_image: str | None = None  # overrides build.base_image (and the base chosen for the spec)


@dataclass(frozen=True)
class BuildContext:
    """Everything templates/Dockerfile.jinja uses, already decided."""

    name: str
    spec_sha256: str
    packager_version: str
    base_image: str
    base_kind: str  # "python-slim", "cuda-runtime" or "custom"
    python_version: str
    python: str  # the command that runs the spec's Python on the base image
    install_python: bool  # the base lacks the spec's Python: apt installs it (deadsnakes)
    apt_packages: tuple[str, ...]
    requirements: tuple[str, ...]  # the runtime's, then the spec's
    torch_index_url: str | None
    extra_index_urls: tuple[str, ...]
    find_links: tuple[str, ...]
    wheelhouse: Path | None  # copied into the context; pip's only source when set
    environment: tuple[tuple[str, str], ...]
    port: int
    user: str
    uid: int
    labels: tuple[tuple[str, str], ...]
    commands: tuple[str, ...]
    cuda_flavour: str | None
    cuda_driver: str | None  # least host driver the image needs (Linux)
    compute_capability: str | None
    weights_dir: str
    baked: tuple[tuple[str, str | None], ...]  # (dir, secret) of each remote `fetch: build` source
    local_weights: tuple[str, ...]  # package-relative paths of local sources, in their own layer
    build_secrets: tuple[str, ...]  # declared secrets mounted while baking (BuildKit only)
    ca_bundle: Path | None

    @property
    def pip_options(self) -> tuple[str, ...]:
        """pip's index options: the wheelhouse alone offline, else the extra indexes and links."""
        if self.wheelhouse is not None:
            return ("--no-index", "--find-links", WHEELHOUSE_MOUNT)
        options: list[str] = []
        for url in (*((self.torch_index_url,) if self.torch_index_url else ()), *self.extra_index_urls):
            options += ["--extra-index-url", url]
        for link in self.find_links:
            options += ["--find-links", link]
        return tuple(options)


def build_context(package: Package, options: BuildOptions | None = None) -> BuildContext:
    """The build context of `package`; PackagerError for a combination packager cannot build."""
    options = options or BuildOptions()
    spec = package.spec
    lines = _requirement_lines(package)
    torch = _torch_requirement(lines)
    gpu = spec.resources.gpu_type
    cap = _cuda.capability(gpu) if gpu else None
    chosen = _flavour(spec, torch, cap) if torch is not None and cap is not None else None
    base_image, base_kind, python, install = _base(spec, options.base_image)
    digest = hashlib.sha256(package.spec_file.read_bytes()).hexdigest()
    driver = _driver(spec, chosen)
    baked = tuple((w.dir, source_secret(spec, w)) for w in remote_sources(spec, ("build",)))
    return BuildContext(
        name=spec.name,
        spec_sha256=digest,
        packager_version=__version__,
        base_image=base_image,
        base_kind=base_kind,
        python_version=spec.python_version,
        python=python,
        install_python=install,
        apt_packages=tuple(spec.system_packages),
        requirements=(*RUNTIME_REQUIREMENTS, *lines),
        torch_index_url=_torch_index(torch, chosen),
        extra_index_urls=tuple(spec.build.extra_index_urls),
        find_links=tuple(spec.build.find_links),
        wheelhouse=options.wheelhouse.resolve() if options.wheelhouse else _wheelhouse(package),
        environment=tuple(sorted(spec.environment.items())),
        port=PORT,
        user=USER,
        uid=UID,
        labels=_labels(spec, digest, driver, options.labels),
        commands=tuple(spec.build.commands),
        cuda_flavour=chosen.name if chosen else None,
        cuda_driver=driver,
        compute_capability=cap,
        weights_dir=WEIGHTS_DIR,
        baked=baked,
        local_weights=tuple(w.source for w in spec.weights if w.kind == "local"),
        build_secrets=tuple(sorted({secret for _, secret in baked if secret})),
        ca_bundle=_ca_bundle(options.ca_bundle),
    )


def _ca_bundle(path: Path | None) -> Path | None:
    if path is not None and not path.is_file():
        raise PackagerError(
            f"CA bundle {path} is not a file; give a PEM file (--ca-bundle, $PACKAGER_CA_BUNDLE)"
        )
    return path.resolve() if path is not None else None


def _labels(
    spec: Spec, digest: str, driver: str | None, more: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    labels = [
        ("dev.packager.spec.name", spec.name),
        ("dev.packager.spec.sha256", digest),
        # the spec itself, as compact JSON without defaults (names of secrets, never values)
        (
            "dev.packager.spec",
            json.dumps(spec.model_dump(mode="json", exclude_defaults=True), separators=(",", ":")),
        ),
        ("dev.packager.version", __version__),
    ]
    if spec.resources.accelerator:
        labels.append(("dev.packager.accelerator", spec.resources.accelerator))
    if driver:
        labels.append(("dev.packager.cuda.driver", driver))
    return (*labels, *more)


def _requirement_lines(package: Package) -> list[str]:
    spec = package.spec
    if spec.requirements_file is None:
        return list(spec.requirements)
    text = (package.root / spec.requirements_file).read_text(encoding="utf-8")
    return [line for _, line in requirement_lines(text)]


def _torch_requirement(lines: list[str]) -> Requirement | None:
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # a bare URL or path: pip installs it as is
        if canonicalize_name(requirement.name) == "torch":
            return requirement
    return None


def _flavour(spec: Spec, torch: Requirement, cap: str) -> _cuda.Flavour:
    system = spec.build.cuda_version
    prefer = "cu" + system.replace(".", "") if system else None
    return _cuda.choose_flavour(_cuda.torch_minor(torch), cap, prefer=prefer)


def _torch_index(torch: Requirement | None, chosen: _cuda.Flavour | None) -> str | None:
    if torch is None:
        return None  # nothing to take from PyTorch's index
    return chosen.index_url if chosen else _cuda.TORCH_CPU_INDEX


def _base(spec: Spec, override: str | None = None) -> tuple[str, str, str, bool]:
    """(image, kind, python command, whether python must be installed) for the spec."""
    if override or spec.build.base_image:
        return override or spec.build.base_image or "", "custom", "python3", False
    if spec.build.cuda_version:
        tag = _cuda.cuda_row(spec.build.cuda_version)["image_tag"]
        return f"nvidia/cuda:{tag}-runtime-ubuntu22.04", "cuda-runtime", f"python{spec.python_version}", True
    return f"python:{spec.python_version}-slim-bookworm", "python-slim", "python", False


def _driver(spec: Spec, chosen: _cuda.Flavour | None) -> str | None:
    drivers = [chosen.driver] if chosen else []
    if spec.build.cuda_version:
        drivers.append(_cuda.cuda_row(spec.build.cuda_version)["driver"])
    return max(drivers, key=lambda d: tuple(int(p) for p in d.split("."))) if drivers else None


def _wheelhouse(package: Package) -> Path | None:
    where = package.spec.build.wheelhouse
    if where is None:
        return None
    path = (package.root / where).resolve()
    if not path.is_dir():
        raise PackagerError(
            f"build.wheelhouse {where!r} is not a directory in {package.root}; create it or fix the path"
        )
    return path
