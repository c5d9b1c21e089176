"""packager: package an ML model once; run it in a notebook, behind HTTP, or in a GPU image.

A package is a directory with ``package.yaml`` and a model class::

    # model.py
    class Model:
        def load(self):
            self.greeting = "hello"

        def predict(self, inputs):
            return {"text": f"{self.greeting} {inputs['name']}"}

    >>> import packager
    >>> model = packager.load("path/to/package")
    >>> model.predict({"name": "world"})
    {'text': 'hello world'}

The same pipeline serves ``pkg serve path`` and the container built by
``pkg build path``; ``packager.connect(url)`` talks to either with the same
``predict`` shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packager._errors import (
    ClientError,
    ContractError,
    InputError,
    ModelImportError,
    ModelLoadError,
    NotReadyError,
    OverloadedError,
    PackagerError,
    PredictError,
    PredictTimeout,
    SecretError,
    SlotUnavailable,
    SpecError,
    SpecIssue,
)
from packager._handle import ModelHandle, load
from packager._image import build, run
from packager._reload_cache import reload_cache
from packager._secrets import Secrets
from packager._spec import Spec
from packager._spec_load import Package, read_package
from packager._version import __version__

if TYPE_CHECKING:
    from packager._client import RemoteModel, connect

__all__ = [
    "ClientError",
    "ContractError",
    "InputError",
    "ModelHandle",
    "ModelImportError",
    "ModelLoadError",
    "NotReadyError",
    "SlotUnavailable",
    "OverloadedError",
    "Package",
    "PackagerError",
    "PredictError",
    "PredictTimeout",
    "SecretError",
    "Secrets",
    "Spec",
    "SpecError",
    "SpecIssue",
    "RemoteModel",
    "__version__",
    "build",
    "connect",
    "load",
    "read_package",
    "reload_cache",
    "run",
]


def __getattr__(name: str) -> Any:
    """The client (`connect`, `RemoteModel`) is imported on first use: it needs httpx, which the
    in-image server does without (the image installs only what serving needs)."""
    if name in ("connect", "RemoteModel"):
        from packager import _client

        return getattr(_client, name)
    raise AttributeError(f"module 'packager' has no attribute {name!r}")
