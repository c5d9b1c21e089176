"""KServe V1 bodies: the input is the whole JSON (or msgpack) document, and so is the output."""

from __future__ import annotations

from typing import Any

from packager._server._codec import (
    JSON,
    MSGPACK,
    SSE,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
    is_msgpack,
)
from packager._server._http import HTTPError, RequestHeaders
from packager._server._stream import KSERVE, Framing


class V1:
    """KServe V1 bodies: the input as the whole JSON (or msgpack) document."""

    streams = True

    def decode(self, body: bytes, headers: RequestHeaders) -> Any:
        headers.check_encoding()
        content_type = headers.content_type
        if content_type and content_type != JSON and is_msgpack(content_type):
            try:
                return decode_msgpack(body)
            except ValueError as exc:
                raise HTTPError(400, f"request body is not valid msgpack: {exc}") from None
        try:
            return decode_json(body)
        except ValueError as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None

    def framing(self, headers: RequestHeaders) -> Framing | None:
        """A stream goes out as SSE when the client accepts text/event-stream, else joined."""
        return KSERVE if SSE in headers.accept else None

    def encode(self, output: Any, headers: RequestHeaders) -> tuple[bytes, bytes]:
        accept, content_type = headers.accept, headers.content_type
        if (accept and is_msgpack(accept)) or (
            content_type and is_msgpack(content_type) and b"json" not in accept
        ):
            return encode_msgpack(output), MSGPACK
        return encode_json(output), JSON


def alias_routes(routes: dict[str, Any], name: str, origin: Any) -> dict[str, Any]:
    """The /v1/models/NAME routes again under the names the package's format also answers to
    (a Truss package: 'model', so a Truss client's /v1/models/model:predict keeps working)."""
    prefix = f"/v1/models/{name}"
    aliases = [a for a in (origin.aliases if origin is not None else ()) if a != name]
    return {
        f"/v1/models/{alias}{path[len(prefix) :]}": route
        for path, route in routes.items()
        if path == prefix or path.startswith((prefix + ":", prefix + "/"))
        for alias in aliases
    }
