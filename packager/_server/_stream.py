"""Answering a streaming predict: Server-Sent Events, or the chunks joined into one body.

SSE: each chunk is a ``data: <json>`` event; a failure mid-stream ends it
with an ``event: error`` carrying the JSON error body, a normal end with
``event: done``. A client that disconnects cancels the response, and the
model's generator is closed (it sees GeneratorExit), freeing its predict slot;
the same holds while chunks are being joined for a client that did not ask
for SSE. A request cut off at the end of the shutdown grace period ends with
an error event (503) instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import orjson

from packager._errors import NotReadyError, PredictTimeout
from packager._runners import ChunkStream
from packager._server._codec import SSE, encode_json, join_chunks, sse_event
from packager._server._deadline import Guard
from packager._server._http import HTTPError, Receive, Send, error_body
from packager._server._logging import REQUEST_ID

OnError = Callable[[BaseException, str], None]
CutOff = Callable[[], Optional[BaseException]]
DONE = sse_event(b"{}", b"done")
CLIENT_GONE = 499


@dataclass(frozen=True)
class Framing:
    """How a stream goes out as SSE: each chunk's event(s) (b"" for none), then the closing event(s)."""

    chunk: Callable[[Any], bytes]
    end: Callable[[], bytes]


KSERVE = Framing(lambda chunk: sse_event(encode_json(chunk)), lambda: DONE)


def timeout_error(seconds: float) -> PredictTimeout:
    """The error for a request past runtime.request_timeout_s."""
    return PredictTimeout(f"the request did not finish within {seconds:g}s (runtime.request_timeout_s)")


class ShutdownCutOff(NotReadyError):
    """A request still running when the shutdown grace period ran out (HTTP 503)."""


def cut_off_error(grace: float) -> ShutdownCutOff:
    """The error for a request cut off at the end of runtime.shutdown_grace_s."""
    return ShutdownCutOff(
        f"the server is shutting down and runtime.shutdown_grace_s ({grace:g}s) ran out "
        "before this request finished; retry it"
    )


async def collect(stream: ChunkStream, receive: Receive) -> Any:
    """Every chunk, joined (text and bytes concatenated, else a list); closes the stream.

    Watches `receive` meanwhile: when the client disconnects, the stream is
    closed (the model's generator sees GeneratorExit) and HTTPError 499 raised.
    """
    task = asyncio.current_task()
    assert task is not None
    chunks: list[Any] = []
    watch = DisconnectWatch(task, receive)
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        uncancel(task)
        raise HTTPError(CLIENT_GONE, "client disconnected") from None
    finally:
        watch.close()
        await stream.aclose()
    return join_chunks(chunks)


class DisconnectWatch:
    """Cancels `task` when the client disconnects (`gone` then turns true), until closed."""

    def __init__(self, task: asyncio.Task[Any], receive: Receive) -> None:
        self.task = task
        self.open = True
        self.gone = False
        self._watcher = asyncio.ensure_future(_wait_disconnect(receive))
        self._watcher.add_done_callback(self._done)

    def _done(self, watcher: asyncio.Future[None]) -> None:
        if self.open and not watcher.cancelled():
            self.gone = True
            self.task.cancel()

    def close(self) -> None:
        """Stop watching (idempotent)."""
        self.open = False
        self._watcher.cancel()


def uncancel(task: Optional[asyncio.Task[Any]]) -> None:
    """Take back one cancellation of `task`, having handled it (Python 3.11+ counts them)."""
    undo = getattr(task, "uncancel", None)
    if undo is not None:
        undo()


async def send_events(
    stream: ChunkStream,
    send: Send,
    receive: Receive,
    guard: Guard,
    on_error: OnError,
    cut_off: CutOff,
    framing: Framing = KSERVE,
) -> int:
    """Stream chunks as SSE (shaped by `framing`) until done, failed, timed out or the client left.

    Returns the status.
    `cut_off()` says whether a cancellation from outside is the server cutting
    the request off at shutdown (the error to send as the last event), or None.
    """
    task, request_id = guard.task, REQUEST_ID.get() or ""
    watch = DisconnectWatch(task, receive)
    headers = [
        (b"content-type", SSE),
        (b"cache-control", b"no-cache"),
        (b"x-request-id", request_id.encode("latin-1")),
    ]
    try:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            status, tail = await _pump(stream, send, on_error, framing)
        except asyncio.CancelledError:
            ours = watch.gone or guard.fired
            error = None if ours else cut_off()
            if not ours and error is None:
                raise
            guard.absorb()
            if watch.gone:
                return CLIENT_GONE
            status, tail = _error_event(error or guard.owner.error(), on_error)
        watch.close()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        return status
    finally:
        watch.close()
        await _close(stream)


async def _close(stream: ChunkStream) -> None:
    """Close the model's stream. A cancellation that lands now (shutdown cutting requests off
    while the close runs) comes too late to matter: the response is over or already failing, and
    letting it through would make the caller answer a finished response a second time."""
    try:
        await stream.aclose()
    except asyncio.CancelledError:
        uncancel(asyncio.current_task())


async def _pump(stream: ChunkStream, send: Send, on_error: OnError, framing: Framing) -> tuple[int, bytes]:
    try:
        async for chunk in stream:
            events = framing.chunk(chunk)
            if events:
                await send({"type": "http.response.body", "body": events, "more_body": True})
        return 200, framing.end()
    except Exception as exc:
        return _error_event(exc, on_error)


def _error_event(exc: BaseException, on_error: OnError) -> tuple[int, bytes]:
    request_id = REQUEST_ID.get() or ""
    on_error(exc, request_id)
    status, body, _ = error_body(exc, request_id)
    body["status"] = status
    return status, sse_event(orjson.dumps(body, default=str), b"error")


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
