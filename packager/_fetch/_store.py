"""The weights cache: one lock per destination folder and a marker once a fetch is complete.

A folder ``<weights_dir>/<dir>`` is complete when it holds ``.complete``, a
JSON record of the source and the sha256 of each file fetched. Fetches into
the same folder take turns on ``.<dir>.lock`` next to it (``fcntl.flock``),
so concurrent starts sharing a cache download once and never see each
other's partial files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARKER = ".complete"
_log = logging.getLogger("packager.weights")


def read_marker(dest: Path) -> dict[str, Any] | None:
    """The completed marker of `dest`, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(dest: Path, source: str, expected: Mapping[str, str]) -> bool:
    """Whether `dest` holds a finished fetch of `source` whose files match `expected`."""
    marker = read_marker(dest)
    if marker is None or marker.get("source") != source:
        return False
    files = marker.get("files") or {}
    return all(files.get(name) == digest for name, digest in expected.items())


def write_marker(dest: Path, source: str, files: Mapping[str, str]) -> None:
    """Record `dest` as a complete fetch of `source` (written to a temporary name, then renamed)."""
    temporary = dest / (MARKER + ".tmp")
    temporary.write_text(json.dumps({"source": source, "files": dict(files)}, indent=1), encoding="utf-8")
    os.replace(temporary, dest / MARKER)


@contextmanager
def locked(dest: Path) -> Iterator[None]:
    """Hold the lock of destination folder `dest` (waiting for another process that holds it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log.info("weights %s: another process is fetching them; waiting", dest.name)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
