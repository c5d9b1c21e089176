"""Find the catalogue's entries (the installed wheel's packager/library, or the checkout's library/)."""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path

from packager._catalogue._readme import Readme, read_readme
from packager._errors import PackagerError
from packager._resources import library_dir
from packager._spec import Spec
from packager._spec_load import SPEC_FILE, read_package

_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


@dataclass(frozen=True)
class Entry:
    """One catalogue entry: its folder, validated spec and README."""

    name: str
    path: Path
    spec: Spec
    readme: Readme

    @property
    def task(self) -> str:
        """What the model does, from the README title (``# NAME: TASK``), else the spec's description."""
        return self.readme.task or self.spec.description

    @property
    def accelerator(self) -> str:
        """The accelerator it asks for, or "cpu"."""
        return self.spec.resources.accelerator or "cpu"

    @property
    def memory(self) -> str:
        """Memory, and GPU memory when it asks for some: '16Gi' or '16Gi + 24Gi GPU'."""
        gpu = self.spec.resources.gpu_memory
        return self.spec.resources.memory + (f" + {gpu} GPU" if gpu else "")

    @property
    def weights(self) -> list[str]:
        """The spec's weight sources (empty when the weights come another way, e.g. a pip package)."""
        return [w.source for w in self.spec.weights]


def library_root() -> Path:
    """The folder holding the catalogue's entries."""
    return Path(str(library_dir()))


def entry_dirs(root: Path | None = None) -> list[Path]:
    """Every folder under `root` (default: the catalogue) that holds a package.yaml, by name."""
    base = root or library_root()
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / SPEC_FILE).is_file())


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of the catalogue, by name; a broken one raises its SpecError."""
    return [load_entry(path) for path in entry_dirs(root)]


def load_entry(path: Path) -> Entry:
    """The entry in the folder `path` (its spec validated, its model file not imported)."""
    package = read_package(path)
    readme, _ = read_readme(package.root / "README.md")
    return Entry(path.name, package.root, package.spec, readme)


def find_entry(name: str, root: Path | None = None) -> Path:
    """The folder of the entry `name`; an unknown name is an error suggesting close ones."""
    known = {p.name: p for p in entry_dirs(root)}
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    close += [k for k in known if name and name in k and k not in close][: 3 - len(close)]
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "`pkg library list` shows them"
    )
    raise PackagerError(f"no catalogue entry named {name!r}; {hint}")


def resolve(name_or_path: str) -> Path:
    """An entry name, or a path to a package folder (anything holding a '/' or that exists)."""
    candidate = Path(name_or_path)
    if "/" in name_or_path or name_or_path in (".", "..") or (candidate / SPEC_FILE).is_file():
        if not (candidate / SPEC_FILE).is_file():
            raise PackagerError(
                f"{name_or_path} holds no {SPEC_FILE}; give an entry name or a package folder"
            )
        return candidate
    return find_entry(name_or_path)


def copy_entry(name: str, dest: Path) -> Path:
    """Copy the entry `name` into `dest` (created; it must not exist or be empty); return `dest`."""
    source = find_entry(name)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackagerError(f"{dest} is not an empty directory; pick a new one")
    staging = dest.parent / f".{dest.name}.init-tmp"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging, ignore=_SKIP)
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackagerError(f"cannot create {dest}: {(exc.strerror or type(exc).__name__).lower()}") from None
    return dest
