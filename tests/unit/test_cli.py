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
import packager._server._settings  # imported for real before a test stands in for packager._server
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


def test_bare_pkg_shows_the_help() -> None:
    result = pkg()
    assert "Usage: pkg [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "error:" not in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = pkg("frobnicate")
    assert result.exit_code == 1
    assert result.stderr == "error: No such command 'frobnicate' (see `pkg --help`)\n"


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
        ([], "give the input with one of -d/--data, -f/--file or --example, and/or -i NAME=VALUE fields"),
        (
            ["-d", "1", "--example", "hi"],
            "give the input with one of -d/--data, -f/--file or --example, and/or -i NAME=VALUE fields",
        ),
        (["-d", "{nope"], "Invalid value for '-d' / '--data': not valid JSON: "),
    ],
)
def test_predict_usage_errors(args: list[str], message: str) -> None:
    result = pkg("predict", fixture("echo"), *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.endswith(" (see `pkg predict --help`)\n")


def test_predict_needs_a_path_or_url() -> None:
    result = pkg("predict", "-d", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: give a package PATH, or --url of a running server (see `pkg predict --help`)\n"
    )


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
    assert result.stderr == (
        "error: predict raised RuntimeError: ran out of tokens "
        "(run `pkg --traceback ...` to see where the model raised)\n"
    )


def test_predict_model_exception_is_one_error_with_a_hint() -> None:
    result = pkg("predict", fixture("buggy"), "-d", '{"zero": 0}')
    assert result.exit_code == 1
    assert result.stderr == (
        "error: predict raised ZeroDivisionError: division by zero "
        "(run `pkg --traceback ...` to see where the model raised)\n"
    )


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
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --example needs the package PATH to read its package.yaml")


def test_predict_url_with_a_path_but_no_example_is_an_error(fake_client: list[Any]) -> None:
    result = pkg("predict", fixture("echo"), "--url", "http://h:1", "-d", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: with --url the server runs the model, so PATH is only read for --example; "
        "drop PATH, or drop --url to run the package here (see `pkg predict --help`)\n"
    )
    assert fake_client == []


def test_predict_url_client_error(fake_client: list[Any]) -> None:
    result = pkg("predict", "--url", "http://h:1", "-d", '"fail"')
    assert result.exit_code == 1
    assert result.stderr == "error: cannot reach http://h:1: connection refused\n"  # no traceback hint


# --- serve ------------------------------------------------------------------------------------


def test_serve_runs_the_server_and_exits_with_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    module = types.ModuleType("packager._server")

    def serve(path: str, host: str, port: int, log_level: str, reload: bool) -> int:
        calls.append((path, host, port, log_level, reload))
        return 3

    module.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "packager._server", module)
    assert pkg("serve", fixture("echo")).exit_code == 3
    args = ("--host", "0.0.0.0", "--port", "9000", "--log-level", "warning", "--reload")
    assert pkg("serve", fixture("echo"), *args).exit_code == 3
    assert calls == [
        (fixture("echo"), "127.0.0.1", 8080, "info", False),
        (fixture("echo"), "0.0.0.0", 9000, "warning", True),
    ]


def test_serve_rejects_a_bad_port() -> None:
    result = pkg("serve", fixture("echo"), "--port", "70000")
    assert result.exit_code == 1
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
    assert result.exit_code == 1
    assert result.stderr == (
        "error: give a package PATH, or --spec for the schema of package.yaml (see `pkg schema --help`)\n"
    )


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
    assert result.exit_code == 1
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


# --- every failure: one line on stderr, exit code 1 ---------------------------------------------

TYPED_MODEL = (
    "from pydantic import BaseModel\n\n"
    "class In(BaseModel):\n    text: str\n    times: int = 1\n\n"
    "class Out(BaseModel):\n    text: str\n\n"
    "class Model:\n    def predict(self, inputs: In) -> Out:\n        return Out(text=inputs.text)\n"
)


def make_package(root: Path, spec: str, model: str = TYPED_MODEL) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.yaml").write_text(spec)
    (root / "model.py").write_text(model)
    return root


