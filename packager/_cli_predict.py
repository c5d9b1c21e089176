"""`pkg predict`: run one input through a package (in this process) or a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import orjson

from packager._cli_inputs import RawValue, merge, parse_fields
from packager._cli_outputs import FileSaver
from packager._device import check_device
from packager._errors import ClientError, PredictError
from packager._handle import load
from packager._server._codec import EncodeError, encode_json
from packager._spec_load import read_package
from packager._stdio import model_output_to_stderr, real_stdout

_EPILOG = """\b
Examples:
  $ pkg predict ./my-model -d '{"text": "hello"}'
  $ echo '{"text": "hello"}' | pkg predict ./my-model -f -
  $ pkg predict ./my-model --example hello
  $ pkg predict ./my-model -i text="a cat" -i steps=20 -i image=@cat.png
  $ pkg predict ./my-model -i prompt="a red square" -o out/
  $ pkg predict --url http://127.0.0.1:8080 -d '{"text": "hello"}'"""


@click.command(epilog=_EPILOG)
@click.argument("path", required=False)
@click.option("-d", "--data", metavar="JSON", help="The input, as JSON text.")
@click.option(
    "-f", "--file", "file", type=click.File("rb"), help="Read the input JSON from FILE ('-': stdin)."
)
@click.option("-e", "--example", metavar="NAME", help="Use the input of the example NAME in package.yaml.")
@click.option(
    "-i",
    "--input",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="One input field, coerced by the input schema; NAME=@FILE reads FILE ('@-': stdin). "
    "Repeat it; adds to (or overrides) the -d/-f/--example input.",
)
@click.option(
    "-o",
    "--output-dir",
    metavar="DIR",
    help="Write the images, audio and other files in the output into DIR and print their paths instead.",
)
@click.option("--url", help="Send the input to the server at URL instead of loading the model here.")
@click.option(
    "--api-key",
    metavar="KEY",
    help="With --url: the server's API key (runtime.api_key_secret); default: $PACKAGER_API_KEY.",
)
@click.option("--device", help="Run on this device: cpu, cuda, cuda:N or mps; default: a GPU if visible.")
def predict(
    path: str | None,
    data: str | None,
    file: IO[bytes] | None,
    example: str | None,
    fields: tuple[str, ...],
    output_dir: str | None,
    url: str | None,
    api_key: str | None,
    device: str | None,
) -> None:
    """Run one input through the package at PATH and print the output as JSON.

    The model is loaded in this process, as `packager.load(PATH)` does. A
    streaming model's chunks are printed as they come: text as is, anything
    else as one JSON document per line. With --url the input goes to that
    server instead, and PATH is only read for --example NAME.

    Give the input as JSON (-d, -f, --example), field by field (-i NAME=VALUE,
    as in Cog), or both: -i fields are set on top of the JSON object. With -o
    DIR, outputs that are files (base64 or data URIs of images, audio, PDFs...)
    are written to DIR and their paths printed in their place; see docs/cli.md.
    """
    given = sum(x is not None for x in (data, file, example))
    check_usage(path, url, given, bool(fields), example, api_key)
    if device is not None:
        check_device(device, "--device")
    raw_fields = parse_fields(fields)  # files are read now: a missing one fails before the model loads
    inputs = read_input(data, file, example, path) if given else None
    if url is not None:
        remote_predict(url, inputs, api_key, raw_fields, output_dir)
    else:
        with model_output_to_stderr():  # what the model prints must not mix with the JSON
            model = load(path or ".", device=device)
            schema = model.schema() if raw_fields or output_dir else {}
            inputs = merge(inputs, raw_fields, schema.get("input", {}))
            write_output(model.predict(inputs), _saver(output_dir, schema))


