"""`pkg test`: run a package's examples and compare each output with the one its spec expects."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import click
import orjson

from packager._cli_predict import to_json
from packager._device import check_device
from packager._errors import PackagerError
from packager._handle import ModelHandle, load
from packager._server._codec import join_chunks
from packager._spec import Example
from packager._stdio import model_output_to_stderr

_EPILOG = """\b
Examples:
  $ pkg test ./my-model
  $ pkg test ./my-model -e hello -e goodbye"""


@click.command("test", epilog=_EPILOG)
@click.argument("path", default=".")
@click.option(
    "-e", "--example", "names", multiple=True, metavar="NAME", help="Run only this example (repeatable)."
)
@click.option("--device", help="Run on this device: cpu, cuda, cuda:N or mps; default: a GPU if visible.")
def test_examples(path: str, names: tuple[str, ...], device: str | None) -> None:
    """Run the examples of the package at PATH and check their outputs.

    An example with an `output` passes when the model gives that output
    (numbers within a relative 1e-5); one without only has to run. A streaming
    model's text chunks are joined into one string, other chunks into a list.
    Exits with 1 when any example fails.
    """
    if device is not None:
        check_device(device, "--device")
    with model_output_to_stderr():  # what the model prints must not mix with the verdicts
        handle = load(path, device=device)
    examples = choose(handle, names)
    failed = 0
    for example in examples:
        problem = check(handle, example)
        failed += problem is not None
        verdict = "ok" if problem is None else "FAIL"
        click.echo(f"{verdict:4} {example.name}" + (f": {problem}" if problem else ""))
    click.echo(f"{len(examples) - failed} passed, {failed} failed")
    if failed:
        raise click.exceptions.Exit(1)


def choose(handle: ModelHandle, names: tuple[str, ...]) -> list[Example]:
    """The examples to run: those named, in order, or all of them."""
    examples = handle.spec.examples
    if not examples:
        raise PackagerError("package.yaml has no examples to test; add some under 'examples:'")
    if not names:
        return list(examples)
    for name in names:
        handle.spec.require_example(name)  # an unknown name is an error that lists the known ones
    return [e for e in examples if e.name in names]


def check(handle: ModelHandle, example: Example) -> str | None:
    """None when `example` passes, else what went wrong."""
    try:
        with model_output_to_stderr():
            got = as_json(handle.predict(example.input))
    except PackagerError as exc:
        return f"error: {exc}"
    if "output" not in example.model_fields_set or same(got, example.output):
        return None
    return f"expected {_show(example.output)}, got {_show(got)}"


def as_json(output: Any) -> Any:
    """The output as plain JSON values; a stream's chunks gathered (text joined)."""
    if isinstance(output, Iterator):
        return join_chunks([as_json(chunk) for chunk in output])
    return orjson.loads(to_json(output))


def same(got: Any, want: Any) -> bool:
    """Equal as JSON, with numbers compared to a relative 1e-5."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-9)
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(same(got[k], v) for k, v in want.items())
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(same(g, w) for g, w in zip(got, want))
    return bool(got == want)


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:197] + "..."
