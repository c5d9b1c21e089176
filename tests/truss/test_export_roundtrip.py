"""`pkg export truss` checked by the real truss: its config loader and its in-process predict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import packager
from packager._cli import cli

pytestmark = pytest.mark.truss
REVERSE = Path(__file__).parents[1] / "fixtures" / "truss" / "reverse"
GREETER = Path(__file__).parents[1] / "fixtures" / "truss" / "greeter"

TRUSS_SIDE = """
import json, sys
from pathlib import Path
import truss
from truss.base.truss_config import TrussConfig
config = TrussConfig.from_yaml(Path(sys.argv[1]) / "config.yaml")
config.validate_forbid_extra()  # what truss push checks: no key truss does not know
import os
os.environ.update(config.environment_variables)  # as truss's docker run sets them (in-process does not)
handle = truss.load(sys.argv[1])
print(json.dumps({"example": config.model_metadata["example_model_input"],
                  "output": handle.predict(json.loads(sys.argv[2]))}))
"""


def _truss_predict(python: Path, truss_dir: Path, value: object) -> dict:
    done = subprocess.run(
        [str(python), "-c", TRUSS_SIDE, str(truss_dir), json.dumps(value)],
        capture_output=True, text=True, timeout=300, cwd=truss_dir.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_exported_truss_passes_truss_and_predicts_the_same(truss_python: Path, tmp_path: Path) -> None:
    out = tmp_path / "reverse-truss"
    result = CliRunner().invoke(cli, ["export", "truss", str(REVERSE), str(out)])
    assert result.exit_code == 0, result.output
    value = {"text": "hello truss world"}
    expected = packager.load(REVERSE).predict(value)
    answer = _truss_predict(truss_python, out, value)
    assert answer == {"example": value, "output": expected}


def test_export_refuses_a_non_empty_target_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(cli, ["export", "truss", str(REVERSE), str(out)])
    assert result.exit_code == 1
    assert result.output == f"error: {out} exists and is not empty; give a new directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_truss_itself_runs_our_truss_fixture_like_packager(truss_python: Path) -> None:
    # The fixture is a real truss: truss's own loader gives what packager.load gives.
    answer = _truss_predict(truss_python, GREETER, {"name": "world"})
    model = packager.load(GREETER)
    try:
        assert answer["output"] == model.predict({"name": "world"})
    finally:
        model.close()
