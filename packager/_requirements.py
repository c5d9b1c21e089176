"""pip requirement lines: each must be PEP 508 (or a URL or path), as `package.yaml` checks them.

Used for the spec's inline `requirements` (a pydantic validator) and for
each line of its `requirements_file`, read the way pip reads one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as _Pep508

_URL_OR_PATH = re.compile(r"^(\.{1,2}/|/|[A-Za-z][A-Za-z0-9+.-]*://)")
_SINGLE_EQUALS = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?)\s*=\s*([0-9][^=<>!~;]*)$")


def requirement_problem(line: str) -> str | None:
    """Why `line` is not a pip requirement (PEP 508, a URL or a path), or None when it is one."""
    text = line.strip()
    if text.startswith("-"):
        return (
            "a pip option, not a requirement; put index URLs under build.extra_index_urls "
            "and find-links under build.find_links"
        )
    if _URL_OR_PATH.match(text):
        return None  # pip installs a bare URL or path as is
    try:
        _Pep508(text)
    except InvalidRequirement as exc:
        why = str(exc).splitlines()[0].rstrip(".")
        exact = _SINGLE_EQUALS.match(text)
        hint = (
            f"use '==' for an exact version, e.g. '{exact[1]}=={exact[3].strip()}'"
            if exact
            else "write it like 'numpy>=1.26' or 'name @ https://...'"
        )
        return f"not a valid requirement: {why}; {hint}"
    return None


def requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, requirement) for each requirement in a requirements.txt, as pip reads it."""
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        while line.endswith("\\") and number + 1 < len(lines):
            number += 1
            line = line[:-1] + lines[number]
        number += 1
        line = _COMMENT.sub("", line)
        line = _OPTIONS.sub("", line).strip()
        if line and not line.startswith("-"):
            yield start, line


_COMMENT = re.compile(r"(^|\s)#.*$")
_OPTIONS = re.compile(r"\s--?[A-Za-z].*$")  # per-requirement options such as --hash=...
