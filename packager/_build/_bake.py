"""The weights part of a build context: ``fetch/`` for the weights stage and ``weights/`` for local sources.

``fetch/`` holds only what fetching needs (packager/_fetch, _weights, _secrets, _errors and
an ``__init__`` that imports nothing) plus ``weights.json``, the `fetch: build` sources. The
Dockerfile's weights stage copies just that folder, so its layer cache survives edits to the
model and packager upgrades that leave these modules alone; the weights are then fetched again
only when a source, the Python dependencies or the fetching code change.

``weights/`` holds the local sources at their path in the package; the Dockerfile copies it
to /app/package before the runtime and the package (which leaves them out), so editing
model.py does not copy them again. A local source's ``sha256`` is checked here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import packager
from packager._errors import PackagerError
from packager._fetch._https import hash_file
from packager._spec import Spec
from packager._weights import WeightSource

# What `python -m packager._fetch._bake` imports, relative to the packager folder.
FETCH_MODULES = ("_errors.py", "_weights.py", "_secrets.py", "_fetch")
FETCH_INIT = '"""packager: only the modules that fetch weights during an image build."""\n'
MANIFEST = "weights.json"
Ignore = Callable[[str, list[str]], set[str]]


def write_fetch(out: Path, spec: Spec, baked: tuple[tuple[str, str | None], ...], ignore: Ignore) -> None:
    """Write ``out`` (the context's fetch/ folder) for the `baked` (dir, secret) sources."""
    source = Path(packager.__file__).resolve().parent
    target = out / "packager"
    target.mkdir(parents=True)
    (target / "__init__.py").write_text(FETCH_INIT, encoding="utf-8")
    for name in FETCH_MODULES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, ignore=ignore)
        else:
            shutil.copy2(source / name, target / name)
    by_dir = {w.dir: w for w in spec.weights}
    items = [{"source": by_dir[d].model_dump(mode="json"), "secret": s} for d, s in baked]
    (out / MANIFEST).write_text(json.dumps({"sources": items}, indent=1) + "\n", encoding="utf-8")


def local_paths(root: Path, spec: Spec) -> list[Path]:
    """The local sources' paths (resolved); PackagerError for one that is the package itself."""
    paths = []
    for weights in spec.weights:
        if weights.kind != "local":
            continue
        path = (root / weights.source).resolve()
        if path == root.resolve():
            raise PackagerError(f"weights {weights.source!r} is the whole package; name a folder inside it")
        paths.append(path)
    return paths


def write_local(out: Path, root: Path, spec: Spec, ignore: Ignore) -> None:
    """Copy the local sources into ``out`` (the context's weights/ folder), checking their sha256."""
    out.mkdir()
    for weights in spec.weights:
        if weights.kind != "local":
            continue
        path = (root / weights.source).resolve()
        relative = path.relative_to(root.resolve())
        _verify_local(weights, path)
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, ignore=ignore)
        else:
            shutil.copy2(path, target)


def _verify_local(weights: WeightSource, path: Path) -> None:
    folder = path if path.is_dir() else path.parent
    for name, want in weights.sha256.items():
        file = folder / name
        if not file.is_file():
            raise PackagerError(
                f"weights {weights.source!r}: no file {name} (named under sha256 in package.yaml)"
            )
        got = hash_file(file).hexdigest()
        if got != want:
            raise PackagerError(
                f"sha256 mismatch for {name} in {weights.source}: expected {want}, got {got}; "
                "fix sha256 in package.yaml or the file"
            )
