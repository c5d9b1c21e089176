"""Raw ASGI plumbing: reading bodies with a cap, sending responses, JSON error bodies.

The app speaks ASGI directly (no framework routing on the hot path), so the
little it needs from HTTP lives here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from packager._errors import InputError, OverloadedError, PackagerError
from packager._server._codec import JSON, EncodeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)
_MAX_REQUEST_ID = 200


class HTTPError(PackagerError):
    """A request the server refuses before any model code runs (400, 404, 405, 413...)."""

    def __init__(self, status_code: int, message: str, headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers or []


class RequestHeaders:
    """The few request headers the server looks at, found in one pass."""

    __slots__ = ("accept", "content_type", "request_id")

    def __init__(self, scope: Scope) -> None:
        self.content_type = b""
        self.accept = b""
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                self.content_type = value
            elif name == b"accept":
                self.accept = value
            elif name == b"x-request-id":
                request_id = value
        self.request_id = _request_id(request_id)


def _request_id(given: bytes) -> str:
    if given and len(given) <= _MAX_REQUEST_ID:
        text = given.decode("latin-1")
        if text.isprintable():
            return text
    return f"{_PREFIX}-{next(_COUNTER)}"


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; HTTPError 413 as soon as it passes `limit` bytes."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(499, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


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


async def respond_error(send: Send, exc: BaseException, request_id: str | None = None) -> int:
    """Send the JSON error response for `exc`; return its status."""
    status, body, headers = error_body(exc, request_id)
    await respond(send, status, orjson.dumps(body, default=str), JSON, headers)
    return status
