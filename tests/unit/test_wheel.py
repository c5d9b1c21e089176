"""The built wheel works on its own: installed in a fresh venv, `pkg` runs and finds its resources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "cli" / "echo"
CHECK = """
from importlib.resources import files
import packager, packager._resources as r
root = files("packager")
assert (root / "templates").is_dir() and (root / "library").is_dir(), list(root.iterdir())
assert (root / "templates" / "package.yaml.jinja").is_file()
assert r.templates_dir() == root / "templates" and r.library_dir() == root / "library"
assert "site-packages" in packager.__file__, packager.__file__
print("resources ok")
"""


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel built from this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"  # a copy, so the build never writes into the checkout
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv*", ".git", "__pycache__", ".*_cache", ".hypothesis", ".cache", "dist", "build"
        ),
    )
    run(
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        work / "dist",
        source,
        cwd=work,
    )
    wheels = list((work / "dist").glob("packager-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=work)
    run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        wheels[0],
        cwd=work,
    )
    return venv


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pkg_from_the_wheel_validates_a_package(installed: Path, tmp_path: Path) -> None:
    out = run(installed / "bin" / "pkg", "validate", FIXTURE, cwd=tmp_path)
    assert out == "ok: echo (model.py:Model, 2 examples)\n"


@pytest.mark.slow
def test_wheel_ships_templates_and_library(installed: Path, tmp_path: Path) -> None:
    assert run(installed / "bin" / "python", "-c", CHECK, cwd=tmp_path) == "resources ok\n"
    shipped = installed.glob("lib/python*/site-packages/packager/library/minilm/package.yaml")
    assert list(shipped), "library/minilm is missing from the wheel"


@pytest.mark.slow
def test_pkg_new_and_predict_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    run(installed / "bin" / "pkg", "new", "fresh", cwd=tmp_path)
    out = run(installed / "bin" / "pkg", "predict", "fresh", "--example", "hello", cwd=tmp_path)
    assert out == '{"text":"echo: hello","length":5}\n'
