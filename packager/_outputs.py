"""The model's outputs checked against its own return annotations.

When a stage is annotated with an output type, what it returns is validated
against it (pydantic, lax, as inputs are) and the validated value goes on,
so the output a client gets is the one the published schema describes. A
model that breaks its own annotation gets a `PredictError` (HTTP 500)
naming the stage, the annotation and each field at fault.

The checks wrap the bound stage functions once, when the model is bound
(`wrap_stages`), so they run wherever the stage runs: in the predict thread
for sync code (never on the server's event loop), per item of a
predict_batch result, and per chunk of a stream. Unannotated stages are
left alone and cost nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from types import AsyncGeneratorType, GeneratorType
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from packager._contract import Contract
from packager._errors import PredictError

Stages = dict[str, tuple[Callable[..., Any], bool]]
_STREAMS = (GeneratorType, AsyncGeneratorType)


class OutputCheck:
    """Validates one stage's output (or one chunk, or one batch item) against its annotation."""

    __slots__ = ("adapter", "fast_type", "hint", "returned", "stage")

    def __init__(self, adapter: TypeAdapter[Any], hint: Any, stage: str) -> None:
        self.adapter = adapter
        self.hint = hint
        self.stage = stage
        self.returned = "returned an item" if stage == "predict_batch" else "returned an output"
        # A model instance of exactly the annotated class is returned as is by pydantic
        # (revalidate_instances='never'); skip the call altogether.
        never = isinstance(hint, type) and issubclass(hint, BaseModel)
        self.fast_type = (
            hint if never and hint.model_config.get("revalidate_instances", "never") == "never" else None
        )

    def __call__(self, value: Any, what: str = "") -> Any:
        if self.fast_type is not None and type(value) is self.fast_type:
            return value
        if isinstance(value, _STREAMS):
            _close(value)
            raise PredictError(
                f"{self.stage} returned a stream (a generator) but is annotated {type_name(self.hint)}; "
                "annotate it -> Iterator[...] or return the whole output"
            )
        try:
            return self.adapter.validate_python(value)
        except ValidationError as exc:
            raise PredictError(
                f"{self.stage} {what or self.returned} that does not match its annotation {type_name(self.hint)}: "
                f"{describe_errors(exc)}; fix {self.stage} or its return annotation"
            ) from None


def type_name(hint: Any) -> str:
    """How an annotation reads in a message: 'Reply', 'dict[str, float]', 'List[int]'."""
    if isinstance(hint, type) and not getattr(hint, "__args__", None):
        return hint.__name__
    return repr(hint).replace("typing_extensions.", "").replace("typing.", "")


def describe_errors(exc: ValidationError, limit: int = 3) -> str:
    """pydantic's errors as "field 'a.b': message; ..." (the first `limit`)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    parts = []
    for error in errors[:limit]:
        loc = ".".join(str(part) for part in error["loc"])
        parts.append(f"field {loc!r}: {error['msg']}" if loc else error["msg"])
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def wrap_stages(stages: Stages, contract: Contract) -> Stages:
    """`stages` with every annotated output checked; unannotated stages are returned untouched.

    The final output (postprocess's, else predict's) is checked against the
    published output annotation; predict's own output, when postprocess
    follows, against predict's annotation; each predict_batch item against
    the annotation predict's output is published (or checked) under.
    """
    wrapped = dict(stages)
    own = "predict" if "predict" in contract.stages else "predict_batch"
    last = "postprocess" if "postprocess" in stages else own
    final = _check(contract.output_adapter, contract.output_type, last)
    if "postprocess" in stages:
        item = _check(contract.predict_output_adapter, contract.predict_output_type, own)
        if final is not None:
            fn, is_async = stages["postprocess"]
            wrapped["postprocess"] = (_then(fn, is_async, final), is_async)
    else:
        item = None if contract.output_chunks else final
    fn, is_async = stages["predict"]
    if final is not None and contract.output_chunks and "postprocess" not in stages:
        wrapped["predict"] = (_streaming(fn, is_async, final), is_async)
    elif item is not None:
        wrapped["predict"] = (_then(fn, is_async, item), is_async)
    if item is not None and "predict_batch" in stages:
        fn, is_async = stages["predict_batch"]
        wrapped["predict_batch"] = (_batch_checked(fn, is_async, item), is_async)
    return wrapped


def _check(adapter: TypeAdapter[Any] | None, hint: Any, stage: str) -> OutputCheck | None:
    return None if adapter is None else OutputCheck(adapter, hint, stage)


def _then(fn: Callable[..., Any], is_async: bool, after: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`fn` (sync, or async with its result awaited) with `after` applied to what it returns."""
    if is_async:

        async def then_async(value: Any) -> Any:
            result = fn(value)
            return after(await result if inspect.isawaitable(result) else result)

        return then_async
    return lambda value: after(fn(value))


def _batch_checked(fn: Callable[..., Any], is_async: bool, check: OutputCheck) -> Callable[[Any], Any]:
    """predict_batch with each output checked; a result of the wrong shape is left to check_batch_outputs."""
    check = OutputCheck(check.adapter, check.hint, "predict_batch")

    def each(outputs: Any) -> Any:
        if isinstance(outputs, (list, tuple)):
            return [check(output) for output in outputs]
        return outputs

    return _then(fn, is_async, each)


def _streaming(fn: Callable[..., Any], is_async: bool, check: OutputCheck) -> Callable[[Any], Any]:
    """predict annotated Iterator[T] / AsyncIterator[T]: every chunk checked as it is produced."""

    def chunks(result: Any) -> Any:
        if inspect.isgenerator(result):
            return _sync_chunks(result, check)
        if inspect.isasyncgen(result):
            return _async_chunks(result, check)
        raise PredictError(
            f"predict is annotated as a stream of {type_name(check.hint)} but returned a "
            f"{type(result).__name__}; yield the chunks, or annotate the whole output instead"
        )

    return _then(fn, is_async, chunks)


def _sync_chunks(stream: Iterator[Any], check: OutputCheck) -> Iterator[Any]:
    try:
        for chunk in stream:
            yield check(chunk, "yielded a chunk")
    finally:
        stream.close()  # type: ignore[attr-defined]


async def _async_chunks(stream: AsyncIterator[Any], check: OutputCheck) -> AsyncIterator[Any]:
    try:
        async for chunk in stream:
            yield check(chunk, "yielded a chunk")
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def _close(stream: Any) -> None:
    if isinstance(stream, GeneratorType):
        stream.close()  # never started, so nothing of the model's runs; an async one needs no closing
