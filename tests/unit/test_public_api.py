"""The public API is exactly what `import packager` exports, and every error class is real."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import packager
from packager import _errors

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "packager"

# Changing this set changes the public API: update docs/index.md (and the docs of the new name) too.
PUBLIC = {
    "__version__",
    "load",
    "build",
    "run",
    "ModelHandle",
    "connect",
    "RemoteModel",
    "read_package",
    "reload_cache",
    "Package",
    "Spec",
    "Secrets",
    "SpecIssue",
    "PackagerError",
    "SpecError",
    "ModelLoadError",
    "ModelImportError",
    "ContractError",
    "SecretError",
    "InputError",
    "PredictError",
    "PredictTimeout",
    "OverloadedError",
    "NotReadyError",
    "SlotUnavailable",
    "ClientError",
}


def error_classes() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(_errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == _errors.__name__
    }


def test_all_is_the_documented_public_api() -> None:
    assert set(packager.__all__) == PUBLIC
    assert len(packager.__all__) == len(set(packager.__all__))
    for name in packager.__all__:
        assert hasattr(packager, name), name


def test_public_names_are_documented() -> None:
    docs = "\n".join(
        p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    )
    missing = [name for name in PUBLIC - {"__version__"} if not re.search(rf"\b{re.escape(name)}\b", docs)]
    assert not missing


def test_every_error_is_exported_and_derives_from_packager_error() -> None:
    for name, cls in error_classes().items():
        assert name in packager.__all__, name
        assert getattr(packager, name) is cls
        assert issubclass(cls, packager.PackagerError), name


def test_every_error_is_raised_somewhere() -> None:
    code = {
        path: path.read_text(encoding="utf-8")
        for path in SOURCE.rglob("*.py")
        if path.name != "__init__.py" or path.parent != SOURCE
    }
    code.pop(SOURCE / "_errors.py")
    for name in error_classes():
        used = re.compile(rf"(raise\s+{name}\b|\b{name}\(|=\s*{name}\b)")
        assert any(used.search(text) for text in code.values()), f"{name} is never raised in packager/"


def test_private_modules_stay_private() -> None:
    assert all(not name.startswith("_") or name == "__version__" for name in packager.__all__)
    assert packager.load.__module__ == "packager._handle"