def check_usage(
    path: str | None, url: str | None, given: int, fields: bool, example: str | None, api_key: str | None
) -> None:
    """The option combinations `pkg predict` refuses, each with what to do instead."""
    if path is None and url is None:
        raise click.UsageError("give a package PATH, or --url of a running server")
    if given > 1 or (given == 0 and not fields):
        raise click.UsageError(
            "give the input with one of -d/--data, -f/--file or --example, and/or -i NAME=VALUE fields"
        )
    if example is not None and path is None:
        raise click.UsageError("--example needs the package PATH to read its package.yaml")
    if url is not None and path is not None and example is None:  # -i fields take the server's schema
        raise click.UsageError(
            "with --url the server runs the model, so PATH is only read for --example; "
            "drop PATH, or drop --url to run the package here"
        )
    if api_key is not None and url is None:
        raise click.UsageError("--api-key goes with --url (a package run here needs no key)")


def _saver(output_dir: str | None, schema: dict[str, Any]) -> FileSaver | None:
    return FileSaver(output_dir, schema.get("output", {})) if output_dir is not None else None


def read_input(data: str | None, file: IO[bytes] | None, example: str | None, path: str | None) -> Any:
    """The input from whichever of -d, -f or --example was given."""
    if example is not None:
        return example_input(path or ".", example)
    if data is not None:
        raw, hint = data.encode("utf-8"), "'-d' / '--data'"
    else:
        raw, hint = (file.read() if file is not None else b""), "'-f' / '--file'"
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=hint) from None


def example_input(path: str | Path, name: str) -> Any:
    """The input of example `name` of the package at `path`, found without loading the model."""
    return read_package(path).spec.require_example(name).input


def remote_predict(
    url: str,
    inputs: Any,
    api_key: str | None = None,
    fields: list[tuple[str, RawValue]] | None = None,
    output_dir: str | None = None,
) -> None:
    """Send `inputs` (with `fields` set) to the server at `url` and print the answer as it arrives."""
    from packager._client import connect  # the HTTP client loads only when used

    with connect(url, api_key=api_key) as remote:
        schema: dict[str, Any] = {}
        if fields or output_dir:
            try:  # the server's /v1/models/NAME/schema; another server may not have one: then untyped
                schema = remote.schema()
            except ClientError as exc:
                if exc.status_code in (0, 401):  # unreachable, or the key is wrong: say so now
                    raise
        inputs = merge(inputs, fields or [], schema.get("input", {}))
        write_output(remote.predict(inputs), _saver(output_dir, schema))


def write_output(output: Any, saver: FileSaver | None = None) -> None:
    """Print one output as a JSON line, or a stream's chunks as they arrive; files to `saver`'s DIR."""
    if isinstance(output, Iterator):
        write_stream(output, saver)
        return
    data = to_json(output)
    if saver is not None:
        value, saved = saver.replace(orjson.loads(data))
        data = to_json(value) if saved else data
    _write(data + b"\n")


def write_stream(chunks: Iterator[Any], saver: FileSaver | None = None) -> None:
    """Text chunks written as they are (tokens), other chunks (and saved files) one JSON document per line."""
    open_line = False
    try:
        for index, chunk in enumerate(chunks):
            saved = False
            if saver is not None:
                plain = chunk if isinstance(chunk, str) else orjson.loads(to_json(chunk))
                chunk, saved = saver.replace(plain, (f"chunk-{index}",))
            if isinstance(chunk, str) and not saved:
                _write(chunk.encode("utf-8"))
                open_line = not chunk.endswith("\n")
            else:
                _write((b"\n" if open_line else b"") + to_json(chunk) + b"\n")
                open_line = False
    finally:  # also when the stream fails midway: the error then starts on a line of its own
        if open_line:
            _write(b"\n")


def _write(data: bytes) -> None:
    out = real_stdout()  # stdout itself goes to stderr while model code may print
    out.write(data)
    out.flush()


def to_json(value: Any) -> bytes:
    """`value` as compact JSON, encoded exactly as the server encodes a response."""
    try:
        return encode_json(value)
    except EncodeError as exc:
        why = f"it holds a value of type {exc.type_name}" if exc.type_name else str(exc)
        raise PredictError(
            f"the output is not JSON-serializable: {why}; return dicts, lists, text, numbers or a pydantic model"
        ) from None
