"""Shared test set-up: markers by directory, and no network for model loading.

Tests under tests/server/ get the `server` marker, tests under tests/models/
the `model` marker and tests under tests/docker/ the `docker` marker, so a
subset can be chosen with `-m`; nothing is skipped by default: CI runs them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
MARKERS_BY_DIRECTORY = {
    "server": pytest.mark.server,
    "models": pytest.mark.model,
    "docker": pytest.mark.docker,
}

# Weights come from installed packages only; never reach for the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = item.path.resolve().relative_to(TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        marker = MARKERS_BY_DIRECTORY.get(top)
        if marker is not None:
            item.add_marker(marker)
