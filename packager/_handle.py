"""`packager.load()`: a loaded model in this process, for notebooks, scripts and tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packager._pipeline import Pipeline
from packager._runners import AsyncRunner, SyncRunner
from packager._spec import Spec
from packager._spec_load import read_package


class ModelHandle:
    """A package's model, built and loaded once; call `predict` as often as you like.

    `predict` works in a plain script and inside a running event loop (a
    Jupyter cell): async model code runs on a private background loop, never
    on yours. For a streaming model it returns an iterator of chunks.
    `apredict` is the awaitable twin, driving the very same pipeline.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._sync = SyncRunner()
        self._async: AsyncRunner | None = None
        self._sync.run(pipeline.load_plan())

    @property
    def spec(self) -> Spec:
        """The validated package spec."""
        return self._pipeline.spec

    @property
    def name(self) -> str:
        """The package name from its spec."""
        return self._pipeline.spec.name

    @property
    def model(self) -> Any:
        """The model instance itself."""
        return self._pipeline.model

    @property
    def streams(self) -> bool:
        """True when predict yields chunks (then predict returns an iterator)."""
        return self._pipeline.streams

    @property
    def load_seconds(self) -> float:
        """How long building and loading the model took."""
        return self._pipeline.load_seconds or 0.0

    def predict(self, inputs: Any) -> Any:
        """Validate, preprocess, predict and postprocess `inputs`; return the output."""
        return self._sync.run(self._pipeline.plan(inputs))

    async def apredict(self, inputs: Any) -> Any:
        """`predict` for async code; a streaming model gives an async iterator."""
        if self._async is None:
            self._async = AsyncRunner(concurrency=self.spec.runtime.predict_concurrency)
        return await self._async.run(self._pipeline.plan(inputs))

    def example(self, name: str) -> Any:
        """The input of the spec's example called `name`."""
        return self.spec.require_example(name).input

    def schema(self) -> dict[str, Any]:
        """JSON Schemas of the input and output (of one chunk when streaming)."""
        return self._pipeline.schema()

    def __repr__(self) -> str:
        return f"<ModelHandle {self.name!r} device={self._pipeline.device!r}>"


def load(
    path: str | Path,
    *,
    device: str | None = None,
    secrets: Mapping[str, str] | None = None,
    weights_dir: str | Path | None = None,
) -> ModelHandle:
    """Load the package at `path` (its directory or package.yaml) into this process.

    The spec is validated, the model class imported and checked against the
    contract, secrets resolved, and the model built and loaded, once.
    `device` overrides detection ("cuda" if a GPU is visible, else "cpu");
    `secrets` supplies values directly instead of from the environment.

    Example::

        model = packager.load("examples/echo")
        model.predict({"text": "hi"})
    """
    return ModelHandle(Pipeline(read_package(path), device=device, secrets=secrets, weights_dir=weights_dir))
