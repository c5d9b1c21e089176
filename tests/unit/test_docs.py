"""The docs are executed: README and every page in docs/ run as written, and generated parts match.

Fenced blocks are run in order, in a fresh directory per page:

- ```` ```python file=PATH ```` and ```` ```yaml file=PATH ```` blocks are written to PATH;
- ```` ```pycon ```` blocks run as doctests (shared names within a page);
- ```` ```console ```` blocks run each ``$ command`` with bash (`pkg` is this checkout's CLI) and
  compare what it prints with the lines below it; a command ending in ``&`` starts in the
  background and is stopped when the page is done; ports 8080 and 8081 (a page's second server)
  become free ports.

Every package.yaml a page writes must then pass `read_package`.
"""

from __future__ import annotations

import doctest
import importlib.machinery
import importlib.util
import io
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import packager
from packager import _errors

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "README.md",
    *(
        f"docs/{p}"
        for p in (
            "index.md",
            "quickstart.md",
            "model.md",
            "errors.md",
            "cli.md",
            "spec.md",
            "http.md",
            "serving.md",
            "building.md",
            "weights.md",
            "playground.md",
            "io.md",
            "openai.md",
            "library.md",
            "deploy.md",
            "server.md",
            "truss.md",
        )
    ),
]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
PLACEHOLDER_MODEL = "class Model:\n    def predict(self, inputs):\n        return inputs\n"


