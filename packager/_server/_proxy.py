"""The built-in model of a package with `server:`: it runs the inner server and forwards predict to it.

`ProxyModel` is an ordinary model class to the pipeline: `load()` starts the
inner process (`_proxy_process.InnerProcess`) and waits for its readiness,
async `predict()` forwards one request to `server.predict_path`, and
`is_healthy()` asks `server.readiness_path`. So validation, the predict slots,
timeouts, metrics and request ids stay those of every other model
(docs/architecture.md). Behind `pkg serve` the input is a `ProxyRequest` (the
body and its content type, untouched) and the output a `ProxyResponse` or,
for Server-Sent Events, an async generator of the raw bytes; called in process
(`packager.load`), the input is any JSON value and so is the output.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import orjson

from packager._errors import NotReadyError, PackagerError
from packager._server._http import HTTPError
from packager._server._proxy_http import Answer, InnerUnreachable, send_request
from packager._server._proxy_process import InnerProcess
from packager._spec import Spec
from packager._spec_server import Server

_JSON = b"application/json"
_SHOWN = 2000  # how much of an inner error body goes into our message


@dataclass(frozen=True)
class ProxyRequest:
    """A `:predict` request as it came: forwarded as is."""

    body: bytes
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class ProxyResponse:
    """The inner server's 2xx answer to a predict: sent back as is (status 200)."""

    body: bytes
    content_type: bytes


class InnerError(PackagerError):
    """The inner server answered predict with an error status, or could not answer it."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class InnerRefusal(HTTPError):
    """The inner server refused the input (its 4xx): the client's problem, not logged as a failure."""


class InnerGone(NotReadyError):
    """The inner server's process exited (HTTP 503)."""


class ProxyModel:
    """The model of a `server:` package (see the module docstring)."""

    def __init__(self, spec: Spec, data_dir: Optional[Path] = None) -> None:
        server = spec.server
        assert server is not None
        self.server: Server = server
        self.name = spec.name
        self.root = data_dir.parent if data_dir is not None else Path.cwd()
        self.process: Optional[InnerProcess] = None

    async def load(self) -> None:
        """Start the inner server and wait until readiness_path answers 200."""
        self.process = InnerProcess(self.server, self.root, self.name)
        await self.process.start()

    async def is_healthy(self) -> bool:
        """readiness_path answers 200 (an exited process raises, saying so)."""
        process = self.running()
        return await process.probe(self.server.readiness_path) == 200

    async def predict(self, inputs: Any) -> Any:
        """Forward `inputs` to predict_path; its answer, or a stream of its raw SSE bytes."""
        process = self.running()
        if isinstance(inputs, ProxyRequest):
            body, headers = inputs.body, inputs.headers
        else:
            body, headers = orjson.dumps(inputs), [(b"content-type", _JSON), (b"accept", _JSON)]
        try:
            answer = await send_request(
                self.server.port, "POST", self.server.predict_path.encode(), headers, body
            )
        except InnerUnreachable as exc:
            raise await self.lost(process, exc) from None
        if answer.status >= 400:
            raise error_for(answer.status, await self._read(process, answer))
        if answer.streams:
            return self._stream(process, answer)
        payload = await self._read(process, answer)
        if isinstance(inputs, ProxyRequest):
            return ProxyResponse(payload, answer.content_type)
        return orjson.loads(payload) if b"json" in answer.content_type else payload

    def close(self) -> None:
        """Stop the inner server (its whole process group) now."""
        if self.process is not None:
            self.process.kill()

    async def _stream(self, process: InnerProcess, answer: Answer) -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.chunks():
                yield chunk
        except InnerUnreachable as exc:
            raise await self.lost(process, exc) from None

    async def _read(self, process: InnerProcess, answer: Answer) -> bytes:
        try:
            return await answer.read()
        except InnerUnreachable as exc:
            raise await self.lost(process, exc) from None

    def running(self) -> InnerProcess:
        process = self.process
        if process is None:
            raise NotReadyError("the model server has not been started yet")
        if process.exit_code is not None:
            raise InnerGone(process.exit_message())
        return process

    async def lost(self, process: InnerProcess, exc: InnerUnreachable) -> PackagerError:
        """503 when the process exited (or is exiting), 502 when it is up but broke the exchange."""
        if await process.exited_soon():
            return InnerGone(f"{process.exit_message()} while this request was in flight; retry it")
        return InnerError(502, f"{exc}; predict was not answered")


def error_for(status: int, body: bytes) -> PackagerError:
    """Our error for an inner error answer: 4xx keep their status, 503/504 too, other 5xx become 502."""
    detail = _detail(body)
    if 400 <= status < 500:
        return InnerRefusal(status, f"the model server answered {status}: {detail}")
    if status in (503, 504):
        return InnerError(status, f"the model server answered {status}: {detail}")
    return InnerError(502, f"the model server failed with {status}: {detail}")


def _detail(body: bytes) -> str:
    """The message of a JSON error body ('error', 'detail' or 'message'), else its text, shortened."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        for key in ("error", "detail", "message"):
            found = value.get(key)
            if isinstance(found, dict):
                found = found.get("message", found)
            if found:
                return str(found)[:_SHOWN]
    text = body.decode("utf-8", errors="replace").strip()
    return (text[:_SHOWN] or "(empty body)") if text else "(empty body)"
