"""An entry's README.md: its title (``# NAME: TASK``), summary and required sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_SECTIONS = ("What it does", "Hardware", "Example", "Weights", "Speed")
"""The ``## `` sections every entry's README must have (more are welcome), in any order."""

_TITLE = re.compile(r"^# (?P<name>[a-z0-9._-]+): (?P<task>\S.*)$")
_SECTION = re.compile(r"^## +(?P<title>.+?) *$")
_FENCE = re.compile(r"^(```|~~~)")


@dataclass(frozen=True)
class Readme:
    """The parts of a README the catalogue shows and checks."""

    name: str
    task: str
    summary: str
    sections: dict[str, str] = field(default_factory=dict)


def read_readme(path: Path) -> tuple[Readme, list[str]]:
    """The README at `path` and its problems (an empty list when it follows the rules)."""
    if not path.is_file():
        return Readme("", "", ""), [f"{path.name} is missing"]
    lines = path.read_text(encoding="utf-8").splitlines()
    title = _TITLE.match(lines[0]) if lines else None
    problems = (
        [] if title else ["the first line must be the title '# NAME: TASK', e.g. '# clip: image embeddings'"]
    )
    preamble, sections = _split(lines[1:])
    summary = _first_paragraph(preamble)
    if not summary:
        problems.append("a summary paragraph must follow the title, before the first '## ' section")
    missing = [s for s in REQUIRED_SECTIONS if s not in sections]
    if missing:
        problems.append("missing sections: " + ", ".join(f"'## {s}'" for s in missing))
    problems += [f"section '## {s}' is empty" for s in REQUIRED_SECTIONS if s in sections and not sections[s]]
    name, task = (title["name"], title["task"].strip()) if title else ("", "")
    return Readme(name, task, summary, sections), problems


def _split(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    """The lines before the first ``## `` heading, and each section's text (fenced code skipped)."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current = preamble
    fenced = False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _SECTION.match(line)
        if heading:
            current = sections.setdefault(heading["title"], [])
        else:
            current.append(line)
    return preamble, {title: "\n".join(body).strip() for title, body in sections.items()}


def _first_paragraph(lines: list[str]) -> str:
    paragraph: list[str] = []
    for line in lines:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    return " ".join(paragraph)