def empty_dir(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def spec_dir(tmp: Path) -> Path:
    (tmp / "odd" / "package.yaml").mkdir(parents=True)
    return tmp / "odd"


def a_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("")
    return tmp / "afile"


def bad_example(tmp: Path) -> Path:
    spec = "spec_version: 1\nname: t\nexamples:\n  - {name: hi, input: {times: 2}}\n"
    return make_package(tmp / "t", spec)


def bad_yaml(tmp: Path) -> Path:
    return make_package(tmp / "y", "spec_version: 1\nname: [y\n")


ECHO, TYPED, BUGGY = fixture("echo"), fixture("typed"), fixture("buggy")
CLI_FAILURES = [
    # (arguments, made from tmp_path; environment; the one stderr line, "{t}" for tmp_path; "..." = prefix)
    pytest.param(
        lambda t: ["validate", empty_dir(t)],
        {},
        "error: {t}/empty/package.yaml: no package.yaml in this directory; `pkg new` creates one",
        id="validate-empty-dir",
    ),
    pytest.param(
        lambda t: ["validate", spec_dir(t)],
        {},
        "error: {t}/odd/package.yaml: is a directory, not a file; package.yaml must be the package's "
        "spec file (`pkg new` creates one)",
        id="package-yaml-is-a-directory",
    ),
    pytest.param(
        lambda t: ["validate", t / "nope"],
        {},
        "error: {t}/nope: no such file or directory; pass a package directory holding package.yaml",
        id="validate-missing",
    ),
    pytest.param(
        lambda t: ["serve", f"{ECHO}/model.py", "--port", "0"],
        {},
        f"error: {ECHO}/model.py: is a file, not a package; pass the package directory ({ECHO}) "
        "or its package.yaml",
        id="serve-the-model-file",
    ),
    pytest.param(
        lambda t: ["validate", bad_yaml(t)],
        {},
        "error: {t}/y/package.yaml: line 3, column 1: not valid YAML: expected ',' or ']', but got "
        "'<stream end>'; fix the syntax there",
        id="validate-bad-yaml",
    ),
    pytest.param(
        lambda t: ["validate", bad_example(t)],
        {},
        "error: {t}/t/package.yaml: examples[0].input.text: example 'hi' does not match the model's "
        "input type In: Field required; fix the example or the model's annotation",
        id="validate-example-input",
    ),
    pytest.param(
        lambda t: ["predict", ECHO, "-d", "{nope"],
        {},
        "error: Invalid value for '-d' / '--data': not valid JSON: ...",
        id="predict-bad-json",
    ),
    pytest.param(
        lambda t: ["predict", ECHO, "-f", t / "missing.json"],
        {},
        "error: Invalid value for '-f' / '--file': '{t}/missing.json': No such file or directory "
        "(see `pkg predict --help`)",
        id="predict-missing-file",
    ),
    pytest.param(
        lambda t: ["predict", ECHO, "--example", "nope"],
        {},
        "error: no example named 'nope' in package.yaml (examples: hi, list)",
        id="predict-unknown-example",
    ),
    pytest.param(
        lambda t: ["predict", ECHO],
        {},
        "error: give the input with one of -d/--data, -f/--file or --example, and/or -i NAME=VALUE "
        "fields (see `pkg predict --help`)",
        id="predict-no-input",
    ),
    pytest.param(
        lambda t: ["predict", ECHO, "--url", "http://127.0.0.1:9", "-d", "1"],
        {},
        "error: with --url the server runs the model, so PATH is only read for --example; ...",
        id="predict-url-and-path",
    ),
    pytest.param(
        lambda t: ["predict", TYPED, "-d", '{"times": 9}'],
        {},
        "error: input is invalid: text: Field required; times: Input should be less than or equal to 5",
        id="predict-invalid-input",
    ),
    pytest.param(
        lambda t: ["predict", BUGGY, "-d", '{"zero": 0}'],
        {},
        "error: predict raised ZeroDivisionError: division by zero "
        "(run `pkg --traceback ...` to see where the model raised)",
        id="predict-model-raises",
    ),
    pytest.param(
        lambda t: ["predict", ECHO, "--bogus"],
        {},
        "error: No such option '--bogus' (see `pkg predict --help`)",
        id="unknown-option",
    ),
    pytest.param(
        lambda t: ["new", a_file(t)],
        {},
        "error: Invalid value for 'PATH': Directory '{t}/afile' is a file (see `pkg new --help`)",
        id="new-onto-a-file",
    ),
    pytest.param(
        lambda t: ["new", a_file(t) / "sub"],
        {},
        "error: cannot create {t}/afile/sub: a file is in the way; pick a directory you can write to",
        id="new-under-a-file",
    ),
    pytest.param(
        lambda t: ["new", t / "x", "--name", "Bad Name"],
        {},
        "error: Invalid value for '--name': 'Bad Name': use 1-64 lower-case letters, ...",
        id="new-bad-name",
    ),
    pytest.param(
        lambda t: ["serve", ECHO, "--port", "0"],
        {"PACKAGER_MAX_BODY_BYTES": "lots"},
        "error: PACKAGER_MAX_BODY_BYTES='lots' is not a positive whole number of bytes; set it like "
        "PACKAGER_MAX_BODY_BYTES=67108864 (64 MiB, the default) or unset it",
        id="serve-max-body-lots",
    ),
    pytest.param(
        lambda t: ["serve", ECHO, "--port", "0"],
        {"PACKAGER_MAX_BODY_BYTES": "-5"},
        "error: PACKAGER_MAX_BODY_BYTES='-5' is not a positive whole number of bytes; ...",
        id="serve-max-body-negative",
    ),
    pytest.param(
        lambda t: ["serve", ECHO, "--port", "70000"],
        {},
        "error: Invalid value for '--port': 70000 is not in the range 0<=x<=65535 (see `pkg serve --help`)",
        id="serve-bad-port",
    ),
    pytest.param(
        lambda t: ["schema"],
        {},
        "error: give a package PATH, or --spec for the schema of package.yaml (see `pkg schema --help`)",
        id="schema-no-path",
    ),
    pytest.param(
        lambda t: ["test", fixture("checked"), "-e", "nope"],
        {},
        "error: no example named 'nope' in package.yaml (examples: exact, close, no-output, wrong, raises)",
        id="test-unknown-example",
    ),
    pytest.param(
        lambda t: ["test", BUGGY],
        {},
        "error: package.yaml has no examples to test; add some under 'examples:'",
        id="test-no-examples",
    ),
    pytest.param(
        lambda t: ["frobnicate"],
        {},
        "error: No such command 'frobnicate' (see `pkg --help`)",
        id="unknown-command",
    ),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("make_args", "env", "expected"), CLI_FAILURES)
def test_every_failure_is_one_line_on_stderr_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_args: Any, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = pkg(*make_args(tmp_path))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert "Traceback" not in result.stderr
    line = result.stderr[:-1]
    want = expected.replace("{t}", str(tmp_path))
    if want.endswith("..."):
        assert line.startswith(want[:-3]), line
    else:
        assert line == want


def test_new_into_an_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)  # root may write anywhere, so chmod cannot show this
    result = pkg("new", tmp_path / "locked")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot create {tmp_path / 'locked'}: permission denied; pick a directory you can write to\n"
    )


