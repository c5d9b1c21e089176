"""`pkg predict`: run one input through a package (in this process) or a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import orjson

from packager._device import check_device
from packager._errors import PredictError
from packager._handle import load
from packager._server._codec import EncodeError, encode_json
from packager._spec_load import read_package
from packager._stdio import model_output_to_stderr, real_stdout

_EPILOG = """\b
Examples:
  $ pkg predict ./my-model -d '{"text": "hello"}'
  $ echo '{"text": "hello"}' | pkg predict ./my-model -f -
  $ pkg predict ./my-model --example hello
  $ pkg predict --url http://127.0.0.1:8080 -d '{"text": "hello"}'"""


@click.command(epilog=_EPILOG)
@click.argument("path", required=False)
@click.option("-d", "--data", metavar="JSON", help="The input, as JSON text.")
@click.option(
    "-f", "--file", "file", type=click.File("rb"), help="Read the input JSON from FILE ('-': stdin)."
)
@click.option("-e", "--example", metavar="NAME", help="Use the input of the example NAME in package.yaml.")
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
    url: str | None,
    api_key: str | None,
    device: str | None,
) -> None:
    """Run one input through the package at PATH and print the output as JSON.

    The model is loaded in this process, as `packager.load(PATH)` does. A
    streaming model's chunks are printed as they come: text as is, anything
    else as one JSON document per line. With --url the input goes to that
    server instead, and PATH is only read for --example NAME.
    """
    if path is None and url is None:
        raise click.UsageError("give a package PATH, or --url of a running server")
    if sum(x is not None for x in (data, file, example)) != 1:
        raise click.UsageError("give the input with exactly one of -d/--data, -f/--file or --example")
    if example is not None and path is None:
        raise click.UsageError("--example needs the package PATH to read its package.yaml")
    if url is not None and path is not None and example is None:
        raise click.UsageError(
            "with --url the server runs the model, so PATH is only read for --example; "
            "drop PATH, or drop --url to run the package here"
        )
    if api_key is not None and url is None:
        raise click.UsageError("--api-key goes with --url (a package run here needs no key)")
    if device is not None:
        check_device(device, "--device")
    inputs = read_input(data, file, example, path)
    if url is not None:
        remote_predict(url, inputs, api_key)
    else:
        with model_output_to_stderr():  # what the model prints must not mix with the JSON
            write_output(load(path or ".", device=device).predict(inputs))


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


def remote_predict(url: str, inputs: Any, api_key: str | None = None) -> None:
    """Send `inputs` to the server at `url` and print the answer (streams as they arrive)."""
    from packager._client import connect  # the HTTP client loads only when used

    with connect(url, api_key=api_key) as remote:
        write_output(remote.predict(inputs))


def write_output(output: Any) -> None:
    """Print one output as a JSON line, or a stream's chunks as they arrive."""
    if isinstance(output, Iterator):
        write_stream(output)
    else:
        _write(to_json(output) + b"\n")


def write_stream(chunks: Iterator[Any]) -> None:
    """Text chunks written as they are (tokens), other chunks one JSON document per line."""
    open_line = False
    try:
        for chunk in chunks:
            if isinstance(chunk, str):
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
