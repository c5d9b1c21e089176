"""`pkg predict -i NAME=VALUE` (Cog-style fields, @FILE) and `-o DIR` (files in the output written out)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from asgi_server import serving
from click.testing import CliRunner, Result

import packager
import packager._cli_outputs
from packager._cli import cli
from packager._filetypes import file_in_text, sniff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cli"
FIELDS = str(FIXTURES / "fields")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pkg(*args: Any, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, prog_name="pkg")


def ok(*args: Any, input: bytes | None = None) -> Any:
    result = pkg(*args, input=input)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def digest(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


# --- -i: coercion by the input schema ---------------------------------------------------------------


def test_each_field_type_is_coerced_by_the_schema() -> None:
    out = ok("predict", FIELDS, "-i", "text=20", "-i", "steps=20", "-i", "scale=0.5", "-i", "loud=true",
             "-i", 'tags=["a", "b"]', "-i", 'options={"k": [1]}', "-i", "seed=null", "-i", "color=blue")  # fmt: skip
    assert out["text"] == "20"  # a string field keeps digits as text
    assert (out["steps"], out["scale"], out["loud"]) == (20, 0.5, True)
    assert (out["tags"], out["options"], out["seed"], out["color"]) == (["a", "b"], {"k": [1]}, None, "blue")
    assert out["types"] == {"text": "str", "steps": "int", "scale": "float", "loud": "bool", "tags": "list",
                            "options": "dict", "seed": "NoneType", "color": "str", "image": "dict",
                            "encoded": "dict"}  # fmt: skip


def test_a_value_that_does_not_parse_is_left_to_the_models_validation() -> None:
    result = pkg("predict", FIELDS, "-i", "steps=many")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: input is invalid: steps: Input should be a valid integer")


def test_an_untyped_model_gets_json_when_it_parses_else_text() -> None:
    out = ok("predict", FIXTURES / "echo", "-i", "n=20", "-i", "word=hello", "-i", 'obj={"a": 1}',
             "-i", "flag=false", "-i", "half={broken")  # fmt: skip
    assert out == {"echo": {"n": 20, "word": "hello", "obj": {"a": 1}, "flag": False, "half": "{broken"}}


def test_unknown_fields_are_one_error_listing_the_fields() -> None:
    result = pkg("predict", FIELDS, "-i", "nope=1", "-i", "text=x", "-i", "other=2")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: unknown input fields 'nope', 'other'; the model takes: text, steps, scale, loud, tags, "
        "options, image, encoded, seed, color\n"
    )


def test_a_field_without_equals_is_a_usage_error() -> None:
    result = pkg("predict", FIELDS, "-i", "text")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Invalid value for '-i' / '--input': 'text' is not name=value")


def test_fields_extend_and_override_the_json_input() -> None:
    out = ok("predict", FIELDS, "-d", '{"text": "kept", "steps": 2}', "-i", "steps=5", "-i", "loud=1")
    assert (out["text"], out["steps"], out["loud"]) == ("kept", 5, True)
    out = ok("predict", FIELDS, "--example", "base", "-i", "scale=3")
    assert (out["text"], out["steps"], out["scale"]) == ("from the example", 3, 3.0)


def test_fields_on_a_json_input_that_is_not_an_object_is_an_error() -> None:
    result = pkg("predict", FIXTURES / "echo", "-d", "[1]", "-i", "a=1")
    assert result.exit_code == 1
    assert "-i sets fields of an object, but the -d/-f/--example input is a list" in result.stderr


# --- -i NAME=@FILE ---------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    png = base64.b64decode(
        json.loads(pkg("predict", FIXTURES / "files", "-i", "kind=png").stdout)["images"][0]
    )
    made = {"png": png, "text": b"a cat\non a mat\n", "number": b"42\n", "binary": b"\xff\xfe\x00"}
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in made}


def test_a_file_for_a_bytes_field_arrives_as_its_bytes(files: dict[str, Path]) -> None:
    out = ok("predict", FIELDS, "-i", f"image=@{files['png']}")
    assert out["image"] == digest(files["png"].read_bytes())


def test_a_file_for_a_base64_field_is_base64_encoded(files: dict[str, Path]) -> None:
    out = ok("predict", FIELDS, "-i", f"encoded=@{files['png']}")  # Base64Bytes decodes it again
    assert out["encoded"] == digest(files["png"].read_bytes())


def test_a_file_for_a_string_field_is_text_or_base64_when_binary(files: dict[str, Path]) -> None:
    assert ok("predict", FIELDS, "-i", f"text=@{files['text']}")["text"] == files["text"].read_text()
    out = ok("predict", FIELDS, "-i", f"text=@{files['png']}")
    assert base64.b64decode(out["text"]) == files["png"].read_bytes()
    out = ok("predict", FIXTURES / "echo", "-i", f"raw=@{files['binary']}", "-i", f"doc=@{files['number']}")
    assert out["echo"] == {"raw": base64.b64encode(b"\xff\xfe\x00").decode(), "doc": "42\n"}


def test_a_file_for_a_typed_field_is_parsed_like_a_value(files: dict[str, Path]) -> None:
    assert ok("predict", FIELDS, "-i", f"steps=@{files['number']}")["steps"] == 42
    result = pkg("predict", FIELDS, "-i", f"steps=@{files['binary']}")
    assert result.exit_code == 1
    assert result.stderr == f"error: {files['binary']} is not text, and this field takes integer\n"


def test_at_dash_reads_stdin_and_double_at_is_a_literal_at() -> None:
    out = ok("predict", FIELDS, "-i", "image=@-", "-i", "text=@@home", input=b"\x00\x01\x02")
    assert (out["image"], out["text"]) == (digest(b"\x00\x01\x02"), "@home")


def test_a_missing_file_fails_before_the_model_loads(tmp_path: Path) -> None:
    result = pkg("predict", FIXTURES / "buggy", "-i", f"image=@{tmp_path / 'nope.png'}")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: Invalid value for '-i' / '--input': image: cannot read {tmp_path / 'nope.png'}: "
        "No such file or directory"
    )


# --- -o DIR -----------------------------------------------------------------------------------------


def test_base64_images_are_written_as_files_named_by_their_json_path(tmp_path: Path) -> None:
    plain = ok("predict", FIXTURES / "files", "-i", "kind=png")
    result = pkg("predict", FIXTURES / "files", "-i", "kind=png", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    paths = [str(tmp_path / "out" / f"images.{i}.png") for i in range(2)]
    assert json.loads(result.stdout) == {"images": paths, "caption": plain["caption"]}
    for path, encoded in zip(paths, plain["images"]):
        assert Path(path).read_bytes() == base64.b64decode(encoded)
    assert result.stderr.splitlines() == [f"wrote {p} ({Path(p).stat().st_size} bytes)" for p in paths]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["images.0.png", "images.1.png"]


def test_a_data_uri_is_written_with_the_extension_of_its_media_type(tmp_path: Path) -> None:
    uri = ok("predict", FIXTURES / "files", "-i", "kind=datauri")["sound"]
    out = ok("predict", FIXTURES / "files", "-i", "kind=datauri", "-o", tmp_path)
    assert out == {"sound": str(tmp_path / "sound.wav")}
    assert (tmp_path / "sound.wav").read_bytes() == base64.b64decode(uri.partition(",")[2])


def test_text_that_only_looks_like_base64_stays_text(tmp_path: Path) -> None:
    plain = ok("predict", FIXTURES / "files", "-i", "kind=text")
    assert ok("predict", FIXTURES / "files", "-i", "kind=text", "-o", tmp_path) == plain
    assert list(tmp_path.iterdir()) == []


def test_the_output_schema_marks_bytes_without_magic(tmp_path: Path) -> None:
    out = ok("predict", FIXTURES / "raw_bytes", "-i", "n=6", "-o", tmp_path)
    assert out == str(tmp_path / "output.bin")
    assert (tmp_path / "output.bin").read_bytes() == bytes(range(6))


def test_a_stream_prints_text_as_it_comes_and_writes_chunk_files(tmp_path: Path) -> None:
    plain = pkg("predict", FIXTURES / "file_stream", "-d", "{}").stdout.splitlines()
    result = pkg("predict", FIXTURES / "file_stream", "-d", "{}", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    png, gif = tmp_path / "chunk-1.png", tmp_path / "chunk-3.frame.gif"
    assert result.stdout.splitlines() == [
        "drawing ", json.dumps(str(png)), "and ", json.dumps({"frame": str(gif), "n": 1}, separators=(",", ":")),
        "done",
    ]  # fmt: skip
    assert plain[0].startswith("drawing ")
    assert plain[0].endswith("and ")
    assert png.read_bytes() == base64.b64decode(plain[0][len("drawing ") : -len("and ")])
    assert gif.read_bytes() == base64.b64decode(json.loads(plain[1])["frame"].partition(",")[2])
    assert sniff(png.read_bytes()) is not None
    assert sniff(gif.read_bytes()) is not None


def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "images.0.png").write_bytes(b"old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packager._cli_outputs.os, "fsync", full_disk)
    result = pkg("predict", FIXTURES / "files", "-i", "kind=png", "-o", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write {tmp_path / 'images.0.png'}: No space left on device\n"
    assert [p.name for p in tmp_path.iterdir()] == ["images.0.png"]
    assert (tmp_path / "images.0.png").read_bytes() == b"old"


def test_an_output_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    result = pkg("predict", FIXTURES / "files", "-i", "kind=png", "-o", tmp_path / "taken")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot create {tmp_path / 'taken'}: ")


def test_sniffing_reads_data_uris_and_leaves_plain_text() -> None:
    assert file_in_text("data:text/plain,hello%20there") == (b"hello there", "txt")
    assert file_in_text("data:application/x-unknown;base64,AAEC") == (b"\x00\x01\x02", "bin")
    assert file_in_text("hello world, this is a long sentence") is None
    assert file_in_text(base64.b64encode(b"%PDF-1.7 rest").decode()) == (b"%PDF-1.7 rest", "pdf")


# --- --url: the server's schema ---------------------------------------------------------------------


def test_url_fields_are_coerced_by_the_servers_schema_and_files_sent_as_bytes(
    files: dict[str, Path], tmp_path: Path
) -> None:
    with serving(FIXTURES / "fields") as url:
        out = ok("predict", "--url", url, "-i", "text=7", "-i", "steps=7", "-i", f"image=@{files['png']}")
    assert (out["text"], out["steps"], out["image"]) == ("7", 7, digest(files["png"].read_bytes()))
    with serving(FIXTURES / "files") as url:
        out = ok("predict", "--url", url, "-i", "kind=datauri", "-o", tmp_path)
    assert out == {"sound": str(tmp_path / "sound.wav")}
    assert sniff((tmp_path / "sound.wav").read_bytes()) is not None


class SchemalessClient:
    """A server without /v1/models/NAME/schema (404): -i values are then untyped."""

    def __init__(self, sent: list[Any]) -> None:
        self.sent = sent

    def __enter__(self) -> SchemalessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def schema(self) -> dict[str, Any]:
        raise packager.ClientError("http://h:1 answered 404: not found", 404)

    def predict(self, inputs: Any) -> Any:
        self.sent.append(inputs)
        return {"ok": True}


def test_url_without_a_schema_sends_untyped_values(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []
    module = types.ModuleType("packager._client")
    module.connect = lambda url, **options: SchemalessClient(sent)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "packager._client", module)
    assert ok("predict", "--url", "http://h:1", "-i", "n=3", "-i", "word=hi") == {"ok": True}
    assert sent == [{"n": 3, "word": "hi"}]
