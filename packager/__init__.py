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

from packager._client import RemoteModel, connect
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
from packager._image import build
from packager._secrets import Secrets
from packager._spec import Spec
from packager._spec_load import Package, read_package
from packager._version import __version__

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
]
