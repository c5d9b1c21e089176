"""Import a package's model file, turning every failure into a ModelImportError or ContractError."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from packager._errors import ContractError, ModelImportError

# Import names whose pip distribution is spelt differently; the rest are usually the same.
_DISTRIBUTIONS = {
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "skimage": "scikit-image",
    "google.protobuf": "protobuf",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "whisper": "openai-whisper",
    "clip": "openai-clip",
    "attr": "attrs",
    "jwt": "pyjwt",
    "faiss": "faiss-cpu",
}


def import_model_class(root: Path, file: str, class_name: str) -> type:
    """Import `file` from the package at `root` and return its `class_name`."""
    module = _import_file(root, root / file, file)
    found = getattr(module, class_name, None)
    if found is None:
        classes = sorted(
            n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == module.__name__
        )
        hint = f"; it defines {', '.join(classes)}: set model.class in package.yaml" if classes else ""
        raise ContractError(f"{file} defines no class {class_name!r}{hint}; or add `class {class_name}:`")
    if not inspect.isclass(found):
        raise ContractError(
            f"{file}: {class_name} is a {type(found).__name__}, not a class; define `class {class_name}:`"
        )
    return found


def _import_file(root: Path, path: Path, shown: str) -> ModuleType:
    if not path.is_file():
        raise ModelImportError(f"{shown}: file not found in {root}; create it or fix model.file", file=shown)
    name = f"packager_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # only for names without a .py suffix
        raise ModelImportError(f"{shown}: cannot be imported as Python; use a .py file", file=shown)
    module = importlib.util.module_from_spec(spec)
    # Sibling modules in the package (helpers.py next to model.py) must be importable.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = _relative(root, exc.filename) or shown
        raise ModelImportError(
            f"{where} line {exc.lineno}: syntax error: {exc.msg}; fix the code there",
            file=where,
            line=exc.lineno,
        ) from None
    except ImportError as exc:
        sys.modules.pop(name, None)
        raise _missing_dependency(root, shown, exc) from None
    except Exception as exc:  # anything model code raises while importing is the model's problem
        sys.modules.pop(name, None)
        where, line = _blame(root, exc, shown)
        raise ModelImportError(
            f"{where} line {line}: importing the model raised {type(exc).__name__}: {exc}",
            file=where,
            line=line,
        ) from exc
    return module


def _missing_dependency(root: Path, shown: str, exc: ImportError) -> ModelImportError:
    where, line = _blame(root, exc, shown)
    missing = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not missing:
        return ModelImportError(
            f"{where} line {line}: {exc}; check the installed version of that package", file=where, line=line
        )
    top = missing.split(".")[0]
    requirement = _DISTRIBUTIONS.get(missing) or _DISTRIBUTIONS.get(top) or top.replace("_", "-")
    return ModelImportError(
        f"{where} line {line}: needs the module {missing!r}, which is not installed; "
        f"add '{requirement}' to requirements in package.yaml and run `pip install {requirement}`",
        file=where,
        line=line,
        requirement=requirement,
    )


def _blame(root: Path, exc: BaseException, shown: str) -> tuple[str, int | None]:
    """The deepest traceback frame inside the package: the user's line that failed."""
    blamed: tuple[str, int | None] = (shown, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        rel = _relative(root, frame.filename)
        if rel:
            blamed = (rel, frame.lineno)
    return blamed


def _relative(root: Path, filename: Any) -> str | None:
    if not filename:
        return None
    try:
        return str(Path(filename).resolve().relative_to(root.resolve()))
    except ValueError:
        return None
