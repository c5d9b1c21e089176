"""Everything CI checks about an entry without loading its weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

from packager._catalogue._readme import read_readme
from packager._errors import PackagerError
from packager._spec_load import read_package


def entry_problems(path: Path) -> list[str]:
    """What is wrong with the entry at `path`: spec, README, build context; empty when nothing is."""
    try:
        package = read_package(path)
    except PackagerError as exc:
        return [f"package.yaml: {exc}"]
    _, readme = read_readme(package.root / "README.md")
    problems = [f"README.md: {p}" for p in readme]
    spec = package.spec
    if spec.name != package.root.name:
        problems.append(
            f"package.yaml: name is {spec.name!r}; an entry's name must be its folder's, {package.root.name!r}"
        )
    if not spec.description:
        problems.append("package.yaml: description is empty; say in one line what the model does")
    if not spec.examples:
        problems.append("package.yaml: no examples; add at least one (with its output where it is stable)")
    problems += [
        f"package.yaml: weights {w.source!r} is not pinned; add @<commit sha>"
        for w in spec.weights
        if _unpinned(w.source)
    ]
    problems += _context_problems(path)
    return problems


def _unpinned(source: str) -> bool:
    if not source.startswith("hf://"):
        return False
    _, at, revision = source.partition("@")
    return not at or len(revision) != 40 or any(c not in "0123456789abcdef" for c in revision)


def _context_problems(path: Path) -> list[str]:
    """Render the entry's build context into a temporary folder (the Dockerfile `pkg build` uses)."""
    from packager._build._write import write_context  # build side, loaded on use

    with tempfile.TemporaryDirectory(prefix="pkg-entry-") as tmp:
        try:
            write_context(read_package(path), Path(tmp) / "context")
        except PackagerError as exc:
            return [f"build context: {exc}"]
    return []
