"""`packager.reload_cache()`: what a model keeps in memory across `pkg serve --reload` reloads.

A reload imports the model code again into a fresh namespace and runs
`__init__` and `load()` again. Weights that took a minute to load need not be
loaded again: `load()` puts them in the dict `reload_cache()` returns and, on
the next reload, finds them there. The dict belongs to the package being
loaded (found through the namespace that is loading, _isolation) and lives as
long as the `pkg serve --reload` process. Everywhere else (`packager.load()`,
`pkg serve` without --reload, the container) each call returns a new empty
dict, so the same model code simply loads its weights every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager._errors import PackagerError
from packager._isolation import loading_namespace

_KEPT: dict[Path, dict[str, Any]] = {}  # package root -> its cache, while served with --reload


def reload_cache() -> dict[str, Any]:
    """A dict that survives reloads of this package under `pkg serve --reload` (else a new one).

    Call it from the model's ``__init__`` or ``load()``::

        def load(self):
            cache = packager.reload_cache()
            if "weights" not in cache:
                cache["weights"] = expensive_load()
            self.weights = cache["weights"]
    """
    namespace = loading_namespace()
    if namespace is None:
        raise PackagerError(
            "packager.reload_cache() works while a model loads: call it from __init__ or load()"
        )
    kept = _KEPT.get(namespace.root.resolve())
    return {} if kept is None else kept


def keep_across_reloads(root: Path) -> None:
    """From now on, `reload_cache()` in the package at `root` returns the same dict."""
    _KEPT.setdefault(root.resolve(), {})


def drop_reload_cache(root: Path) -> None:
    """Forget the package's cache (the server that reloads it stops)."""
    _KEPT.pop(root.resolve(), None)
