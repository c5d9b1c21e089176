"""The catalogue: every entry in library/ is valid and buildable; `pkg init` and `pkg library`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from packager._catalogue import REQUIRED_SECTIONS, entry_problems, read_readme
from packager._catalogue._compare import close
from packager._cli import cli
from packager._spec_load import read_package

LIBRARY = Path(__file__).resolve().parents[2] / "library"
ENTRIES = sorted(p.name for p in LIBRARY.iterdir() if (p / "package.yaml").is_file())


def pkg(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="pkg")


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_entry_validates_renders_its_build_context_and_has_the_readme_sections(entry: str) -> None:
    assert entry_problems(LIBRARY / entry) == []


def test_the_catalogue_is_not_empty_and_has_the_clip_entries() -> None:
    assert {"minilm", "clip", "clip-vit-large"} <= set(ENTRIES)


GOOD_README = "# demo: echo\n\nEchoes its input.\n\n" + "".join(
    f"## {s}\n\ntext\n\n" for s in REQUIRED_SECTIONS
)


def test_a_readme_missing_a_section_or_its_title_is_a_problem(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(GOOD_README)
    parsed, problems = read_readme(readme)
    assert problems == []
    assert (parsed.name, parsed.task, parsed.summary) == (
        "demo",
        "echo",
        "Echoes its input.",
    )
    readme.write_text(GOOD_README.replace("## Hardware\n\ntext\n\n", "").replace("# demo: echo", "# Demo"))
    _, problems = read_readme(readme)
    assert any("'# NAME: TASK'" in p for p in problems)
    assert any("'## Hardware'" in p for p in problems)


def test_a_heading_inside_a_code_block_is_not_a_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(GOOD_README.replace("## Speed\n\ntext", "```sh\n## Speed\n```"))
    _, problems = read_readme(readme)
    assert problems == ["missing sections: '## Speed'"]


def _demo_entry(root: Path, *, expected: float, readme: str = GOOD_README, source: str | None = None) -> Path:
    root.mkdir()
    (root / "model.py").write_text(
        "class Model:\n    def predict(self, x: float) -> dict:\n        return {'y': x * 3}\n"
    )
    weights = f"weights:\n  - source: {source}\n" if source else ""
    (root / "package.yaml").write_text(
        f"spec_version: 1\nname: {root.name}\ndescription: triples\n{weights}"
        f"examples:\n  - name: three\n    input: 0.1\n    output: {{y: {expected}}}\n"
    )
    (root / "README.md").write_text(readme.replace("# demo:", f"# {root.name}:"))
    return root


def test_entry_problems_finds_a_wrong_name_an_unpinned_revision_and_a_readme_gap(tmp_path: Path) -> None:
    entry = _demo_entry(tmp_path / "demo", expected=0.3, source="hf://org/repo@main")
    (entry / "package.yaml").write_text(
        (entry / "package.yaml").read_text().replace("name: demo", "name: other")
    )
    (entry / "README.md").write_text("# demo: echo\n\nsummary\n")
    problems = "\n".join(entry_problems(entry))
    assert "name is 'other'" in problems
    assert "'hf://org/repo@main' is not pinned" in problems
    assert "missing sections" in problems


def test_library_test_compares_outputs_within_the_tolerance(tmp_path: Path) -> None:
    entry = _demo_entry(tmp_path / "demo", expected=0.3)  # 0.1 * 3 is 0.30000000000000004
    result = pkg("library", "test", entry)
    assert result.exit_code == 0, result.output
    assert "ok   static checks" in result.output
    assert "ok   three" in result.output
    wrong = _demo_entry(tmp_path / "wrong", expected=0.31)
    result = pkg("library", "test", wrong, "--rtol", "0.01")
    assert result.exit_code == 1
    assert "FAIL three: y: expected 0.31, got 0.30000000000000004" in result.output
    assert pkg("library", "test", wrong, "--rtol", "0.05").exit_code == 0


def test_library_test_fails_on_static_problems_even_when_examples_pass(tmp_path: Path) -> None:
    entry = _demo_entry(tmp_path / "demo", expected=0.3, readme="# demo: echo\n\nsummary\n")
    result = pkg("library", "test", entry)
    assert result.exit_code == 1
    assert "FAIL README.md: missing sections" in result.output
    assert "ok   three" in result.output


def test_close_reports_where_the_first_difference_is() -> None:
    assert close({"a": [1.0, 2.0]}, {"a": [1.0, 2.0000001]}, rtol=1e-6, atol=0) is None
    assert (
        close({"a": [1.0, 2.1]}, {"a": [1.0, 2.0]}, rtol=1e-6, atol=0)
        == "a[1]: expected 2.0, got 2.1 (rtol 1e-06, atol 0)"
    )
    assert close([True], [1], rtol=1, atol=1) == "[0]: expected 1, got True"
    assert close({"a": 1}, {"b": 1}, rtol=0, atol=0) == "the output: expected keys ['b'], got ['a']"


def test_init_copies_an_entry_into_a_new_directory_ready_to_validate(tmp_path: Path) -> None:
    target = tmp_path / "my-minilm"
    result = pkg("init", "minilm", target)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in (LIBRARY / "minilm").iterdir() if not p.name.startswith((".", "__"))
    )
    assert (target / "model.py").read_bytes() == (LIBRARY / "minilm" / "model.py").read_bytes()
    assert read_package(target).spec.name == "minilm"
    assert f"pkg test {target}" in result.output


def test_init_refuses_a_non_empty_directory_and_suggests_close_names(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = pkg("init", "minilm", tmp_path / "taken")
    assert result.exit_code == 1
    assert "is not an empty directory" in result.output
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    result = pkg("init", "minlm", tmp_path / "x")
    assert result.exit_code == 1
    assert "error: no catalogue entry named 'minlm'; did you mean 'minilm'?" in result.output
    assert not (tmp_path / "x").exists()


def test_library_list_shows_every_entry_as_a_table_and_as_json() -> None:
    result = pkg("library", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["entry"]: row for row in json.loads(result.output)}
    assert sorted(rows) == ENTRIES
    assert rows["clip"]["accelerator"] == "T4"
    assert rows["clip"]["task"] == "image and text embeddings, zero-shot image classification"
    assert rows["clip"]["weights"] == [read_package(LIBRARY / "clip").spec.weights[0].source]
    table = pkg("library", "list")
    assert table.exit_code == 0
    assert all(any(line.startswith(f"{e} ") for line in table.output.splitlines()) for e in ENTRIES)


def test_library_show_gives_the_summary_spec_and_schema() -> None:
    result = pkg("library", "show", "minilm", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["summary"].startswith("[sentence-transformers/all-MiniLM-L6-v2]")
    assert "texts" in shown["schema"]["input"]["properties"]
    text = pkg("library", "show", "minilm")
    assert text.exit_code == 0
    assert "name: minilm" in text.output
    assert "# input/output schema" in text.output
