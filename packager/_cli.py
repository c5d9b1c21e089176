"""The `pkg` command line.

Every command is a thin layer over the library. A `PackagerError` (the user's
or the model's mistake) becomes ``error: MESSAGE`` on stderr and exit code 1;
any other exception is a bug in packager and keeps its traceback.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import IO, Any

import click
import orjson
from pydantic import ValidationError

from packager._cli_build import build
from packager._cli_deploy import deploy
from packager._cli_examples import test_examples
from packager._cli_export import export
from packager._cli_library import init, library
from packager._cli_predict import predict
from packager._cli_run import push, run
from packager._cli_weights import weights
from packager._cli_wheelhouse import wheelhouse
from packager._errors import ModelLoadError, PackagerError, PredictError, SpecError
from packager._examples import example_issues
from packager._pipeline import Pipeline
from packager._resources import render_template
from packager._spec import Spec, spec_json_schema
from packager._spec_load import read_package, spec_path
from packager._stdio import model_output_to_stderr
from packager._version import __version__

NEW_FILES = {"package.yaml": "package.yaml.jinja", "model.py": "model.py.jinja"}
_TRACEBACK_HINT = "(run `pkg --traceback ...` to see where the model raised)"


def example(*lines: str) -> str:
    """An epilog showing `lines` as shell commands, kept verbatim by click ("\\b")."""
    return "\b\nExample:\n" + "\n".join(f"  $ {line}" for line in lines)


def format_error(exc: PackagerError) -> str:
    """How `pkg` shows an error: one line, or a SpecError's several problems one per line."""
    issues = exc.issues if isinstance(exc, SpecError) else []
    if len(issues) > 1:
        return f"error: {exc}"
    text = one_line(str(issues[0]) if issues else str(exc))
    raised_by_model = isinstance(exc, (ModelLoadError, PredictError)) and exc.__cause__ is not None
    if raised_by_model and not isinstance(exc.__cause__, PackagerError):
        text += f" {_TRACEBACK_HINT}"
    return f"error: {text}"


