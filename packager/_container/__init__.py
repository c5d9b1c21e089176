"""Containers of built images: `pkg run` (_run) and `pkg push` (_push) through the `docker` SDK.

Build-side only: the in-image runtime never imports it (the import-linter contract in
pyproject.toml). Nothing is imported here, so that `pkg --help` does not load the SDK.
docs/building.md describes both commands.
"""
