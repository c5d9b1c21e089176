"""`pkg init ENTRY` and `pkg library list/show/test`: the catalogue of ready-made packages."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import orjson

from packager._catalogue import Entry, copy_entry, entries, entry_problems, resolve
from packager._catalogue._compare import close
from packager._catalogue._entries import load_entry
from packager._cli_examples import as_json, choose
from packager._device import check_device
from packager._errors import PackagerError
from packager._handle import ModelHandle, load
from packager._pipeline import Pipeline
from packager._spec_load import read_package
from packager._stdio import model_output_to_stderr


@click.command("init", epilog="\b\nExample:\n  $ pkg init clip\n  $ pkg init llama-7b ./my-llama")
@click.argument("entry")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def init(entry: str, directory: Path | None) -> None:
    """Copy the catalogue entry ENTRY into DIRECTORY (default: ./ENTRY), ready to edit and build.

    DIRECTORY must not exist or be empty. `pkg library list` shows the entries.
    """
    target = copy_entry(entry, directory or Path(entry))
    read_package(target)  # a shipped entry is always valid; this proves the copy is too
    shown = shlex.quote(str(target))
    click.echo(f"created {target} from the catalogue entry {entry!r}")
    click.echo(
        f"next: read {shlex.quote(str(target / 'README.md'))}, then `pkg test {shown}` or `pkg build {shown}`"
    )


@click.group("library", epilog="\b\nExample:\n  $ pkg library list\n  $ pkg library show clip")
def library() -> None:
    """The catalogue of ready-made packages: list, show and test its entries."""


@library.command("list")
@click.option(
    "--json", "as_json_out", is_flag=True, help="Print JSON (one object per entry) instead of a table."
)
def list_entries(as_json_out: bool) -> None:
    """List the catalogue's entries: task, accelerator, memory and weights source."""
    found = entries()
    if as_json_out:
        click.echo(orjson.dumps([_row(e) for e in found], option=orjson.OPT_INDENT_2).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("entry", "task", "accelerator", "memory", "weights", box=None, pad_edge=False)
    for e in found:
        table.add_row(e.name, e.task, e.accelerator, e.memory, "\n".join(e.weights) or "-")
    Console(soft_wrap=False, width=_width()).print(table)


def _row(entry: Entry) -> dict[str, Any]:
    return {
        "entry": entry.name,
        "task": entry.task,
        "description": entry.spec.description,
        "accelerator": entry.accelerator,
        "memory": entry.spec.resources.memory,
        "gpu_memory": entry.spec.resources.gpu_memory,
        "weights": entry.weights,
        "path": str(entry.path),
    }


def _width() -> int | None:
    import shutil

    return max(shutil.get_terminal_size((160, 24)).columns, 100)


@library.command("show", epilog="\b\nExample:\n  $ pkg library show clip")
@click.argument("entry")
@click.option("--json", "as_json_out", is_flag=True, help="Print JSON: summary, spec and schema.")
def show(entry: str, as_json_out: bool) -> None:
    """Show ENTRY: its README summary, package.yaml and input/output schema.

    The schema is read off the model class without loading weights; when the
    model file cannot be imported here (a missing dependency), it says why.
    """
    found = load_entry(resolve(entry))
    schema, why = _schema(found.path)
    if as_json_out:
        document = {**_row(found), "summary": found.readme.summary, "schema": schema, "schema_error": why}
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{found.name}: {found.task}\n\n{found.readme.summary}\n")
    click.echo(f"README: {found.path / 'README.md'}\n\n# package.yaml")
    click.echo((found.path / "package.yaml").read_text(encoding="utf-8").rstrip())
    click.echo("\n# input/output schema")
    click.echo(
        orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode() if schema else f"(not available: {why})"
    )


def _schema(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        with model_output_to_stderr():
            return Pipeline(read_package(path)).schema(), None
    except PackagerError as exc:
        return None, str(exc)


_TEST_EPILOG = """\b
Examples:
  $ pkg library test clip
  $ pkg library test ./my-entry --rtol 1e-3 -e cat"""


@library.command("test", epilog=_TEST_EPILOG)
@click.argument("entry")
@click.option(
    "-e", "--example", "names", multiple=True, metavar="NAME", help="Run only this example (repeatable)."
)
@click.option("--device", help="Run on this device: cpu, cuda, cuda:N or mps; default: a GPU if visible.")
@click.option(
    "--rtol",
    default=1e-4,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Relative tolerance for numbers.",
)
@click.option(
    "--atol",
    default=1e-6,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Absolute tolerance for numbers.",
)
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Weights directory (default: $PACKAGER_WEIGHTS_DIR).",
)
def test_entry(
    entry: str, names: tuple[str, ...], device: str | None, rtol: float, atol: float, weights_dir: Path | None
) -> None:
    """Check ENTRY (a catalogue name or a package folder) the way CI does, then run its examples.

    First the static checks (spec, README sections, weights pinned, build
    context), then each example through load().predict(), comparing outputs
    that the example gives with numbers within --rtol/--atol. Exits with 1 on
    any failure. Run it before opening a pull request for a new entry.
    """
    path = resolve(entry)
    problems = entry_problems(path)
    for problem in problems:
        click.echo(f"FAIL {problem}")
    click.echo(f"{'ok  ' if not problems else 'FAIL'} static checks ({len(problems)} problems)")
    if device is not None:
        check_device(device, "--device")
    with model_output_to_stderr():
        handle = load(path, device=device, weights_dir=weights_dir)
    failed = _run_examples(handle, names, rtol, atol) + bool(problems)
    if failed:
        raise click.exceptions.Exit(1)


def _run_examples(handle: ModelHandle, names: tuple[str, ...], rtol: float, atol: float) -> int:
    chosen = choose(handle, names)
    failed = 0
    for example in chosen:
        try:
            with model_output_to_stderr():
                got = as_json(handle.predict(example.input))
            problem = (
                close(got, example.output, rtol=rtol, atol=atol)
                if "output" in example.model_fields_set
                else None
            )
        except PackagerError as exc:
            problem = f"error: {exc}"
        failed += problem is not None
        click.echo(
            f"{'ok  ' if problem is None else 'FAIL'} {example.name}" + (f": {problem}" if problem else "")
        )
    click.echo(f"{len(chosen) - failed} passed, {failed} failed")
    return failed
