"""`packager.connect(url)`: a served model with the same `predict` shape as `packager.load()`.

Works against `pkg serve`, a built image, or anything speaking the same
KServe V1 paths. Inputs holding bytes or numpy arrays travel as msgpack (so
they come back as bytes and arrays); everything else as JSON. A streaming
model's `predict` returns an iterator of chunks, read as Server-Sent Events;
stopping early closes the connection, which stops the model's generator.
Every HTTP or transport failure raises `ClientError` (status 0 when no
answer came). A server started with ``runtime.api_key_secret`` needs its key:
``connect(url, api_key=...)``, else ``$PACKAGER_API_KEY``, is sent as
``Authorization: Bearer <key>``. httpx is imported when a client is made, not with packager
(its package init imports click and rich when they are installed).
"""

from __future__ import annotations

import json
import os
import re
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import quote

import orjson

from packager._errors import ClientError
from packager._server._codec import decode_json, decode_msgpack, encode_json, encode_msgpack

if TYPE_CHECKING:
    import httpx

_JSON_ACCEPT = "application/json, text/event-stream"
_LONG_NUMBER = re.compile(rb"[0-9]{20}")
_MSGPACK_ACCEPT = "application/msgpack, text/event-stream"


class RemoteModel:
    """A model served over HTTP. Use as a context manager, or call `close()`, to free the connection."""

    def __init__(
        self, url: str, *, timeout: float = 300.0, name: Optional[str] = None, api_key: Optional[str] = None
    ) -> None:
        base, _, rest = url.rstrip("/").partition("/v1/models/")
        self.url = base
        self._name = name or (rest.split(":")[0].split("/")[0] if rest else None)
        import httpx

        key = api_key if api_key is not None else os.environ.get("PACKAGER_API_KEY") or None
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self._errors = httpx.HTTPError
        self._http = httpx.Client(
            base_url=base, headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )
        # Notebooks rarely call close(): free the pooled connection when the client is collected.
        weakref.finalize(self, self._http.close)

    @property
    def name(self) -> str:
        """The served model's name (asked of the server once, via GET /v1/models)."""
        if self._name is None:
            models = self._get_json("/v1/models").get("models") or []
            if not models:
                raise ClientError(f"{self.url} serves no models", 0)
            self._name = str(models[0])
        return self._name

    def predict(self, inputs: Any) -> Any:
        """Run the model on `inputs`; the output, or an iterator of chunks for a streaming model."""
        body, content_type, accept = _encode_inputs(inputs)
        request = self._http.build_request(
            "POST",
            f"/v1/models/{quote(self.name)}:predict",
            content=body,
            headers={"content-type": content_type, "accept": accept},
        )
        try:
            response = self._http.send(request, stream=True)
        except self._errors as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}", 0) from None
        if (
            response.headers.get("content-type", "").startswith("text/event-stream")
            and response.status_code == 200
        ):
            return _events(response, self.url)
        try:
            data = response.read()
        except self._errors as exc:
            raise ClientError(f"{self.url}: the answer broke off: {exc}", 0) from None
        finally:
            response.close()
        if response.status_code >= 400:
            raise _error(self.url, response.status_code, data)
        return _decode(data, response.headers.get("content-type", ""))

    def schema(self) -> dict[str, Any]:
        """JSON Schemas of the input and output, as `packager.load(path).schema()` gives them."""
        schema: dict[str, Any] = self._get_json(f"/v1/models/{quote(self.name)}/schema")
        return schema

    def ready(self) -> bool:
        """Whether the model is loaded and healthy (False when the server cannot be reached)."""
        try:
            response = self._http.get(f"/v1/models/{quote(self.name)}")
        except (self._errors, ClientError):
            return False
        return response.status_code == 200

    def wait(self, timeout: float = 300.0, interval: float = 0.2) -> RemoteModel:
        """Block until `ready()`, up to `timeout` seconds; ClientError if it never is."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() >= deadline:
                raise ClientError(f"{self.url} was not ready within {timeout:g}s", 503)
            time.sleep(interval)
        return self

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteModel {self._name or '?'!r} at {self.url}>"

    def _get_json(self, path: str) -> Any:
        try:
            response = self._http.get(path)
        except self._errors as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}", 0) from None
        if response.status_code >= 400:
            raise _error(self.url, response.status_code, response.content)
        return _decode(response.content, response.headers.get("content-type", ""))


def connect(
    url: str, *, timeout: float = 300.0, wait: float = 0.0, api_key: Optional[str] = None
) -> RemoteModel:
    """A client for the model served at `url` (e.g. ``http://127.0.0.1:8080``).

    `timeout` bounds each request; with `wait` > 0, first wait up to that
    many seconds for the model to be ready. `api_key` (default:
    ``$PACKAGER_API_KEY``) is sent as ``Authorization: Bearer <key>`` to a
    server that asks for one (``runtime.api_key_secret``).

    Example::

        model = packager.connect("http://127.0.0.1:8080")
        model.predict({"text": "hi"})
    """
    model = RemoteModel(url, timeout=timeout, api_key=api_key)
    if wait > 0:
        model.wait(wait)
    return model


def _encode_inputs(inputs: Any) -> tuple[bytes, str, str]:
    try:
        if _has_binary(inputs, 4):
            return encode_msgpack(inputs), "application/msgpack", _MSGPACK_ACCEPT
        return encode_json(inputs), "application/json", _JSON_ACCEPT
    except TypeError as exc:
        raise ClientError(f"the inputs cannot be sent: {exc}", 0) from None


def _has_binary(value: Any, depth: int) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)) or type(value).__name__ == "ndarray":
        return True
    if depth <= 0:
        return False
    if isinstance(value, dict):
        return any(_has_binary(v, depth - 1) for v in list(value.values())[:1000])
    if isinstance(value, (list, tuple)):
        return any(_has_binary(v, depth - 1) for v in value[:1000])
    return False


def _decode(data: bytes, content_type: str) -> Any:
    try:
        if "msgpack" in content_type:
            return decode_msgpack(data)
        if _LONG_NUMBER.search(data):  # orjson reads integers over 64 bits as floats: read those exactly
            return json.loads(data, parse_constant=_no_constant)
        return decode_json(data)
    except ValueError as exc:
        raise ClientError(f"the server's answer cannot be decoded: {exc}", 0) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _error(url: str, status: int, data: bytes) -> ClientError:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    message = body.get("error") if isinstance(body, dict) else None
    message = str(message or data[:300].decode("utf-8", "replace") or f"HTTP {status}")
    if status == 401:
        message += "; pass api_key= to packager.connect() (pkg predict: --api-key), or set PACKAGER_API_KEY"
    errors = body.get("errors") if isinstance(body, dict) else None
    if status == 422 and isinstance(errors, list) and len(errors) > 3:
        more = [f"{'.'.join(map(str, e.get('loc', []))) or 'input'}: {e.get('msg')}" for e in errors[3:]]
        message = f"{message}; " + "; ".join(more)
    return ClientError(f"{url} answered {status}: {message}", status, body)


def _events(response: httpx.Response, url: str) -> Iterator[Any]:
    """Chunks from an SSE response; ClientError on an error event or a stream cut short."""
    event, data = "", []
    try:
        for line in response.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif not line and data:
                payload = decode_json("\n".join(data))
                if event == "error":
                    status = payload.get("status", 500) if isinstance(payload, dict) else 500
                    raise _error(url, int(status), orjson.dumps(payload))
                if event == "done":
                    return
                yield payload
                event, data = "", []
    except ClientError:
        raise
    except Exception as exc:  # httpx transport errors while reading, or an undecodable event
        raise ClientError(f"{url}: the stream broke off: {exc}", 0) from None
    finally:
        response.close()
    raise ClientError(f"{url}: the stream ended before the model finished", 0)