def one_line(text: str) -> str:
    """`text` with its line breaks (a model's multi-line message, say) folded into one line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class Failure(click.ClickException):
    """A PackagerError on its way out of click: shown as ``error: ...``, exit code 1."""

    exit_code = 1

    def __init__(self, error: PackagerError) -> None:
        super().__init__(str(error))
        self.error = error

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(format_error(self.error), err=True)


class UsageFailure(click.ClickException):
    """A mistake on the command line: one ``error: ...`` line pointing at --help, exit code 1."""

    exit_code = 1

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message())
        self.command = error.ctx.command_path if error.ctx is not None else "pkg"

    def show(self, file: IO[Any] | None = None) -> None:
        message = one_line(self.message).rstrip(".")
        click.echo(f"error: {message} (see `{self.command} --help`)", err=True)


class _Group(click.Group):
    """The `pkg` group: every failure leaves as one ``error:`` line and exit code 1."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare `pkg` shows the help, as click does
        except click.UsageError as exc:  # the group's own options (`pkg --bogus`)
            raise UsageFailure(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise UsageFailure(exc) from exc
        except PackagerError as exc:
            if ctx.obj and ctx.obj.get("traceback"):
                raise
            raise Failure(exc) from exc


@click.group(cls=_Group, epilog=example("pkg new my-model", "pkg predict my-model --example hello"))
@click.version_option(__version__, "-V", "--version", prog_name="pkg", message="%(prog)s %(version)s")
@click.option("--traceback", is_flag=True, help="Show the full traceback of errors instead of one line.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Package an ML model once; run it in a notebook, behind HTTP, or in a GPU image.

    A package is a directory holding package.yaml and a model class.
    """
    ctx.obj = {"traceback": traceback}


cli.add_command(build)
cli.add_command(deploy)
cli.add_command(export)
cli.add_command(init)
cli.add_command(library)
cli.add_command(predict)
cli.add_command(push)
cli.add_command(run)
cli.add_command(test_examples)
cli.add_command(weights)
cli.add_command(wheelhouse)


@cli.command(epilog=example("pkg validate ./my-model"))
@click.argument("path", default=".")
@click.option("--spec-only", is_flag=True, help="Check package.yaml only; do not import the model file.")
def validate(path: str, spec_only: bool) -> None:
    """Check the package at PATH: package.yaml and the model class's contract.

    Imports the model file (so its dependencies must be installed) but does
    not build the model or load weights. Checks each example's input against
    the model's input type and its output against the output type.
    """
    package = read_package(path)
    spec = package.spec
    count = len(spec.examples)
    facts = [f"{count} example{'s' if count != 1 else ''}"]
    if not spec_only:
        with model_output_to_stderr():  # what the model prints while importing is not our report
            pipeline = Pipeline(package)
        issues = example_issues(pipeline.contract, spec.examples, spec_path(path))
        if issues:
            raise SpecError(spec_path(path), issues)
        model = f"server: {' '.join(spec.server.command)}" if spec.server else None  # docs/server.md
        facts.insert(0, model or f"{spec.model.file}:{spec.model.class_name}")
        facts += [word for word, on in (("streams", pipeline.streams), ("batches", pipeline.batches)) if on]
    click.echo(f"ok: {spec.name} ({', '.join(facts)})")


@cli.command(epilog=example("pkg serve ./my-model --port 8080", "pkg serve ./my-model --reload"))
@click.argument("path", default=".")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Least severe log records shown.",
)
@click.option(
    "--reload",
    is_flag=True,
    help="Load the model again when model code or package.yaml changes (for development).",
)
@click.pass_context
def serve(ctx: click.Context, path: str, host: str, port: int, log_level: str, reload: bool) -> None:
    """Serve the package at PATH over HTTP until interrupted.

    POST /v1/models/NAME:predict runs the model; GET /v1/models/NAME answers
    200 once it is loaded. With --reload, a saved change to model code or
    package.yaml is loaded in the background and swapped in; a broken change
    is reported and the last good version keeps serving.
    """
    from packager._server import serve as run_server  # the server stack loads only when serving
    from packager._server._settings import max_body_bytes

    max_body_bytes()  # a bad $PACKAGER_MAX_BODY_BYTES is an error before anything starts
    ctx.exit(run_server(path, host=host, port=port, log_level=log_level, reload=reload))


@cli.command(epilog=example("pkg schema ./my-model", "pkg schema --spec > package.schema.json"))
@click.argument("path", required=False)
@click.option("--spec", "of_spec", is_flag=True, help="Print the JSON Schema of package.yaml instead.")
def schema(path: str | None, of_spec: bool) -> None:
    """Print the JSON Schema of the model's input and output.

    Reads the type annotations of the model class without building the model
    or loading weights.
    """
    if of_spec == (path is not None):
        raise click.UsageError("give a package PATH, or --spec for the schema of package.yaml")
    document = spec_json_schema() if of_spec else contract_schema(path or ".")
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def contract_schema(path: str) -> dict[str, Any]:
    """What `ModelHandle.schema()` gives, read off the class without loading the model."""
    with model_output_to_stderr():  # stdout is for the JSON only
        return Pipeline(read_package(path)).schema()


@cli.command(epilog=example("pkg new my-model", "pkg predict my-model --example hello"))
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Package name (default: from the directory name).")
def new(path: Path, name: str | None) -> None:
    """Create a new package in PATH: package.yaml and a model.py to fill in.

    Refuses to overwrite files that already exist.
    """
    chosen = check_name(name) if name else check_name(default_name(path), hint=True)
    targets = {path / file: template for file, template in NEW_FILES.items()}
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        raise PackagerError(
            f"refusing to overwrite {', '.join(existing)}; pick a new directory or remove them"
        )
    rendered = {
        target: render_template(t, name=chosen, python_version="3.11") for target, t in targets.items()
    }
    write_new_files(path, rendered)
    read_package(path)  # the templates must always give a valid package
    shown = shlex.quote(str(path))
    click.echo(
        f"next: edit {shlex.quote(str(path / 'model.py'))}, then run `pkg predict {shown} --example hello`"
    )


def write_new_files(path: Path, rendered: dict[Path, str]) -> None:
    """Create `path` and write each file; a path that cannot be written is a PackagerError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        for target, text in rendered.items():
            with target.open("x", encoding="utf-8") as out:
                out.write(text)
            click.echo(f"created {target}")
    except OSError as exc:
        where = exc.filename or path
        why = (exc.strerror or type(exc).__name__).lower()
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            why = "a file is in the way"
        raise PackagerError(f"cannot create {where}: {why}; pick a directory you can write to") from None


def default_name(path: Path) -> str:
    """A valid package name made from a directory name: 'My Model' -> 'my-model'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", path.resolve().name.lower())
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", name[:64]) or "model"


def check_name(name: str, *, hint: bool = False) -> str:
    """`name` if package.yaml accepts it, else a usage error saying why."""
    try:
        Spec.model_validate({"spec_version": 1, "name": name})
    except ValidationError as exc:
        why = exc.errors(include_url=False)[0]["msg"]
        extra = "; pass --name" if hint else ""
        raise click.BadParameter(f"{name!r}: {why}{extra}", param_hint="'--name'") from None
    return name


def main() -> None:
    """Entry point of the `pkg` script."""
    cli(prog_name="pkg")
