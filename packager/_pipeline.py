"""The one predict pipeline: validation -> preprocess -> predict -> postprocess.

The order of the stages is written once, as generators that yield a `Call`
for each piece of model code to run and receive its result back
(`Pipeline.load_plan`, `Pipeline.plan`). How a call runs is left to a driver
(`_runners.py`): in the caller's thread for `packager.load().predict()`, or on
the server's event loop with sync code moved to threads, predict behind the
concurrency semaphore and, for batching models, through the batcher. So the
notebook, `pkg serve` and the container share this code and nothing forks it.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from packager._contract import Contract, inspect_model
from packager._device import resolve_device
from packager._errors import ContractError, InputError, NotReadyError, PredictError
from packager._fetch import build_only_secrets, fetch_weights, remote_sources, warn_unbaked
from packager._imports import import_model
from packager._isolation import Namespace
from packager._outputs import wrap_stages
from packager._secrets import resolve_secrets
from packager._spec_load import Package

Plan = Generator["Call", Any, Any]


class Call(NamedTuple):
    """One piece of model code for a driver to run: ``fn(*args)``, awaited if `is_async`.

    A NamedTuple rather than a frozen dataclass: one is built per stage per
    request, and this is several times cheaper to build.
    """

    stage: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    is_async: bool


def detect_device() -> str:
    """`$PACKAGER_DEVICE` (checked), else 'cuda' when a GPU is visible to this process, else 'cpu'."""
    return resolve_device(None)


def apply_environment(environment: Mapping[str, str]) -> None:
    """Set the spec's `environment` in this process, as the image's ENV does; values already set win."""
    for name, value in environment.items():
        os.environ.setdefault(name, value)


def is_stream(value: Any) -> bool:
    """Whether predict produced a stream of chunks rather than one output."""
    return inspect.isgenerator(value) or inspect.isasyncgen(value)


class Pipeline:
    """Owns one model instance and runs every request through the same stages."""

    def __init__(
        self,
        package: Package,
        *,
        device: str | None = None,
        secrets: Mapping[str, str] | None = None,
        weights_dir: str | Path | None = None,
    ) -> None:
        self.package = package
        self.spec = package.spec
        self.device = resolve_device(device)
        self.weights_dir = weights_dir_for(package, weights_dir)
        self._secret_overrides = dict(secrets or {})
        where = f"{self.spec.model.file}:{self.spec.model.class_name}"
        cls, self.namespace = _model_class(package)
        try:
            extra = package.origin.init_names if package.origin else ()  # a Truss model's own kwargs
            self.contract: Contract = inspect_model(cls, where, extra)
            if package.origin is not None:  # Truss checks only pydantic-model annotations
                self.contract = package.origin.adapt_contract(self.contract)
        except BaseException:
            self.namespace.forget()
            raise
        self.model: Any = None
        self.load_seconds: float | None = None
        self._stages: dict[str, tuple[Callable[..., Any], bool]] = {}

    def unload(self) -> None:
        """Let the model instance and the package's modules go (`ModelHandle.close`)."""
        self.model = None
        self._stages = {}
        self.namespace.forget()

    @property
    def ready(self) -> bool:
        """True once the model is built and loaded."""
        return self.model is not None

    @property
    def streams(self) -> bool:
        """True when predict yields chunks."""
        return self.contract.streams

    @property
    def batches(self) -> bool:
        """True when the model defines predict_batch."""
        return "predict_batch" in self.contract.stages

    def schema(self) -> dict[str, Any]:
        """JSON Schemas of the input and output (of one chunk when streaming), and how it serves."""
        return {
            "name": self.spec.name,
            "input": self.contract.input_schema(),
            "output": self.contract.output_schema(),
            "streaming": self.streams,
            "batching": self.batches,
        }

    def weights_paths(self) -> dict[str, Path]:
        """Where each weight source's files are: local ones in the package, others under weights_dir."""
        return {
            w.dir: (self.package.root / w.source) if w.kind == "local" else self.weights_dir / w.dir
            for w in self.spec.weights
        }

    def load_plan(self) -> Plan:
        """Apply the spec's environment, resolve secrets, fetch remote weights, build the model, run load()."""
        started = time.perf_counter()
        apply_environment(self.spec.environment)
        optional = build_only_secrets(self.spec)  # the image has those weights already
        origin = self.package.origin
        optional |= origin.optional_secrets if origin else set()  # Truss reads secrets lazily
        secrets = resolve_secrets(self.spec.secrets, self._secret_overrides, optional)
        warn_unbaked(self.spec, self.weights_dir, str(self.package.root))
        if remote_sources(self.spec, ("start",)):  # 'fetch: start' weights land before __init__ (_fetch)
            fetch = functools.partial(fetch_weights, self.spec, self.weights_dir, secrets, when=("start",))
            yield Call("fetch", fetch, (), False)
        available = {
            "config": self.spec.model_dump(mode="json", by_alias=True),
            "spec": self.spec,
            "data_dir": self.package.root / "data",
            "device": self.device,
            "secrets": secrets,
            "weights": self.weights_paths(),
            "weights_dir": self.weights_dir,
        }
        if origin is not None:
            available.update(origin.init_values(available))
        kwargs = {name: available[name] for name in self.contract.init_kwargs}
        build = functools.partial(self.contract.cls, **kwargs)
        model = yield Call("init", self.namespace.while_loading(build), (), False)
        if self.contract.has_load:
            is_async = "load" in self.contract.async_methods
            yield Call("load", self.namespace.while_loading(model.load, is_async), (), is_async)
        self._bind(model)
        self.load_seconds = time.perf_counter() - started

    def plan(self, raw: Any) -> Plan:
        """The stages for one input; returns the output, or a (async) generator when streaming."""
        if self.model is None:
            raise NotReadyError("the model is not loaded yet; wait for readiness (GET /v1/models/NAME)")
        value = self.validate(raw)
        stages = self._stages
        if "preprocess" in stages:
            fn, is_async = stages["preprocess"]
            value = yield Call("preprocess", fn, (value,), is_async)
        fn, is_async = stages["predict"]
        output = yield Call("predict", fn, (value,), is_async)
        if "postprocess" in stages:
            if is_stream(output):
                raise ContractError(
                    "predict returned a generator but the model also has postprocess; remove one"
                )
            fn, is_async = stages["postprocess"]
            output = yield Call("postprocess", fn, (output,), is_async)
        return output

    def batch_call(self, values: list[Any]) -> Call:
        """The predict_batch call for a gathered batch of preprocessed inputs."""
        fn, is_async = self._stages["predict_batch"]
        return Call("predict_batch", fn, (values,), is_async)

    def health_call(self) -> Call | None:
        """The model's is_healthy() call, when it defines one."""
        fn = getattr(self.model, "is_healthy", None)
        if fn is None:
            return None
        return Call("is_healthy", fn, (), "is_healthy" in self.contract.async_methods)

    def validate(self, raw: Any) -> Any:
        """Check `raw` against the annotated input type; InputError lists every field problem."""
        adapter = self.contract.input_adapter
        if adapter is None:
            return raw
        try:
            return adapter.validate_python(raw)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            raise InputError(f"input is invalid: {_summarise(errors)}", errors) from None

    def _bind(self, model: Any) -> None:
        asyncs = self.contract.async_methods
        stages = {name: (getattr(model, name), name in asyncs) for name in self.contract.stages}
        if "predict" not in stages:
            batch_fn, batch_async = stages["predict_batch"]
            stages["predict"] = (_single_from_batch(batch_fn, batch_async), batch_async)
        self._stages = wrap_stages(stages, self.contract)  # outputs checked against their annotations
        self.model = model


