"""A one-line hint for a failed build, from the rules in data/hints.json (first match wins)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def _rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    text = (files("packager._build") / "data" / "hints.json").read_text(encoding="utf-8")
    return tuple((re.compile(rule["match"]), rule["hint"]) for rule in json.loads(text)["rules"])


def hint(lines: Iterable[str]) -> str | None:
    """The hint for a build whose failing step logged `lines`, or None when no rule matches."""
    text = "\n".join(lines)
    for pattern, message in _rules():
        found = pattern.search(text)
        if found:
            return message.format(*(found.groups() or (found.group(0),)))
    return None
