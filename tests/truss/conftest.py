"""The real `truss` package from PyPI, in a throwaway venv cached under ~/.cache/packager-tests.

Without it (no network, no venv module) the tests fail under CI=true and skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TRUSS_VERSION = "0.18.35"  # pinned: the held-out trusses and the config loader come from this wheel
VENV = Path.home() / ".cache" / "packager-tests" / f"truss-venv-{TRUSS_VERSION}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"truss {TRUSS_VERSION} cannot be set up: {reason}")
    pytest.skip(f"truss {TRUSS_VERSION} cannot be set up: {reason}")


def _create() -> None:
    staging = VENV.with_name(VENV.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, capture_output=True)
    pip = [str(staging / "bin" / "python"), "-m", "pip", "install", "-q", f"truss=={TRUSS_VERSION}"]
    subprocess.run(pip, check=True, capture_output=True, timeout=900)
    staging.rename(VENV)  # run as `python -m`, so the moved venv's scripts are never used


@pytest.fixture(scope="session")
def truss_python() -> Path:
    """The venv's python, with truss importable."""
    python = VENV / "bin" / "python"
    if not python.exists():
        try:
            _create()
        except (subprocess.SubprocessError, OSError) as exc:
            _unavailable(f"{exc.__class__.__name__}: {exc}")
    check = subprocess.run([str(python), "-c", "import truss"], capture_output=True, text=True)
    if check.returncode != 0:
        _unavailable(check.stderr.strip()[-300:])
    return python


@pytest.fixture(scope="session")
def truss_test_data(truss_python: Path) -> Path:
    """truss's own test trusses (truss/tests/test_data), used in place as a held-out set."""
    found = sorted(VENV.glob("lib/python3*/site-packages/truss/tests/test_data"))
    if not found:
        _unavailable("the truss wheel has no tests/test_data")
    return found[0]
