"""The model contract: what a model class may define, checked before it is built.

A model is a plain class::

    class Model:
        def __init__(self, weights_dir, device): ...   # asks only for what it needs
        def load(self): ...                            # optional, sync or async
        def preprocess(self, inputs): ...              # optional, sync or async
        def predict(self, inputs): ...                 # sync/async, may be a (async) generator
        def postprocess(self, outputs): ...            # optional, sync or async
        def predict_batch(self, batch): ...            # optional: list in, list out
        def is_healthy(self): ...                      # optional: readiness probe

`inspect_model` checks all of this on the class and returns a `Contract`
describing it, so every violation is found when the package is loaded.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from packager._errors import ContractError

INIT_KWARGS = ("config", "data_dir", "device", "secrets", "spec", "weights", "weights_dir")
_STAGES = ("preprocess", "predict", "postprocess", "predict_batch")
_STREAM_ORIGINS = {
    typing.Iterator, typing.Iterable, typing.Generator, typing.AsyncIterator,
    typing.AsyncIterable, typing.AsyncGenerator, Iterator, AsyncIterator,
}  # fmt: skip


@dataclass(frozen=True)
class Contract:
    """What a model class defines, found by `inspect_model`."""

    cls: type
    init_kwargs: tuple[str, ...]
    has_load: bool
    stages: frozenset[str]
    async_methods: frozenset[str]
    streams: bool
    input_type: Any
    output_type: Any
    input_adapter: TypeAdapter[Any] | None
    output_adapter: TypeAdapter[Any] | None
    # The published output above is the last stage's (one chunk's when `output_chunks`); when
    # postprocess follows predict, predict's own annotation is checked against these.
    output_chunks: bool = False
    predict_output_type: Any = None
    predict_output_adapter: TypeAdapter[Any] | None = None

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the input, or {} (anything) when it is not annotated."""
        return self.input_adapter.json_schema() if self.input_adapter else {}

    def output_schema(self) -> dict[str, Any]:
        """JSON Schema of the output (of one chunk when streaming), or {}."""
        return self.output_adapter.json_schema(mode="serialization") if self.output_adapter else {}


def inspect_model(cls: Any, where: str, extra_kwargs: tuple[str, ...] = ()) -> Contract:
    """Check `cls` against the contract; raise ContractError saying what to write instead.
    `extra_kwargs`: further __init__ keywords the package's format provides (a Truss's)."""
    if not inspect.isclass(cls):
        raise ContractError(f"{where} is not a class; define `class Model:` with a predict method")
    if not callable(getattr(cls, "predict", None)) and not callable(getattr(cls, "predict_batch", None)):
        raise ContractError(f"{where} has no predict method; add `def predict(self, inputs): return ...`")
    stages = frozenset(name for name in _STAGES if callable(getattr(cls, name, None)))
    for name in stages:
        _check_arity(cls, name, where)
    if callable(getattr(cls, "is_healthy", None)):
        _check_no_args(cls, "is_healthy", where)
    if callable(getattr(cls, "load", None)):
        _check_no_args(cls, "load", where)
    streams = "predict" in stages and _is_generator(getattr(cls, "predict", None))
    for name in ("preprocess", "postprocess", "load", "predict_batch"):
        if _is_generator(getattr(cls, name, None)):
            raise ContractError(f"{where}.{name} must return its result, not yield; only predict may stream")
    if streams and "postprocess" in stages:
        raise ContractError(
            f"{where}.predict streams (it yields) so postprocess cannot run on its output; "
            "transform each chunk inside predict and remove postprocess"
        )
    input_type, output_type, chunks = _io_types(cls, stages, where)
    predict_type = _predict_type(cls, stages, where)
    return Contract(
        cls=cls,
        init_kwargs=_init_kwargs(cls, where, INIT_KWARGS + extra_kwargs),
        has_load=callable(getattr(cls, "load", None)),
        stages=stages,
        async_methods=frozenset(
            n for n in (*stages, "load", "is_healthy") if _is_async(getattr(cls, n, None))
        ),
        streams=streams,
        input_type=input_type,
        output_type=output_type,
        input_adapter=_adapter(input_type, where, "input"),
        output_adapter=_adapter(output_type, where, "output"),
        output_chunks=chunks,
        predict_output_type=predict_type,
        predict_output_adapter=_adapter(predict_type, where, "output"),
    )


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _is_generator(fn: Any) -> bool:
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


