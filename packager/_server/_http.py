"""Raw ASGI plumbing: reading bodies with a cap, sending responses, JSON error bodies.

The app speaks ASGI directly (no framework routing on the hot path), so the
little it needs from HTTP lives here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import types
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import Any

import orjson

from packager._errors import InputError, OverloadedError, PackagerError
from packager._server._codec import JSON, EncodeError
from packager._server._deadline import TIMEOUTS, timeout_at

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)
_MAX_REQUEST_ID = 200
DEFAULT_BODY_TIMEOUT_S = 30.0
_COROUTINE = types.CoroutineType


class HTTPError(PackagerError):
    """A request the server refuses before any model code runs (400, 404, 405, 413...)."""

    def __init__(self, status_code: int, message: str, headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers or []


class RequestHeaders:
    """The few request headers the server looks at, found in one pass.

    `content_encoding` is empty unless the body is encoded (anything but
    identity); `v2_id` is set by the V2 decoder for its encoder (unset on V1).
    """

    __slots__ = ("accept", "content_encoding", "content_type", "request_id", "v2_id")
    v2_id: str  # unset until the V2 decoder sets it

    def __init__(self, scope: Scope) -> None:
        self.content_type = b""
        self.accept = b""
        self.content_encoding = b""
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                self.content_type = value
            elif name == b"accept":
                self.accept = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"content-encoding" and value.strip().lower() not in (b"identity", b""):
                self.content_encoding = value
        self.request_id = _request_id(request_id)

    def check_encoding(self) -> None:
        """HTTPError 415 when the body is compressed or otherwise encoded."""
        if self.content_encoding:
            shown = self.content_encoding.decode("latin-1")[:40]
            raise HTTPError(
                415,
                f"request bodies with Content-Encoding {shown!r} are not accepted; send the body uncompressed",
                [(b"accept-encoding", b"identity")],
            )


def _request_id(given: bytes) -> str:
    if given and len(given) <= _MAX_REQUEST_ID:
        text = given.decode("latin-1")
        if text.isprintable():
            return text
    return f"{_PREFIX}-{next(_COUNTER)}"


async def read_body(receive: Receive, limit: int, timeout: float = DEFAULT_BODY_TIMEOUT_S) -> bytes:
    """The whole request body; HTTPError 413 past `limit` bytes, 408 when it takes over `timeout` s.

    A body that has already arrived (the usual case) is read without a timer;
    only a body the client is still sending is read under one.
    """
    step: Any = receive()
    if type(step) is not _COROUTINE:
        step = step.__await__()  # a Future or another awaitable
    try:
        pending = step.send(None)
    except StopIteration as done:  # the message was there: no waiting, no timer
        message: Message = done.value
    else:
        return await _read_slowly(receive, limit, timeout, None, _resume(step, pending))
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        return await _read_slowly(receive, limit, timeout, message, None)
    if len(body) > limit:
        raise _too_large(limit)
    return body


async def _read_slowly(
    receive: Receive, limit: int, timeout: float, message: Message | None, first: Awaitable[Message] | None
) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async with timeout_at(asyncio.get_running_loop().time() + timeout):
            if first is not None:
                message = await first
            assert message is not None
            while True:
                if message["type"] == "http.disconnect":
                    raise HTTPError(499, "client disconnected")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                parts.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(parts)
                message = await receive()
    except TIMEOUTS:
        raise HTTPError(
            408,
            f"the request body did not arrive within {timeout:g}s; send it at once "
            "(or raise PACKAGER_BODY_TIMEOUT_S)",
            [(b"connection", b"close")],
        ) from None


@types.coroutine
def _resume(step: Any, pending: Any) -> Generator[Any, Any, Message]:
    """Finish awaiting a coroutine already stepped once (what `yield from` does)."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:  # a cancellation: pass it to the coroutine waiting inside
            try:
                pending = step.throw(exc)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        else:
            try:
                pending = step.send(sent)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


def body_timeout_s() -> float:
    """$PACKAGER_BODY_TIMEOUT_S (seconds to receive a request body), default 30."""
    text = os.environ.get("PACKAGER_BODY_TIMEOUT_S", "").strip()
    if not text:
        return DEFAULT_BODY_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise PackagerError(
            f"PACKAGER_BODY_TIMEOUT_S={text!r} is not a number of seconds above 0; set it to e.g. 30"
        )
    return value


def _too_large(limit: int) -> HTTPError:
    return HTTPError(
        413, f"request body is larger than {limit} bytes; send less or raise PACKAGER_MAX_BODY_BYTES"
    )


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = JSON, headers: Headers | None = None
) -> None:
    """Send a complete response."""
    head = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if headers:
        head.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, value: Any, headers: Headers | None = None) -> None:
    """Send `value` as a JSON response."""
    await respond(send, status, orjson.dumps(value), JSON, headers)


def without_body(send: Send) -> Send:
    """`send` for a HEAD request: the same status and headers (Content-Length included), no body."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return send_head


def error_body(exc: BaseException, request_id: str | None) -> tuple[int, dict[str, Any], Headers]:
    """Status, JSON body and extra headers for an error; never a traceback."""
    headers: Headers = []
    if isinstance(exc, PackagerError):
        status = exc.status_code
        body: dict[str, Any] = {"error": exc.message}
        if isinstance(exc, InputError):
            body["errors"] = exc.errors
        if isinstance(exc, HTTPError):
            headers.extend(exc.headers)
        if isinstance(exc, OverloadedError):
            headers.append((b"retry-after", b"%d" % max(1, round(exc.retry_after))))
        elif status == 503:
            headers.append((b"retry-after", b"1"))
    elif isinstance(exc, EncodeError):
        status = 500
        body = {"error": f"the model's output cannot be encoded: {exc}"}
    else:
        status = 500
        body = {"error": "internal server error; the server log has the details"}
    if request_id is not None:
        body["request_id"] = request_id
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    return status, body, headers


async def respond_error(
    send: Send,
    exc: BaseException,
    request_id: str | None = None,
    shape: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None,
) -> int:
    """Send the JSON error response for `exc`; return its status. `shape` rewrites the body for
    a wire protocol with its own error format (the OpenAI routes')."""
    status, body, headers = error_body(exc, request_id)
    if shape is not None:
        body = shape(status, body)
    await respond(send, status, orjson.dumps(body, default=str), JSON, headers)
    return status
