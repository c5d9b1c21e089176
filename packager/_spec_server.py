"""The `server` section of the spec: an existing HTTP inference server run as the package's model.

With `server:` the package needs no model.py: the packager server starts
`command`, waits for `readiness_path` to answer 200 and serves the uniform
interface in front of it (`packager/_server/_proxy*.py`, docs/server.md).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator

from packager._errors import _MISSING, SpecIssue
from packager._spec_base import _fail, _Strict

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


class Server(_Strict):
    """An existing HTTP server to run as the model: packager starts it and serves in front of it."""

    command: list[str] = Field(
        description="The command that starts the server: a list of arguments, or one string split "
        "like a shell would (no shell features; write ['sh', '-c', '...'] for those).",
    )
    port: int = Field(8000, ge=1, le=65535, description="The port the server listens on (127.0.0.1).")
    predict_path: str = Field(description="Where `:predict` requests are forwarded (POST), e.g. '/predict'.")
    readiness_path: str = Field(
        "/health", description="Answers 200 once the server can take requests; polled at start."
    )
    liveness_path: Optional[str] = Field(
        None, description="Answers 200 while the server is alive; default: readiness_path."
    )
    routes: list[str] = Field(
        default_factory=list,
        description="Further paths of the server exposed through the front as they are, e.g. "
        "'/v1/chat/completions'; a trailing '/*' exposes every path under a prefix.",
    )
    startup_timeout_s: float = Field(
        600.0, gt=0, le=86_400, description="Longest the server may take to become ready."
    )
    environment: dict[str, str] = Field(
        default_factory=dict, description="Environment variables for the server's process only."
    )

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise _fail("server_command", f"cannot split the command ({exc}); check its quotes") from None
        if isinstance(value, list) and not value:
            raise _fail(
                "server_command", "give the command that starts the server, e.g. ['python', 'serve.py']"
            )
        if isinstance(value, list):
            return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("predict_path", "readiness_path", "liveness_path")
    @classmethod
    def _path(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _PATH.match(value):
            raise _fail("server_path", "expected a URL path starting with '/', e.g. '/predict'")
        return value

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        for route in value:
            base = route[:-2] if route.endswith("/*") else route
            if not _PATH.match(base or "/") or "*" in base:
                raise _fail(
                    "server_route", f"{route!r}: expected a path such as '/v1/chat/completions' or '/v1/*'"
                )
            if route in ("/*", "/") or base.startswith(("/v1/models", "/v2", "/metrics")):
                raise _fail(
                    "server_route",
                    f"{route!r} would shadow packager's own routes (/v1/models/..., /v2/..., /metrics); "
                    "expose the server's specific paths instead",
                )
        if len(set(value)) != len(value):
            raise _fail("server_route_dupe", "each route may appear only once")
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        bad = [k for k in value if not isinstance(k, str) or not _ENV_NAME.match(k)]
        if bad:
            raise _fail("environment", f"{bad[0]!r} is not a valid variable name")
        return {k: _text(v) for k, v in value.items()}

    @property
    def live_path(self) -> str:
        """The path polled for liveness (liveness_path, else readiness_path)."""
        return self.liveness_path or self.readiness_path

    def exposes(self, path: str) -> bool:
        """Whether `path` is one of `routes` (or under one of its '/*' prefixes)."""
        for route in self.routes:
            if path == route or (route.endswith("/*") and path.startswith(route[:-1])):
                return True
        return False


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else value


def check_server(server: Optional[Server], spec: dict[str, Any]) -> Optional[Server]:
    """The checks across sections: what a package with `server:` cannot also ask for."""
    if server is None:
        return None
    runtime = spec.get("runtime")
    openai = list(getattr(runtime, "openai", []) or [])
    if openai:
        raise _fail(
            "server_openai",
            "runtime.openai serves OpenAI routes over a model's predict; with server: expose the "
            "server's own routes instead (routes: ['/v1/chat/completions']) and remove runtime.openai",
        )
    return server


def server_file_issues(raw: dict[str, Any], root: Path, shown: str) -> Iterator[SpecIssue]:
    """With `server:` the server is the model: a model section or model file would be ignored, so
    each is a problem (the user decides which one the package is)."""
    if "model" in raw:
        yield SpecIssue(
            shown,
            "model",
            _MISSING,
            "a package with server: has no model class; remove the model section (or remove server:)",
        )
    model = raw.get("model")
    model_file = model.get("file", "model.py") if isinstance(model, dict) else "model.py"
    if isinstance(model_file, str) and (root / model_file).is_file():
        yield SpecIssue(
            shown,
            "server",
            _MISSING,
            f"the package has both server: and {model_file}; the server is the model, so "
            f"{model_file} would never run: delete it (or remove server: to serve {model_file})",
        )
