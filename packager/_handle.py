"""`packager.load()`: a loaded model in this process, for notebooks, scripts and tests."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from packager._errors import InputError, NotReadyError
from packager._pipeline import Pipeline
from packager._runners import AsyncRunner, SyncRunner
from packager._spec import Spec
from packager._spec_load import read_package

_NO_INPUT: Any = object()


class ModelHandle:
    """A package's model, built and loaded once; call `predict` as often as you like.

    `predict` works in a plain script and inside a running event loop (a
    Jupyter cell): async model code runs on a private background loop, never
    on yours. For a streaming model it returns an iterator of chunks.
    `apredict` is the awaitable twin, driving the very same pipeline.

    Threads may share one handle: at most `runtime.predict_concurrency`
    predict calls run at once, the others wait their turn. `close()` (or
    leaving a ``with packager.load(...) as model:`` block) lets the model go.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._sync = SyncRunner(concurrency=pipeline.spec.runtime.predict_concurrency)
        self._async: AsyncRunner | None = None
        self._closed = False
        try:
            self._sync.run(pipeline.load_plan())
        except BaseException:
            self._sync.close()
            pipeline.namespace.forget()
            raise

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

    def predict(self, inputs: Any = _NO_INPUT, /, **fields: Any) -> Any:
        """Validate, preprocess, predict and postprocess `inputs`; return the output.

        The input is one value (``predict({"text": "hi"})``) or keyword
        arguments, which become a dict (``predict(text="hi")``), as in Cog.
        """
        return self._sync.run(self._live().plan(_input(inputs, fields)))

    async def apredict(self, inputs: Any = _NO_INPUT, /, **fields: Any) -> Any:
        """`predict` for async code; a streaming model gives an async iterator."""
        pipeline = self._live()
        if self._async is None:
            self._async = AsyncRunner(concurrency=self.spec.runtime.predict_concurrency)
        return await self._async.run(pipeline.plan(_input(inputs, fields)))

    @property
    def closed(self) -> bool:
        """True once `close()` has let the model go."""
        return self._closed

    def close(self) -> None:
        """Let the model go: drop it and its modules, collect garbage, free cached GPU memory.

        A call already running finishes first only if it holds its own
        reference; `predict` afterwards raises NotReadyError. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self._pipeline.unload()
        if self._async is not None:
            self._async.close()
            self._async = None
        self._sync.close()
        gc.collect()
        _empty_gpu_cache()

    def __enter__(self) -> ModelHandle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _live(self) -> Pipeline:
        if self._closed:
            raise NotReadyError(
                f"model {self.name!r} was closed (ModelHandle.close()); load it again with packager.load()"
            )
        return self._pipeline

    def example(self, name: str) -> Any:
        """The input of the spec's example called `name`."""
        return self.spec.require_example(name).input

    def schema(self) -> dict[str, Any]:
        """JSON Schemas of the input and output (of one chunk when streaming)."""
        return self._pipeline.schema()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<ModelHandle {self.name!r} device={self._pipeline.device!r}{state}>"


def _input(inputs: Any, fields: dict[str, Any]) -> Any:
    if not fields:
        return {} if inputs is _NO_INPUT else inputs
    if inputs is not _NO_INPUT:
        raise InputError(
            "give predict() the input either as one value or as keyword arguments, not both: "
            f"predict({{...}}) or predict({', '.join(f'{name}=...' for name in fields)})"
        )
    return fields


def _empty_gpu_cache() -> None:
    """Hand cached CUDA memory back to the driver, when torch is in use (never imports it)."""
    torch = sys.modules.get("torch")
    with contextlib.suppress(Exception):  # a torch without CUDA support, or one half torn down
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


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
