"""The in-image runtime must work on the oldest Python a spec may ask for (3.9).

ruff and vermin check the syntax statically; this runs the real thing: the
core pipeline and the server app under a Python 3.9 interpreter, in a fresh
venv holding only the runtime dependencies.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DEPS = [
    "pydantic>=2.6",
    "pyyaml",
    "eval-type-backport",
    "uvicorn",
    "orjson",
    "packaging",
    "msgpack",
    "prometheus-client",
    "httpx",
]

SCRIPT = """
import asyncio, sys
import packager, packager._server
assert sys.version_info[:2] == (3, 9), sys.version
fixtures = sys.argv[1]
typed = packager.load(fixtures + "/typed")
assert typed.predict({"text": "hi"}).text == "HI!"
streaming = packager.load(fixtures + "/async_model")
assert list(streaming.predict({"stream": True, "n": 3})) == [0, 1, 2]
assert packager.load(fixtures + "/batch_only").predict(2) == 20
forbidden = {"click", "jinja2", "docker", "rich"} & set(sys.modules)
assert not forbidden, forbidden
print("ok")
"""


def _python39() -> str | None:
    """A Python 3.9 that actually runs (a pyenv shim for a version not enabled exits 127)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")), reverse=True)
    candidates += [found] if (found := shutil.which("python3.9")) else []
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == b"(3, 9)":
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_runtime_runs_on_python_3_9(tmp_path: Path) -> None:
    python = _python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter on this machine (pyenv install 3.9 to run this)")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *RUNTIME_DEPS], check=True, timeout=500)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fixtures = str(ROOT / "tests" / "fixtures" / "packages")
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SCRIPT, fixtures],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert sys.version_info >= (3, 9)