def _model_class(package: Package) -> tuple[type, Namespace]:
    """The model class: model.py's, or for a `server:` package the built-in proxy to that server."""
    spec = package.spec
    if spec.server is None:
        return import_model(package.root, spec.model.file, spec.model.class_name)
    from packager._server._proxy import ProxyModel  # docs/server.md: the inner server is the model

    return ProxyModel, Namespace(package.root, package.root / spec.model.file)


def check_batch_outputs(outputs: Any, count: int) -> list[Any] | tuple[Any, ...]:
    """`outputs` of predict_batch for `count` inputs, or PredictError when it is not one per input."""
    if isinstance(outputs, (list, tuple)) and len(outputs) == count:
        return outputs
    got = f"{len(outputs)} outputs" if isinstance(outputs, (list, tuple)) else f"a {type(outputs).__name__}"
    raise PredictError(
        f"predict_batch returned {got} for a batch of {count} inputs; "
        "it must return a list with one output per input, in order"
    )


def _single_from_batch(batch_fn: Callable[..., Any], is_async: bool) -> Callable[[Any], Any]:
    """predict for a model that only defines predict_batch: a batch of one."""
    if is_async:

        async def predict_async(value: Any) -> Any:
            return check_batch_outputs(await batch_fn([value]), 1)[0]

        return predict_async
    return lambda value: check_batch_outputs(batch_fn([value]), 1)[0]


def _summarise(errors: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def weights_dir_for(package: Package, weights_dir: str | Path | None = None) -> Path:
    """Where remote weights go: `weights_dir`, else $PACKAGER_WEIGHTS_DIR, else ~/.cache/packager/weights/NAME."""
    return Path(weights_dir or os.environ.get("PACKAGER_WEIGHTS_DIR") or _default_weights_dir(package))


def _default_weights_dir(package: Package) -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "packager" / "weights" / package.spec.name
