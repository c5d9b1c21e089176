"""`pkg export truss`: a Truss directory that runs a packager package (build side: never imported
by the runtime).

The Truss holds the package under data/package, packager's runtime under
packages/packager (Truss's bundled_packages_dir, put on sys.path) and a thin
model/model.py whose Model loads the package with `packager.load()`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

import packager
from packager._build._write import IGNORED, NOT_RUNTIME
from packager._errors import PackagerError
from packager._requirements import requirement_lines
from packager._spec import Spec
from packager._spec_load import Package, read_package

# What packager's runtime imports (pyproject's dependencies less the build side).
RUNTIME_REQUIREMENTS = ("pydantic>=2.6,<3", "pyyaml>=6", "packaging>=23", "orjson>=3.9", "msgpack>=1.0")
# packager's accelerator names in Truss's spelling.
_ACCELERATORS = {"A100": "A100_40GB", "A100-80GB": "A100"}
_MOUNT = "/app/model_cache"
_MODEL_PY = '''"""A Truss model that runs the packager package in data/package (written by `pkg export truss`)."""

from pathlib import Path

import packager  # from packages/ (bundled_packages_dir)

WEIGHTS = Path("{mount}")


class Model:
    def __init__(self, **kwargs):
        self._data_dir = Path(kwargs["data_dir"])
        self._secrets = kwargs.get("secrets")
        self._handle = None

    def load(self):
        secrets = {{}}
        for name in {secrets!r}:
            try:
                secrets[name] = self._secrets[name]
            except Exception:  # Truss raises when a secret has no value; packager says which is missing
                pass
        weights = WEIGHTS if WEIGHTS.is_dir() else None  # Truss's weights mounts, else packager's cache
        self._handle = packager.load(self._data_dir / "package", secrets=secrets, weights_dir=weights)

    def predict(self, model_input):
        return self._handle.predict(model_input)
'''


def export_truss(path: str | Path, out: str | Path) -> Path:
    """Write a Truss directory at `out` (absent or empty) running the package at `path`; atomically."""
    package = read_package(path)
    if package.origin is not None:
        raise PackagerError(f"{path} is a {package.origin.kind} directory already; export a packager package")
    if package.spec.server is not None:
        raise PackagerError(
            "a package with server: exports to Truss's docker_server, which is not written yet"
        )
    target = Path(out).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PackagerError(f"{out} exists and is not empty; give a new directory")
    if target == package.root or package.root in target.parents:
        raise PackagerError(f"{out} is inside the package {package.root}; write the Truss elsewhere")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _fill(staging, package)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _fill(staging: Path, package: Package) -> None:
    ignore = shutil.ignore_patterns(*IGNORED)
    shutil.copytree(package.root, staging / "data" / "package", ignore=ignore)
    runtime = Path(packager.__file__).parent
    skip = shutil.ignore_patterns(*IGNORED, *NOT_RUNTIME)
    shutil.copytree(runtime, staging / "packages" / "packager", ignore=lambda d, n: skip(d, n))
    (staging / "model").mkdir()
    text = _MODEL_PY.format(mount=_MOUNT, secrets=tuple(package.spec.secrets))
    (staging / "model" / "model.py").write_text(text, encoding="utf-8")
    config = truss_config(package)
    (staging / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def truss_config(package: Package) -> dict[str, Any]:
    """The config.yaml of the Truss for `package`."""
    spec = package.spec
    config: dict[str, Any] = {
        "model_name": spec.name,
        "python_version": "py" + spec.python_version.replace(".", ""),
    }
    if spec.description:
        config["description"] = spec.description
    config["requirements"] = [*_requirements(package), *RUNTIME_REQUIREMENTS]
    config["system_packages"] = list(spec.system_packages)
    config["environment_variables"] = dict(spec.environment)
    config["secrets"] = dict.fromkeys(spec.secrets)
    config["resources"] = _resources(spec)
    config["runtime"] = {"predict_concurrency": spec.runtime.predict_concurrency}
    if spec.examples:
        config["model_metadata"] = {"example_model_input": spec.examples[0].input}
    if spec.build.commands:
        config["build_commands"] = list(spec.build.commands)
    if spec.build.base_image:
        config["base_image"] = {"image": spec.build.base_image}
    weights = _weights(spec)
    if weights:
        config["weights"] = weights
    return config


def _requirements(package: Package) -> list[str]:
    lines = list(package.spec.requirements)
    if package.spec.requirements_file:
        text = (package.root / package.spec.requirements_file).read_text(encoding="utf-8")
        lines += [line for _, line in requirement_lines(text)]
    return lines


def _resources(spec: Spec) -> dict[str, Any]:
    res: dict[str, Any] = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    gpu = spec.resources.gpu_type
    if gpu:
        name = _ACCELERATORS.get(gpu, gpu)
        res["accelerator"] = f"{name}:{spec.resources.gpu_count}" if spec.resources.gpu_count > 1 else name
    res["use_gpu"] = gpu is not None
    return res


def _weights(spec: Spec) -> list[dict[str, Any]]:
    out = []
    for w in spec.weights:
        if w.kind == "local":
            continue  # inside the package, copied with it
        item: dict[str, Any] = {"source": w.source, "mount_location": f"{_MOUNT}/{w.dir}"}
        if w.allow_patterns:
            item["allow_patterns"] = list(w.allow_patterns)
        if w.ignore_patterns:
            item["ignore_patterns"] = list(w.ignore_patterns)
        if w.secret:
            item["auth_secret_name"] = w.secret
        out.append(item)
    return out
