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
from packager._isolation import Namespace

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
    return import_model(root, file, class_name)[0]


def import_model(root: Path, file: str, class_name: str) -> tuple[type, Namespace]:
    """Import `file` into a fresh private namespace; return its `class_name` and the namespace."""
    module, namespace = _import_file(root, root / file, file)
    try:
        return _find_class(module, file, class_name), namespace
    except ContractError:
        namespace.forget()
        raise


def _find_class(module: ModuleType, file: str, class_name: str) -> type:
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


def _import_file(root: Path, path: Path, shown: str) -> tuple[ModuleType, Namespace]:
    if not path.is_file():
        raise ModelImportError(f"{shown}: file not found in {root}; create it or fix model.file", file=shown)
    if path.suffix != ".py":
        raise ModelImportError(f"{shown}: cannot be imported as Python; use a .py file", file=shown)
    namespace = Namespace(root, path)
    spec = namespace.model_spec(path)
    if spec is None or spec.loader is None:  # never for a .py file
        raise ModelImportError(f"{shown}: cannot be imported as Python; use a .py file", file=shown)
    module = importlib.util.module_from_spec(spec)
    sys.modules[namespace.prefix] = module
    try:
        with namespace.loading():
            spec.loader.exec_module(module)
    except BaseException as exc:
        namespace.forget()
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _import_error(root, shown, exc, namespace) from (None if _expected(exc) else exc)
    return module, namespace


def _expected(exc: BaseException) -> bool:
    """Failures whose message says it all (no traceback of packager's import machinery needed)."""
    return isinstance(exc, (SyntaxError, ImportError))


def _import_error(root: Path, shown: str, exc: BaseException, namespace: Namespace) -> ModelImportError:
    if isinstance(exc, SyntaxError):
        # a module outside the package (an installed one) is named by its full path, not blamed
        # on model.py, whose own line numbers would then point at the wrong code
        where = _relative(root, exc.filename) or (str(exc.filename) if exc.filename else shown)
        return ModelImportError(
            f"{where} line {exc.lineno}: syntax error: {exc.msg}; fix the code there",
            file=where,
            line=exc.lineno,
        )
    if isinstance(exc, ImportError):
        return _missing_dependency(root, shown, exc, namespace)
    where, line = _blame(root, exc, shown)
    if isinstance(exc, SystemExit):
        return ModelImportError(
            f"{where} line {line}: importing the model called sys.exit({exc.code!r}) (SystemExit); "
            "model code must raise an exception instead of exiting the process",
            file=where,
            line=line,
        )
    return ModelImportError(
        f"{where} line {line}: importing the model raised {type(exc).__name__}: {exc}",
        file=where,
        line=line,
    )


def _missing_dependency(root: Path, shown: str, exc: ImportError, namespace: Namespace) -> ModelImportError:
    where, line = _blame(root, exc, shown)
    missing = getattr(exc, "name", None)
    if missing and namespace.owns(missing):  # `from helpers import nothere`: the package's own module
        text = str(exc).replace(f"'{missing}'", repr(namespace.public(missing)))
        return ModelImportError(f"{where} line {line}: {text}; fix the import", file=where, line=line)
    if not isinstance(exc, ModuleNotFoundError) or not missing:
        return ModelImportError(
            f"{where} line {line}: {exc}; check the installed version of that package", file=where, line=line
        )
    top = missing.split(".")[0]
    if namespace.is_local(top):
        return ModelImportError(
            f"{where} line {line}: the package has no module {missing!r}; add it or fix the import",
            file=where,
            line=line,
        )
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
