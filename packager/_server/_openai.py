"""OpenAI-compatible routes over the same pipeline: an adapter, not a second pipeline.

`POST /v1/chat/completions` and `POST /v1/completions` (served when the spec lists them under
`runtime.openai`) go through `App._predict` like any predict request, with an `OpenAIRequest`
as the wire protocol: it maps OpenAI's request onto the entry's input (`messages` or
`prompt`, the sampling fields, `stream`) and the entry's answer onto OpenAI's objects. The
entry answers a `packager.io.Completion` (or plain text), or streams `packager.io.Chunk`s (or
text), which go out as `chat.completion.chunk` / `text_completion` SSE events ending with
`data: [DONE]`. A client that disconnects closes the model's generator (see `_stream`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Optional

from packager._errors import InputError
from packager._pipeline import Pipeline
from packager._server._codec import JSON, decode_json, encode_json, sse_event
from packager._server._http import HTTPError, Receive, RequestHeaders, Scope, Send
from packager._server._stream import Framing
from packager.io._chat import SAMPLING_FIELDS

Predict = Callable[[Scope, Receive, Send, Any], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}
DONE = b"data: [DONE]\n\n"


def model_list(name: str) -> dict[str, Any]:
    """GET /v1/models: KServe V1's `models` and OpenAI's list in one body."""
    return {
        "models": [name],
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "packager"}],
    }


class OpenAIRoutes:
    """The routes `runtime.openai` asks for, each running `predict` with an `OpenAIRequest`."""

    def __init__(self, pipeline: Pipeline, predict: Predict) -> None:
        self.name = pipeline.spec.name
        self.kinds = list(pipeline.spec.runtime.openai)
        self.predict = predict

    def routes(self) -> dict[str, tuple[tuple[str, ...], Handler]]:
        return {PATHS[kind]: (("POST",), self._handler(kind)) for kind in self.kinds}

    def _handler(self, kind: str) -> Handler:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            await self.predict(scope, receive, send, OpenAIRequest(kind, self.name))

        return handle


class OpenAIRequest:
    """One OpenAI request's wire protocol: decode to the entry's input, encode its answer."""

    streams = True

    def __init__(self, kind: str, name: str) -> None:
        self.chat = kind == "chat"
        self.model = name
        self.stream = False
        self.include_usage = False
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self._started = False
        self._finished = False

    def decode(self, body: bytes, headers: RequestHeaders) -> dict[str, Any]:
        headers.check_encoding()
        try:
            request = decode_json(body)
        except ValueError as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(request, dict):
            raise InputError("the request body must be a JSON object", [_error([], "a JSON object")])
        if request.get("n") not in (None, 1):
            raise InputError("n: only n=1 is supported", [_error(["n"], "only 1 is supported")])
        self.model = str(request.get("model") or self.model)
        self.stream = bool(request.get("stream"))
        self.include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        raw = {key: request[key] for key in SAMPLING_FIELDS if request.get(key) is not None}
        if request.get("max_completion_tokens") is not None:
            raw["max_tokens"] = request["max_completion_tokens"]
        key = "messages" if self.chat else "prompt"
        if key in request:
            raw[key] = request[key]
        raw["stream"] = self.stream
        return raw

    @staticmethod
    def error_shape(status: int, body: dict[str, Any]) -> dict[str, Any]:
        """OpenAI's error object (what its clients read: message, type, param, code), with
        packager's field errors and request id kept beside it."""
        errors = body.get("errors") or []
        param = ".".join(str(part) for part in errors[0].get("loc", [])) if errors else None
        kind = "invalid_request_error" if status < 500 else "server_error"
        shaped: dict[str, Any] = {
            "error": {"message": body.get("error", ""), "type": kind, "param": param or None, "code": status}
        }
        return {**shaped, **{key: value for key, value in body.items() if key != "error"}}

    def framing(self, headers: RequestHeaders) -> Optional[Framing]:
        return Framing(self._chunk_events, self._end_events) if self.stream else None

    def encode(self, output: Any, headers: RequestHeaders) -> tuple[bytes, bytes]:
        text, finish, usage = _answer(output)
        if self.chat:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text}
        choice.update(finish_reason=finish or "stop", logprobs=None)
        body = self._object(choice, "chat.completion" if self.chat else "text_completion")
        body["usage"] = usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return encode_json(body), JSON

    def _chunk_events(self, chunk: Any) -> bytes:
        text, finish, usage = _answer(chunk)
        if not text and finish is None:
            return b""
        events = self._event(text, finish)
        if finish is not None:
            self._finished = True
            if self.include_usage and usage is not None:
                events += self._usage_event(usage)
        return events

    def _end_events(self) -> bytes:
        return DONE if self._finished else self._event("", "stop") + DONE

    def _event(self, text: str, finish: Optional[str]) -> bytes:
        if self.chat:
            delta: dict[str, Any] = {"content": text}
            if not self._started:
                delta = {"role": "assistant", "content": text}
            choice: dict[str, Any] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
        self._started = True
        choice["finish_reason"] = finish
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return sse_event(encode_json(self._object(choice, kind)))

    def _usage_event(self, usage: Any) -> bytes:
        body = self._object(None, "chat.completion.chunk" if self.chat else "text_completion")
        body["usage"] = usage
        return sse_event(encode_json(body))

    def _object(self, choice: Optional[dict[str, Any]], kind: str) -> dict[str, Any]:
        choices = [choice] if choice is not None else []
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }


def _answer(output: Any) -> tuple[str, Optional[str], Any]:
    """(text, finish_reason, usage) from a Completion or Chunk dict, plain text, or joined chunks."""
    if isinstance(output, str):
        return output, None, None
    if isinstance(output, dict):
        return str(output.get("text") or ""), output.get("finish_reason"), output.get("usage")
    if isinstance(output, list):  # a stream joined for a non-streaming request
        parts = [_answer(item) for item in output]
        finish = next((p[1] for p in reversed(parts) if p[1]), None)
        usage = next((p[2] for p in reversed(parts) if p[2]), None)
        return "".join(p[0] for p in parts), finish, usage
    raise TypeError(
        f"an OpenAI route cannot answer with a {type(output).__name__}; return text or a Completion"
    )


def _error(loc: list[str], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "value_error"}
