"""`pkg`: every command's happy path and error path, with the exact text users see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import packager
from packager._cli import cli
from packager._server._codec import encode_json
from packager._spec import spec_json_schema

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "cli"
COMMANDS = ["new", "predict", "schema", "serve", "test", "validate"]


def pkg(*args: Any, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, prog_name="pkg")


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def spec_file(name: str) -> str:
    return str(FIXTURES / name / "package.yaml")


def pkg_command() -> list[str]:
    """The installed `pkg` script next to this Python, else the same CLI through `python -m`."""
    script = Path(sys.executable).parent / "pkg"
    return [str(script)] if script.exists() else [sys.executable, "-m", "packager"]


# --- the group --------------------------------------------------------------------------------


def test_version() -> None:
    result = pkg("--version")
    assert result.exit_code == 0
    assert result.stdout == f"pkg {packager.__version__}\n"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_ends_with_an_example(command: str | None) -> None:
    result = pkg(*([command] if command else []), "--help")
    assert result.exit_code == 0
    lines = result.stdout.rstrip().splitlines()
    assert lines[-1].strip().startswith("$ pkg "), lines[-3:]
    assert any(line.strip() in ("Example:", "Examples:") for line in lines)


def test_unknown_command_is_a_usage_error() -> None:
    result = pkg("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.stderr


# --- validate ---------------------------------------------------------------------------------


def test_validate_ok() -> None:
    result = pkg("validate", fixture("echo"))
    assert (result.exit_code, result.stdout) == (0, "ok: echo (model.py:Model, 2 examples)\n")


def test_validate_reports_streaming_and_one_example() -> None:
    assert pkg("validate", fixture("tokens")).stdout == "ok: tokens (model.py:Model, 1 example, streams)\n"
    assert pkg("validate", fixture("typed")).stdout == "ok: typed (model.py:Model, 1 example)\n"
    assert pkg("validate", fixture("buggy")).stdout == "ok: buggy (model.py:Model, 0 examples)\n"


def test_validate_spec_only_does_not_import_the_model() -> None:
    result = pkg("validate", "--spec-only", fixture("missing_dep"))
    assert (result.exit_code, result.stdout) == (0, "ok: missing-dep (0 examples)\n")


def test_validate_one_spec_problem_is_one_line() -> None:
    result = pkg("validate", fixture("bad_name"))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {spec_file('bad_name')}: name: use 1-64 lower-case letters, digits, '.', '_' or '-', "
        "e.g. 'my-model' (got 'Bad Name')\n"
    )


def test_validate_lists_every_spec_problem() -> None:
    result = pkg("validate", fixture("two_problems"))
    file = spec_file("two_problems")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {file}: 2 problems",
        f"  - {file}: resources.cpu: expected a positive CPU count such as '2', '0.5' or '500m' (got 'lots')",
        f"  - {file}: runtime.max_queue: must be at least 1 (got 0)",
    ]


def test_validate_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = pkg("validate", missing)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {missing}: no such file or directory; pass a package directory holding package.yaml\n"
    )


def test_validate_missing_dependency_names_the_requirement() -> None:
    result = pkg("validate", fixture("missing_dep"))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: model.py line 1: needs the module 'not_a_real_module_xyz', which is not installed; "
        "add 'not-a-real-module-xyz' to requirements in package.yaml and run `pip install not-a-real-module-xyz`\n"
    )


# --- predict ----------------------------------------------------------------------------------


def test_predict_data() -> None:
    result = pkg("predict", fixture("echo"), "-d", '{"text": "hi"}')
    assert (result.exit_code, result.stdout) == (0, '{"echo":{"text":"hi"}}\n')


def test_predict_file(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("[1, 2]")
    result = pkg("predict", fixture("echo"), "-f", tmp_path / "in.json")
    assert (result.exit_code, result.stdout) == (0, '{"echo":[1,2]}\n')


def test_predict_stdin() -> None:
    result = pkg("predict", fixture("echo"), "-f", "-", input=b'{"from": "stdin"}')
    assert (result.exit_code, result.stdout) == (0, '{"echo":{"from":"stdin"}}\n')


def test_predict_example() -> None:
    result = pkg("predict", fixture("echo"), "--example", "list")
    assert (result.exit_code, result.stdout) == (0, '{"echo":[1,2,3]}\n')


def test_predict_unknown_example() -> None:
    result = pkg("predict", fixture("echo"), "--example", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no example named 'nope' in package.yaml (examples: hi, list)\n"


def test_predict_pydantic_output_is_json() -> None:
    result = pkg("predict", fixture("typed"), "--example", "hello")
    assert (result.exit_code, result.stdout) == (0, '{"text":"hellohello"}\n')


def test_predict_invalid_input() -> None:
    result = pkg("predict", fixture("typed"), "-d", '{"times": 9}')
    assert result.exit_code == 1
    assert result.stderr == (
        "error: input is invalid: text: Field required; times: Input should be less than or equal to 5\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the input with exactly one of -d/--data, -f/--file or --example"),
        (
            ["-d", "1", "--example", "hi"],
            "give the input with exactly one of -d/--data, -f/--file or --example",
        ),
        (["-d", "{nope"], "Invalid value for '-d' / '--data': not valid JSON: "),
    ],
)
def test_predict_usage_errors(args: list[str], message: str) -> None:
    result = pkg("predict", fixture("echo"), *args)
    assert result.exit_code == 2
    assert f"Error: {message}" in result.stderr


def test_predict_needs_a_path_or_url() -> None:
    result = pkg("predict", "-d", "1")
    assert result.exit_code == 2
    assert "Error: give a package PATH, or --url of a running server" in result.stderr


def test_predict_streams_text_chunks_raw() -> None:
    result = pkg("predict", fixture("tokens"), "-d", '{"words": ["a", "b"]}')
    assert (result.exit_code, result.stdout) == (0, "a b .\n")


@pytest.mark.parametrize("package", ["chunks", "async_chunks"])
def test_predict_streams_other_chunks_as_json_lines(package: str) -> None:
    result = pkg("predict", fixture(package), "-d", '{"n": 3}')
    assert (result.exit_code, result.stdout) == (0, '{"i":0}\n{"i":1}\n{"i":2}\n')


def test_predict_stream_failing_midway_keeps_the_chunks_and_ends_the_line() -> None:
    result = pkg("predict", fixture("tokens"), "-d", '{"words": ["a"], "fail": true}')
    assert result.exit_code == 1
    assert result.stdout == "a \n"
    assert result.stderr.splitlines()[0] == "error: predict raised RuntimeError: ran out of tokens"


def test_predict_model_exception_is_one_error_with_a_hint() -> None:
    result = pkg("predict", fixture("buggy"), "-d", '{"zero": 0}')
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: predict raised ZeroDivisionError: division by zero",
        "(run `pkg --traceback ...` to see where the model raised)",
    ]


def test_traceback_flag_lets_the_error_through() -> None:
    result = pkg("--traceback", "predict", fixture("buggy"), "-d", '{"zero": 0}')
    assert result.exit_code == 1
    assert isinstance(result.exception, packager.PredictError)
    assert isinstance(result.exception.__cause__, ZeroDivisionError)


def test_predict_unserializable_output(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: odd\n")
    (tmp_path / "model.py").write_text(
        "class Model:\n    def predict(self, inputs):\n        return object()\n"
    )
    result = pkg("predict", tmp_path, "-d", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: the output is not JSON-serializable: it holds a value of type object; "
        "return dicts, lists, text, numbers or a pydantic model\n"
    )


def test_predict_prints_outputs_as_the_server_encodes_them(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: raw\n")
    (tmp_path / "model.py").write_text(
        "class Model:\n    def predict(self, inputs):\n        return {'data': b'hi', 'tags': {'a'}}\n"
    )
    result = pkg("predict", tmp_path, "-d", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.encode() == encode_json({"data": b"hi", "tags": ["a"]}) + b"\n"
    assert result.stdout == '{"data":"aGk=","tags":["a"]}\n'


class FakeClient:
    def __init__(self, url: str, calls: list[Any]) -> None:
        self.url = url
        self.calls = calls

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append("closed")

    def predict(self, inputs: Any) -> Any:
        self.calls.append((self.url, inputs))
        if inputs == "fail":
            cause = ConnectionRefusedError("refused")
            raise packager.ClientError("cannot reach http://h:1: connection refused") from cause
        return {"remote": inputs}


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    module = types.ModuleType("packager._client")
    module.connect = lambda url, **options: FakeClient(url, calls)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "packager._client", module)
    return calls


def test_predict_url_sends_to_the_server(fake_client: list[Any]) -> None:
    result = pkg("predict", "--url", "http://127.0.0.1:9", "-d", '{"a": 1}')
    assert (result.exit_code, result.stdout) == (0, '{"remote":{"a":1}}\n')
    assert fake_client == [("http://127.0.0.1:9", {"a": 1}), "closed"]


def test_predict_url_with_an_example_reads_it_from_the_package(fake_client: list[Any]) -> None:
    result = pkg("predict", fixture("echo"), "--url", "http://h:1", "--example", "hi")
    assert (result.exit_code, result.stdout) == (0, '{"remote":{"text":"hi"}}\n')


def test_predict_url_example_needs_the_package(fake_client: list[Any]) -> None:
    result = pkg("predict", "--url", "http://h:1", "--example", "hi")
    assert result.exit_code == 2
    assert "Error: --example needs the package PATH to read its package.yaml" in result.stderr


def test_predict_url_client_error(fake_client: list[Any]) -> None:
    result = pkg("predict", "--url", "http://h:1", "-d", '"fail"')
    assert result.exit_code == 1
    assert result.stderr == "error: cannot reach http://h:1: connection refused\n"  # no traceback hint


# --- serve ------------------------------------------------------------------------------------


def test_serve_runs_the_server_and_exits_with_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    module = types.ModuleType("packager._server")
    module.serve = lambda path, host, port, log_level: calls.append((path, host, port, log_level)) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "packager._server", module)
    assert pkg("serve", fixture("echo")).exit_code == 3
    args = ("--host", "0.0.0.0", "--port", "9000", "--log-level", "warning")
    assert pkg("serve", fixture("echo"), *args).exit_code == 3
    assert calls == [
        (fixture("echo"), "127.0.0.1", 8080, "info"),
        (fixture("echo"), "0.0.0.0", 9000, "warning"),
    ]


def test_serve_rejects_a_bad_port() -> None:
    result = pkg("serve", fixture("echo"), "--port", "70000")
    assert result.exit_code == 2
    assert "70000 is not in the range 0<=x<=65535" in result.stderr


# --- schema -----------------------------------------------------------------------------------


def test_schema_of_a_typed_model() -> None:
    result = pkg("schema", fixture("typed"))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document == packager.load(fixture("typed")).schema()
    assert document["input"]["required"] == ["text"]
    assert document["output"]["properties"] == {"text": {"title": "Text", "type": "string"}}
    assert (document["streaming"], document["batching"]) == (False, False)


def test_schema_does_not_build_the_model(tmp_path: Path) -> None:
    (tmp_path / "package.yaml").write_text("spec_version: 1\nname: heavy\n")
    (tmp_path / "model.py").write_text(
        "class Model:\n    def __init__(self):\n        raise RuntimeError('must not be built')\n"
        "    def predict(self, inputs: int) -> str:\n        return ''\n"
    )
    result = pkg("schema", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input"] == {"type": "integer"}


def test_schema_of_the_spec() -> None:
    result = pkg("schema", "--spec")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == spec_json_schema()


@pytest.mark.parametrize("args", [[], ["--spec", "x"]])
def test_schema_needs_exactly_one_of_path_or_spec(args: list[str]) -> None:
    result = pkg("schema", *args)
    assert result.exit_code == 2
    assert "Error: give a package PATH, or --spec for the schema of package.yaml" in result.stderr


def test_schema_error_path() -> None:
    result = pkg("schema", fixture("bad_name"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {spec_file('bad_name')}: name: ")


# --- test -------------------------------------------------------------------------------------


def test_test_runs_every_example_and_compares_outputs() -> None:
    result = pkg("test", fixture("checked"))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "ok   exact",
        "ok   close",
        "ok   no-output",
        'FAIL wrong: expected {"double":7,"third":1.0,"even":false}, got {"double":6,"third":1.0,"even":false}',
        "FAIL raises: error: predict raised ZeroDivisionError: division by zero",
        "3 passed, 2 failed",
    ]


def test_test_selected_examples_pass() -> None:
    result = pkg("test", fixture("checked"), "-e", "close", "-e", "exact")
    assert (result.exit_code, result.stdout) == (0, "ok   exact\nok   close\n2 passed, 0 failed\n")


def test_test_joins_a_text_stream() -> None:
    result = pkg("test", fixture("tokens"))
    assert (result.exit_code, result.stdout) == (0, "ok   two\n1 passed, 0 failed\n")


def test_test_unknown_example() -> None:
    result = pkg("test", fixture("checked"), "-e", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no example named 'nope' in package.yaml (examples: exact, close, no-output, wrong, raises)\n"
    )


def test_test_without_examples() -> None:
    result = pkg("test", fixture("buggy"))
    assert result.exit_code == 1
    assert result.stderr == "error: package.yaml has no examples to test; add some under 'examples:'\n"


# --- new --------------------------------------------------------------------------------------


def test_new_scaffolds_a_working_package(tmp_path: Path) -> None:
    target = tmp_path / "My Model"
    result = pkg("new", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"created {target / 'package.yaml'}",
        f"created {target / 'model.py'}",
    ]
    assert packager.read_package(target).spec.name == "my-model"
    assert pkg("validate", target).stdout == "ok: my-model (model.py:Model, 1 example)\n"
    assert pkg("predict", target, "--example", "hello").stdout == '{"text":"echo: hello","length":5}\n'
    model = packager.load(target)
    assert model.predict(model.example("hello")).model_dump() == model.spec.example("hello").output  # type: ignore[union-attr]


def test_new_with_a_name(tmp_path: Path) -> None:
    assert pkg("new", tmp_path / "x", "--name", "sentiment").exit_code == 0
    assert packager.read_package(tmp_path / "x").spec.name == "sentiment"


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("# mine\n")
    result = pkg("new", tmp_path)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: refusing to overwrite {tmp_path / 'model.py'}; pick a new directory or remove them\n"
    )
    assert (tmp_path / "model.py").read_text() == "# mine\n"
    assert not (tmp_path / "package.yaml").exists()


def test_new_rejects_a_bad_name(tmp_path: Path) -> None:
    result = pkg("new", tmp_path / "x", "--name", "Not Valid")
    assert result.exit_code == 2
    assert "Invalid value for '--name': 'Not Valid': use 1-64 lower-case letters" in result.stderr
    assert not (tmp_path / "x").exists()


# --- errors that are bugs -----------------------------------------------------------------------


def test_a_bug_is_not_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Any) -> Any:
        raise RuntimeError("bug in packager")

    monkeypatch.setattr("packager._cli.read_package", broken)
    result = pkg("validate", fixture("echo"))
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    assert "error:" not in result.stderr


def run_pkg(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code] if code else [*pkg_command(), *args]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_real_process_bad_spec_is_one_line_and_exit_1() -> None:
    done = run_pkg("validate", fixture("bad_name"))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {spec_file('bad_name')}: name: use 1-64 lower-case letters")


def test_real_process_python_m_packager() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "packager", "validate", fixture("echo")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ok: echo (model.py:Model, 2 examples)\n")


def test_real_process_bug_keeps_its_traceback() -> None:
    code = (
        "import sys, packager._cli as cli\n"
        "def broken(path):\n    raise RuntimeError('bug in packager')\n"
        "cli.read_package = broken\n"
        f"sys.argv = ['pkg', 'validate', {fixture('echo')!r}]\n"
        "cli.main()\n"
    )
    done = run_pkg(code=code)
    assert done.returncode == 1
    assert "Traceback (most recent call last):" in done.stderr
    assert done.stderr.rstrip().endswith("RuntimeError: bug in packager")
    assert "error:" not in done.stderr


@pytest.mark.server
def test_real_serve_and_predict_url(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [*pkg_command(), "serve", fixture("echo"), "--port", str(port)], stdout=log, stderr=log
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/v1/models/echo", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        result = pkg("predict", fixture("echo"), "--url", url, "--example", "list")
        assert (result.exit_code, result.stdout) == (0, '{"echo":[1,2,3]}\n')
        result = pkg("predict", "--url", f"{url}/v1/models/nope", "-d", "1")
        assert result.exit_code == 1
        assert (
            result.stderr == f"error: {url} answered 404: no model named 'nope'; this server serves 'echo'\n"
        )
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
        log.close()
