"""The build side of `pkg build`: the build context (Dockerfile, package copy) of a package.

Build-side only: it uses jinja2, and the in-image runtime never imports it (the import-linter
contract in pyproject.toml). docs/building.md describes what it writes.
"""

from __future__ import annotations

from packager._build._context import BuildContext, build_context
from packager._build._write import render_dockerfile, write_context

__all__ = ["BuildContext", "build_context", "render_dockerfile", "write_context"]
