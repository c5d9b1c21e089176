"""Find the files packager ships: Jinja templates (``templates/``) and the catalogue (``library/``).

In an installed wheel both live inside the package (``packager/templates``,
``packager/library``, see pyproject's force-include); in a source checkout or
an editable install they sit at the repository root, next to ``packager/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from packager._errors import PackagerError

if TYPE_CHECKING:
    from importlib.abc import Traversable

_CHECKOUT = Path(__file__).resolve().parent.parent


def shipped_dir(name: str) -> Traversable:
    """The shipped folder `name` ("templates" or "library"), wherever this install keeps it."""
    inside = files("packager") / name
    if inside.is_dir():
        return inside
    checkout = _CHECKOUT / name
    if checkout.is_dir():
        return checkout
    raise PackagerError(f"packager's {name}/ folder is missing from this installation; reinstall packager")


def templates_dir() -> Traversable:
    """The Jinja templates `pkg new` (and later `pkg build`) render."""
    return shipped_dir("templates")


def library_dir() -> Traversable:
    """The catalogue of ready-made packages used by `pkg init NAME`."""
    return shipped_dir("library")


def render_template(template: str, /, **context: Any) -> str:
    """Render templates/`template` with `context`; a variable it uses but is not given is an error."""
    source = templates_dir() / template
    if not source.is_file():
        raise PackagerError(f"template {template!r} is missing from this installation; reinstall packager")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # The templates are YAML, Python and Dockerfiles, never HTML: escaping would corrupt them.
        autoescape=jinja2.select_autoescape(default_for_string=False),
    )
    return env.from_string(source.read_text(encoding="utf-8")).render(**context)