def _params(cls: type, name: str) -> list[inspect.Parameter]:
    raw = inspect.getattr_static(cls, name)
    params = list(inspect.signature(getattr(cls, name)).parameters.values())
    # Looked up on the class, a plain method still lists `self`; static/class methods do not.
    if not isinstance(raw, (staticmethod, classmethod)) and params:
        params = params[1:]
    return params


def _required_positional(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]


def _check_arity(cls: type, name: str, where: str) -> None:
    params = _params(cls, name)
    required = _required_positional(params)
    kw_only = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    takes_one = len(required) == 1 or (
        not required and any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    )
    if not takes_one or kw_only:
        arg = "batch" if name == "predict_batch" else ("outputs" if name == "postprocess" else "inputs")
        raise ContractError(
            f"{where}.{name} must take exactly one argument besides self; "
            f"write `def {name}(self, {arg}):` (it takes {_describe(params)})"
        )


def _check_no_args(cls: type, name: str, where: str) -> None:
    required = _required_positional(_params(cls, name))
    if required:
        raise ContractError(f"{where}.{name} must take no arguments besides self; write `def {name}(self):`")


def _describe(params: list[inspect.Parameter]) -> str:
    return str(inspect.Signature(params)) if params else "none"


def _init_kwargs(cls: type, where: str, names: tuple[str, ...] = INIT_KWARGS) -> tuple[str, ...]:
    init = inspect.getattr_static(cls, "__init__", None)
    if init is None or init is object.__init__:
        return ()
    params = list(inspect.signature(init).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return names
    wanted = []
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if p.name in names and p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            wanted.append(p.name)
        elif p.default is inspect.Parameter.empty:
            raise ContractError(
                f"{where}.__init__ asks for {p.name!r}, which packager does not provide; "
                f"ask only for {', '.join(names)} (by name), or give {p.name!r} a default"
            )
    return tuple(wanted)


def _hints(fn: Callable[..., Any], where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # any failure to evaluate a user's annotation is a contract problem
        raise ContractError(
            f"{where}.{fn.__name__}: cannot evaluate its type annotations ({exc}); "
            "import every type it names at the top of the model file"
        ) from None


def _io_types(cls: type, stages: frozenset[str], where: str) -> tuple[Any, Any, bool]:
    """The input type, the (published) output type, and whether that is the type of one chunk."""
    first = (
        "preprocess" if "preprocess" in stages else ("predict" if "predict" in stages else "predict_batch")
    )
    last = (
        "postprocess" if "postprocess" in stages else ("predict" if "predict" in stages else "predict_batch")
    )
    first_fn, last_fn = getattr(cls, first), getattr(cls, last)
    params = _params(cls, first)
    in_hint = _hints(first_fn, where).get(params[0].name) if params else None
    out_hint = _hints(last_fn, where).get("return")
    if first == "predict_batch":
        in_hint = _element(in_hint)
    chunks = last == "predict" and (_is_generator(last_fn) or typing.get_origin(out_hint) in _STREAM_ORIGINS)
    if last == "predict_batch" or chunks or typing.get_origin(out_hint) in _STREAM_ORIGINS:
        out_hint = _element(out_hint)
    return _meaningful(in_hint), _meaningful(out_hint), chunks


def _predict_type(cls: type, stages: frozenset[str], where: str) -> Any:
    """predict's own output type when postprocess follows it (else the published output is predict's)."""
    if "postprocess" not in stages:
        return None
    name = "predict" if "predict" in stages else "predict_batch"
    hint = _hints(getattr(cls, name), where).get("return")
    if typing.get_origin(hint) in _STREAM_ORIGINS:
        return None  # a stream cannot reach postprocess; plan() reports that
    return _meaningful(_element(hint) if name == "predict_batch" else hint)


def _element(hint: Any) -> Any:
    args = typing.get_args(hint)
    return args[0] if args else None


def _meaningful(hint: Any) -> Any:
    return None if hint in (None, Any, inspect.Parameter.empty, type(None)) else hint


def _adapter(hint: Any, where: str, what: str) -> TypeAdapter[Any] | None:
    if hint is None:
        return None
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(hint)
        adapter.json_schema(mode="serialization" if what == "output" else "validation")
    except Exception as exc:  # pydantic raises several types for unsupported annotations
        raise ContractError(
            f"{where}: the {what} annotation {hint!r} cannot be validated ({exc.__class__.__name__}); "
            "annotate with a pydantic model, a dict/list of JSON types, or leave it unannotated"
        ) from None
    return adapter
