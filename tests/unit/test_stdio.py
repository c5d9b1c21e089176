"""What model code prints never reaches stdout, where `pkg` writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from packager._cli import cli

ROOT = Path(__file__).resolve().parents[2]
CHATTY = str(ROOT / "tests" / "fixtures" / "packages" / "chatty")
SAYS = [
    b"chatty: importing",
    b"chatty: fd 1 while importing",
    b"chatty: building",
    b"chatty: loading",
    b"chatty: fd 1 while loading",
    b"chatty: predicting",
    b"chatty: fd 1 while predicting",
]


def pkg(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "packager", *args], capture_output=True, cwd=ROOT, env=env, timeout=60
    )


def test_pkg_predict_prints_only_the_json_on_stdout() -> None:
    done = pkg("predict", CHATTY, "-d", '{"text": "hi"}')
    assert done.returncode == 0, done.stderr
    assert done.stdout == b'{"text":"hi"}\n'
    assert [line for line in done.stderr.splitlines() if line.startswith(b"chatty")] == SAYS


def test_a_stream_printing_between_chunks_keeps_stdout_clean() -> None:
    done = pkg("predict", CHATTY, "-d", '{"text": "a b", "stream": true}')
    assert done.returncode == 0, done.stderr
    assert done.stdout == b'{"word":"a"}\n{"word":"b"}\n'
    assert done.stderr.count(b"chatty: fd 1 between chunks") == 2


def test_pkg_schema_validate_and_test_keep_stdout_for_their_own_output() -> None:
    schema = pkg("schema", CHATTY)
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["input"]["title"] == "Request"
    assert b"chatty: importing" in schema.stderr
    validate = pkg("validate", CHATTY)
    assert validate.stdout == b"ok: chatty (model.py:Model, 1 example)\n"
    tested = pkg("test", CHATTY)
    assert (tested.returncode, tested.stdout) == (0, b"ok   hi\n1 passed, 0 failed\n")
    assert b"chatty: predicting" in tested.stderr


def test_in_process_cli_without_a_real_stdout_also_keeps_it_clean() -> None:
    before = sys.stdout
    result = CliRunner().invoke(cli, ["predict", CHATTY, "-d", '{"text": "hi"}'], prog_name="pkg")
    assert result.exit_code == 0, result.output
    assert result.stdout == '{"text":"hi"}\n'
    assert "chatty: building" in result.stderr
    assert sys.stdout is before
