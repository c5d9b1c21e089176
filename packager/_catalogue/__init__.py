"""The catalogue of ready-made packages (``library/``): find entries, check them, copy them.

Build-side: `pkg init` and `pkg library` use it; the in-image runtime never imports it.
docs/library.md is the user's guide, docs/contributing-library.md the contributor's.
"""

from __future__ import annotations

from packager._catalogue._check import entry_problems
from packager._catalogue._entries import Entry, copy_entry, entries, find_entry, library_root, resolve
from packager._catalogue._readme import REQUIRED_SECTIONS, Readme, read_readme

__all__ = [
    "REQUIRED_SECTIONS",
    "Entry",
    "Readme",
    "copy_entry",
    "entries",
    "entry_problems",
    "find_entry",
    "library_root",
    "read_readme",
    "resolve",
]
