"""`pkg predict` / `pkg test` over the handle: checked --device values, and models that call sys.exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from packager._cli import cli

ROOT = Path(__file__).resolve().parents[2]
TYPED = str(ROOT / "tests" / "fixtures" / "packages" / "typed")


def pkg(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="pkg")


@pytest.mark.parametrize("command", ["predict", "test"])
def test_a_device_that_is_not_one_is_one_error_line(command: str) -> None:
    extra = ["-d", '{"text": "hi"}'] if command == "predict" else []
    result = pkg(command, TYPED, *extra, "--device", "gpu0")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: --device: 'gpu0' is not a device; use cpu, cuda, cuda:N (N = 0, 1, ...) or mps\n"
    )
    assert result.stdout == ""


def model_package(tmp_path: Path, source: str) -> str:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: exits\n")
    (tmp_path / "model.py").write_text(source)
    return str(tmp_path)


def test_a_model_exiting_at_import_is_an_error_not_a_silent_exit(tmp_path: Path) -> None:
    root = model_package(tmp_path, "import sys\nsys.exit(0)\n")
    result = pkg("predict", root, "-d", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: model.py line 2: importing the model called sys.exit(0) (SystemExit); "
        "model code must raise an exception instead of exiting the process"
    )


def test_a_model_exiting_in_predict_is_a_predict_error(tmp_path: Path) -> None:
    root = model_package(
        tmp_path, "import sys\nclass Model:\n    def predict(self, x):\n        sys.exit(0)\n"
    )
    result = pkg("predict", root, "-d", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: predict raised SystemExit (0); model code must not exit the process"
    )
    assert result.stdout == ""
