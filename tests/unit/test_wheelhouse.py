"""`pkg wheelhouse`: the pip download command for an image's Python and platform (no network)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from packager import PackagerError, read_package
from packager._build import _wheelhouse
from packager._build._context import RUNTIME_REQUIREMENTS
from packager._cli import cli


def make(tmp_path: Path, **fields: object) -> Path:
    root = tmp_path / "pkg"
    root.mkdir()
    spec = {"spec_version": 1, "name": "wh", "python_version": "3.12", **fields}
    (root / "package.yaml").write_text(yaml.safe_dump(spec))
    (root / "model.py").write_text("class Model:\n    def predict(self, inputs):\n        return inputs\n")
    return root


def test_platform_tags_cover_manylinux_for_the_architecture() -> None:
    tags = _wheelhouse.platform_tags("linux/arm64")
    assert tags[0] == "manylinux_2_36_aarch64"
    assert {"manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"} <= set(tags)
    assert not any("x86_64" in tag for tag in tags)
    with pytest.raises(PackagerError, match=r"--platform 'linux/s390x': pkg wheelhouse knows"):
        _wheelhouse.platform_tags("linux/s390x")


def test_fill_downloads_the_contexts_requirements_for_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_stream(command: list[str], out: io.StringIO) -> int:
        seen["command"] = command
        seen["requirements"] = Path(command[command.index("--requirement") + 1]).read_text()
        return 0

    monkeypatch.setattr(_wheelhouse, "_stream", fake_stream)
    root = make(tmp_path, requirements=["torch==2.13.0", "numpy"])
    pin = tmp_path / "pin.txt"
    pin.write_text("torch==2.13.0\n")
    dest = _wheelhouse.fill_wheelhouse(read_package(root), tmp_path / "wh", constraint=pin)
    command = seen["command"]
    assert isinstance(command, list)
    assert dest == (tmp_path / "wh").resolve()
    assert dest.is_dir()
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--abi") : command.index("--abi") + 2] == ["--abi", "cp312"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert command[command.index("--constraint") + 1] == str(pin)
    assert seen["requirements"] == "\n".join([*RUNTIME_REQUIREMENTS, "torch==2.13.0", "numpy"]) + "\n"


def test_no_torch_index_and_a_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(_wheelhouse, "_stream", lambda command, out: calls.append(command) or 1)
    root = make(tmp_path, requirements=["torch==2.13.0"])
    result = CliRunner().invoke(
        cli, ["wheelhouse", str(root), str(tmp_path / "wh"), "--no-torch-index"], prog_name="pkg"
    )
    assert result.exit_code == 1
    assert "--extra-index-url" not in calls[0]
    assert result.output.splitlines()[-1].startswith(
        f"error: pip could not download every wheel into {(tmp_path / 'wh').resolve()} (exit code 1;"
    )
