"""The HTTP server: one ASGI app over the same Pipeline that `packager.load()` drives.

`serve(path)` runs it with uvicorn (what `pkg serve` and the container
entrypoint call); `create_app(pipeline)` builds the ASGI app for tests or
another ASGI server. Imports are deferred so that `packager.connect()` and the
codec do not pull uvicorn in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from packager._pipeline import Pipeline
    from packager._server._app import App

__all__ = ["create_app", "serve"]


def serve(
    path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    reload: bool = False,
) -> int:
    """Serve the package at `path` over HTTP until SIGTERM/SIGINT; return the exit code.

    The spec is validated and the model class imported and checked before the
    port is bound (a PackagerError is raised then); the model then loads in
    the background while liveness already answers. Returns 0 after a clean
    shutdown, 1 when the model failed to load, 3 when every predict slot stayed
    stuck for runtime.stuck_exit_s (see docs/serving.md for every exit code).
    `reload`: load the package again whenever its files change (development only;
    docs/serving.md#live-reload).
    """
    from packager._server._main import serve as _serve

    return _serve(path, host=host, port=port, log_level=log_level, reload=reload)


def create_app(pipeline: Pipeline, **options: Any) -> App:
    """The ASGI app serving `pipeline` (see `packager._server._app.App` for the options)."""
    from packager._server._app import App

    return App(pipeline, **options)
