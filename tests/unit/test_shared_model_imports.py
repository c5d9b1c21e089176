"""packager.diffusion and packager.clip (shared by catalogue entries) import no heavy library."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "transformers", "PIL", "numpy")


@pytest.mark.parametrize("module", ["packager.diffusion", "packager.clip"])
def test_importing_the_shared_model_code_loads_no_heavy_library(module: str) -> None:
    code = f"import sys, {module}; print(*[name in sys.modules for name in {HEAVY!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * len(HEAVY)
