"""The in-image runtime imports only what serving needs: never click, jinja2, docker or rich.

uvicorn's own package __init__ imports click (for its CLI), so the module that
runs uvicorn is checked for the other three, and is imported only when a
server actually starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("click", "jinja2", "docker", "rich")


def imported_after(*modules: str) -> list[str]:
    script = (
        f"import sys, {', '.join(modules)}\n"
        f"print(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)) or 'clean')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(",")


def test_serving_modules_import_no_build_or_cli_dependencies() -> None:
    modules = [
        "packager._server",
        "packager._server.__main__",
        "packager._server._app",
        "packager._client",
        "packager._runners",
    ]
    assert imported_after(*modules) == ["clean"]


def test_running_uvicorn_brings_only_click_which_uvicorn_itself_imports() -> None:
    assert imported_after("packager._server._main") == ["click"]
    assert imported_after("uvicorn") == ["click"]


def test_the_client_does_not_import_the_server_stack() -> None:
    script = "import sys, packager._client; print(sorted(m for m in ('uvicorn', 'prometheus_client') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
