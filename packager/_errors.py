"""The exception tree.

Every error `packager` raises on purpose derives from `PackagerError`, so
``except packager.PackagerError`` catches "you (or your model) did something
wrong" while real bugs still surface with their traceback::

    PackagerError
    ├── SpecError              package.yaml is invalid (all problems at once)
    ├── ModelLoadError         the model could not be imported, built or loaded
    │   ├── ModelImportError   model file missing, syntax error, missing dependency
    │   └── ContractError      the model class breaks the model contract
    ├── SecretError            a declared secret has no value
    ├── InputError             a request's input failed validation (HTTP 422)
    ├── PredictError           the model raised while serving a request (HTTP 500)
    ├── PredictTimeout         a request ran past runtime.request_timeout_s (HTTP 504)
    ├── OverloadedError        the request queue is full (HTTP 429)
    ├── NotReadyError          the model is not loaded yet (HTTP 503)
    │   └── SlotUnavailable    no predict slot came free in time, or all are stuck (HTTP 503)
    └── ClientError            `packager.connect()` could not get an answer

`status_code` on each class is the HTTP status the server answers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ClientError",
    "ContractError",
    "InputError",
    "ModelImportError",
    "ModelLoadError",
    "NotReadyError",
    "OverloadedError",
    "SlotUnavailable",
    "PackagerError",
    "PredictError",
    "PredictTimeout",
    "SecretError",
    "SpecError",
    "SpecIssue",
]


class PackagerError(Exception):
    """Root of every error packager raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec file: where it is, what was written, what to write."""

    file: str
    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        shown = _show_value(self.value)
        return f"{where}: {self.message}" + (f" (got {shown})" if shown else "")


_MISSING = object()


def _show_value(value: Any) -> str:
    if value is _MISSING or value is None:
        return ""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class SpecError(PackagerError):
    """The spec file is invalid. `issues` holds every problem found, not just the first."""

    status_code = 500

    def __init__(self, file: str, issues: Sequence[SpecIssue]) -> None:
        self.file = file
        self.issues = list(issues)
        count = len(self.issues)
        head = f"{file}: {count} problem{'s' if count != 1 else ''}"
        body = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{head}\n{body}" if body else head)


class ModelLoadError(PackagerError):
    """The model could not be imported, constructed or loaded."""

    status_code = 503


class ModelImportError(ModelLoadError):
    """Importing the model file failed (missing file, syntax error, missing dependency).

    `file` and `line` point at the offending place when known; `requirement`
    names the pip requirement to add for a missing dependency.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        requirement: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.requirement = requirement


class ContractError(ModelLoadError):
    """The model class does not follow the model contract (see docs/model.md)."""


class SecretError(PackagerError):
    """A secret declared in the spec has no value."""

    status_code = 500


class InputError(PackagerError):
    """The input failed validation. `errors` lists each field problem.

    Each item is a dict with ``loc`` (a list of keys), ``msg`` and ``type``.
    """

    status_code = 422

    def __init__(self, message: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


class PredictError(PackagerError):
    """The model raised while handling a request. The original is the ``__cause__``."""

    status_code = 500


class PredictTimeout(PackagerError):
    """The request did not finish within ``runtime.request_timeout_s``."""

    status_code = 504


class OverloadedError(PackagerError):
    """Too many requests are waiting; retry after ``retry_after`` seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReadyError(PackagerError):
    """The model has not finished loading (or failed to)."""

    status_code = 503


class SlotUnavailable(NotReadyError):
    """No predict slot: every slot is held by a call past its timeout, or none came free in time.

    The request's own work never started, so it is safe to retry elsewhere.
    """


class ClientError(PackagerError):
    """A remote server could not be reached or answered with an error.

    `status_code` is the server's HTTP status (0 when no answer came) and
    `body` the decoded JSON error body when there was one.
    """

    def __init__(self, message: str, status_code: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