def test_a_model_message_on_several_lines_is_folded_into_one(tmp_path: Path) -> None:
    model = "class Model:\n    def predict(self, inputs):\n        raise ValueError('first\\n  second')\n"
    root = make_package(tmp_path / "m", "spec_version: 1\nname: m\n", model)
    result = pkg("predict", root, "-d", "1")
    assert result.stderr == (
        "error: predict raised ValueError: first second "
        "(run `pkg --traceback ...` to see where the model raised)\n"
    )


# --- validate: examples against the model's types -------------------------------------------


def test_validate_checks_example_inputs_and_outputs_against_the_types(tmp_path: Path) -> None:
    spec = (
        "spec_version: 1\nname: t\nexamples:\n"
        "  - {name: good, input: {text: a}, output: {text: a}}\n"
        "  - {name: in, input: {text: 5, times: many}}\n"
        "  - {name: out, input: {text: a}, output: {txt: a}}\n"
    )
    root = make_package(tmp_path / "t", spec)
    result = pkg("validate", root)
    file = root / "package.yaml"
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {file}: 3 problems",
        f"  - {file}: examples[1].input.text: example 'in' does not match the model's input type In: "
        "Input should be a valid string; fix the example or the model's annotation (got 5)",
        f"  - {file}: examples[1].input.times: example 'in' does not match the model's input type In: "
        "Input should be a valid integer, unable to parse string as an integer; fix the example or the "
        "model's annotation (got 'many')",
        f"  - {file}: examples[2].output.text: example 'out': the output does not match the model's "
        "output type Out: Field required; fix the example or the model's annotation",
    ]


def test_validate_checks_each_expected_chunk_of_a_stream(tmp_path: Path) -> None:
    model = (
        "from typing import Iterator\n\n"
        "class Model:\n    def predict(self, inputs) -> Iterator[int]:\n        yield from inputs\n"
    )
    spec = "spec_version: 1\nname: s\nexamples:\n  - {name: n, input: [1], output: [1, x]}\n"
    root = make_package(tmp_path / "s", spec, model)
    result = pkg("validate", root)
    assert result.stderr == (
        f"error: {root / 'package.yaml'}: examples[0].output[1]: example 'n': the output does not match "
        "the model's chunk type int: Input should be a valid integer, unable to parse string as an "
        "integer; fix the example or the model's annotation (got 'x')\n"
    )


def test_validate_passes_examples_that_match_and_ignores_unannotated_models() -> None:
    assert pkg("validate", fixture("typed")).exit_code == 0
    assert pkg("validate", fixture("checked")).exit_code == 0