@dataclass
class Block:
    lang: str
    attrs: dict[str, str]
    body: str
    line: int


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        attrs = dict(part.partition("=")[::2] for part in match["attrs"].split())
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match["lang"], attrs, match["body"], line))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PageRunner:
    """Runs one page's blocks in `workdir`; `background` holds the `cmd &` processes."""

    def __init__(self, page: Path, workdir: Path) -> None:
        self.page = page
        self.workdir = workdir
        self.port = str(free_port())
        self.port2 = str(free_port())
        self.globs: dict[str, Any] = {}
        self.background: list[subprocess.Popen[bytes]] = []
        shims = workdir.parent / "bin"
        shims.mkdir(exist_ok=True)
        (shims / "pkg").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m packager "$@"\n')
        (shims / "pkg").chmod(0o755)
        self.env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    def run(self, block: Block) -> bool:
        """Run `block`; False when it is not a runnable kind."""
        if "file" in block.attrs:
            target = self.workdir / block.attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body, encoding="utf-8")
        elif block.lang == "pycon":
            self.doctest(block)
        elif block.lang == "console":
            self.console(block)
        else:
            return False
        return True

    def doctest(self, block: Block) -> None:
        name = f"{self.page.name}:{block.line}"
        # the same free ports as the console blocks
        body = block.body.replace(":8080", f":{self.port}").replace(":8081", f":{self.port2}")
        test = doctest.DocTestParser().get_doctest(body, self.globs, name, str(self.page), block.line)
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, out=report.write, clear_globs=False)
        assert runner.failures == 0, report.getvalue()

    def console(self, block: Block) -> None:
        for command, expected in commands(block.body):
            command = command.replace("8080", self.port).replace("8081", self.port2)
            if command.endswith("&"):
                self.start(command[:-1])
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=self.workdir, env=self.env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, timeout=300, check=False,
            )  # fmt: skip
            where = f"{self.page.name}:{block.line}: $ {command}"
            if not (expected and expected[0].startswith("error:")):
                assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout}"
            if expected:
                assert done.stdout.rstrip("\n").splitlines() == expected, f"{where}\n{done.stdout}"

    def start(self, command: str) -> None:
        log = self.workdir.parent / f"background-{len(self.background)}.log"
        with log.open("wb") as out:
            self.background.append(
                subprocess.Popen(
                    ["bash", "-c", f"exec {command}"],
                    cwd=self.workdir,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def commands(body: str) -> Iterator[tuple[str, list[str]]]:
    """Each `$ command` of a console block with the output lines below it."""
    command: str | None = None
    output: list[str] = []
    for line in body.rstrip("\n").splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, output
            command, output = line[2:].strip(), []
        else:
            output.append(line)
    if command is not None:
        yield command, output


@pytest.mark.slow
@pytest.mark.parametrize("name", PAGES)
def test_page_runs_as_written(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = ROOT / name
    page_blocks = blocks(page)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    runner = PageRunner(page, workdir)
    ran = 0
    try:
        for block in page_blocks:
            ran += runner.run(block)
    finally:
        runner.stop()
    assert ran, f"{name} has no runnable example"
    for spec_file in workdir.rglob("package.yaml"):
        if not (spec_file.parent / "model.py").exists() and "\nserver:" not in spec_file.read_text():
            (spec_file.parent / "model.py").write_text(PLACEHOLDER_MODEL)
        packager.read_package(spec_file.parent)


def test_quickstart_is_in_the_readme() -> None:
    kinds = {(b.lang, b.attrs.get("file")) for b in blocks(ROOT / "README.md")}
    assert {("python", "hello/model.py"), ("yaml", "hello/package.yaml"), ("pycon", None)} <= kinds
    consoles = " ".join(b.body for b in blocks(ROOT / "README.md") if b.lang == "console")
    for step in ("pkg predict hello", "pkg serve hello", "curl -s localhost:8080/v1/models/hello:predict"):
        assert step in consoles


def test_readme_starts_with_the_demo_then_the_tests() -> None:
    first = next(b for b in blocks(ROOT / "README.md") if b.lang == "bash")
    assert [line.split()[0] for line in first.body.splitlines()] == ["scripts/demo", "scripts/test"]
    for script in ("scripts/demo", "scripts/test", "scripts/check", "scripts/gen-docs", ".ci/run"):
        assert os.access(ROOT / script, os.X_OK), script


# --- generated parts -----------------------------------------------------------------------------


def gen_docs() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gen_docs", str(ROOT / "scripts" / "gen-docs"))
    spec = importlib.util.spec_from_loader("gen_docs", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["docs/spec.schema.json", "docs/spec.md", "docs/cli.md"])
def test_generated_docs_are_up_to_date(name: str) -> None:
    expected = gen_docs().expected()[ROOT / name]
    assert (ROOT / name).read_text(encoding="utf-8") == expected, f"{name} is stale: run scripts/gen-docs"


def test_spec_reference_lists_every_field() -> None:
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    for path in ("spec_version", "resources.accelerator", "model.class", "weights[].fetch",
                 "runtime.batching.max_wait_ms", "examples[].output", "build.commands"):  # fmt: skip
        assert f"| `{path}` |" in text


def test_full_spec_example_sets_most_fields(tmp_path: Path) -> None:
    example = next(b for b in blocks(ROOT / "docs" / "spec.md") if b.attrs.get("file") == "package.yaml")
    (tmp_path / "package.yaml").write_text(example.body)
    (tmp_path / "model.py").write_text(PLACEHOLDER_MODEL)
    spec = packager.read_package(tmp_path).spec
    unset = [name for name in type(spec).model_fields if name not in spec.model_fields_set]
    assert unset == ["requirements_file", "server"]  # the alternatives to `requirements` and model.py


# --- errors.md mirrors packager/_errors.py --------------------------------------------------------


def test_error_tree_matches_the_source() -> None:
    docstring = _errors.__doc__ or ""
    tree = textwrap.dedent(docstring[docstring.index("    PackagerError") :].split("\n\n")[0])
    text_blocks = [b.body for b in blocks(ROOT / "docs" / "errors.md") if b.lang == "text"]
    assert tree.strip() + "\n" in text_blocks


def test_error_table_gives_each_status_code() -> None:
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", (ROOT / "docs" / "errors.md").read_text(), re.M)
    documented = dict(rows)
    assert set(documented) == set(_errors.__all__) - {"SpecIssue"}
    for name, status in documented.items():
        if name != "ClientError":
            assert status.strip() == str(getattr(_errors, name).status_code), name
