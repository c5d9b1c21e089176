"""The browser playground: a page at ``/playground/`` that builds a form from the model's input schema.

The page is three static files (``_playground_static/``, shipped in the wheel) plus
``/playground/model.json``: the model's name, input and output schemas, examples and
whether it streams. Everything the page fetches is addressed relative to itself,
so it works behind a reverse proxy that serves the server under a path prefix.
With an API key, only the static files are public; ``model.json`` and predict need the key.
Nothing here runs on the predict path: these are routes in the app's table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional

import orjson

from packager._pipeline import Pipeline
from packager._server._auth import ApiKey
from packager._server._http import Headers, Receive, Scope, Send, respond, respond_json

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
Routes = dict[str, tuple[tuple[str, ...], Handler]]
STATIC = Path(__file__).with_name("_playground_static")
PREFIX = "/playground/"
_TYPES = {
    "index.html": b"text/html; charset=utf-8",
    "playground.js": b"text/javascript; charset=utf-8",
    "playground.css": b"text/css; charset=utf-8",
}
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data: blob:; media-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'"
)
_GET = ("GET", "HEAD")
# The static files are public (with or without an API key): the page itself holds no model data.
PUBLIC = frozenset(("/playground", PREFIX, *(PREFIX + name for name in _TYPES if name != "index.html")))


class Asset:
    """One static file, read once: its bytes, content type and ETag."""

    __slots__ = ("body", "content_type", "etag")

    def __init__(self, name: str) -> None:
        self.body = (STATIC / name).read_bytes()
        self.content_type = _TYPES[name]
        self.etag = b'"' + hashlib.sha256(self.body).hexdigest()[:20].encode() + b'"'


class Playground:
    """The playground's routes for one pipeline; files are read on the first request for them.

    With an `api_key`, the static files join its public paths (`model.json` does not).
    """

    def __init__(self, pipeline: Pipeline, api_key: Optional[ApiKey] = None) -> None:
        self._pipeline = pipeline
        if api_key is not None:
            api_key.public |= PUBLIC
        self._assets: dict[str, Asset] = {}
        self._info: Optional[bytes] = None

    def routes(self) -> Routes:
        routes: Routes = {"/playground": (_GET, self._redirect), PREFIX + "model.json": (_GET, self._model)}
        for name in _TYPES:
            path = PREFIX if name == "index.html" else PREFIX + name
            routes[path] = (_GET, self._static_handler(name))
        return routes

    def front(self, live: Handler) -> Handler:
        """The handler of ``/``: a redirect to the playground for browsers, `live` for everyone else."""

        async def root(scope: Scope, receive: Receive, send: Send) -> None:
            if prefers_html(_header(scope, b"accept")):
                await _see_other(send, b"playground/")
            else:
                await live(scope, receive, send)

        return root

    def info(self) -> dict[str, Any]:
        """What the page needs to build its form: the schemas, the examples, streaming or not."""
        pipeline, spec = self._pipeline, self._pipeline.spec
        return {
            "name": spec.name,
            "description": spec.description,
            "input": pipeline.contract.input_schema(),
            "output": pipeline.contract.output_schema(),
            "streaming": pipeline.streams,
            "examples": [{"name": e.name, "input": e.input} for e in spec.examples],
            "predict": f"v1/models/{spec.name}:predict",
            "ready": f"v1/models/{spec.name}",
            "openapi": "openapi.json",
            "api_key": spec.runtime.api_key_secret is not None,
            "openai": list(spec.runtime.openai),  # OpenAI routes served: the page adds their snippet
        }

    async def _model(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._info is None:
            self._info = orjson.dumps(self.info())
        await respond(send, 200, self._info, headers=[(b"cache-control", b"no-store")])

    async def _redirect(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _see_other(send, b"playground/")  # relative: keeps a proxy's path prefix

    def _static_handler(self, name: str) -> Handler:
        async def static(scope: Scope, receive: Receive, send: Send) -> None:
            asset = self._assets.get(name)
            if asset is None:
                asset = self._assets[name] = Asset(name)
            await send_asset(scope, send, asset)

        return static


async def send_asset(scope: Scope, send: Send, asset: Asset) -> None:
    """200 with the file, or 304 when the client's If-None-Match holds its ETag; browsers revalidate."""
    headers: Headers = [
        (b"etag", asset.etag),
        (b"cache-control", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if asset.content_type.startswith(b"text/html"):
        headers += [(b"content-security-policy", _CSP), (b"referrer-policy", b"no-referrer")]
    if asset.etag in _header(scope, b"if-none-match"):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await respond(send, 200, asset.body, asset.content_type, headers)


def prefers_html(accept: bytes) -> bool:
    """True when an Accept header ranks text/html above JSON (browsers do; curl and SDKs do not)."""
    if b"text/html" not in accept:
        return False
    html = json = 0.0
    for item in accept.lower().split(b","):
        media, _, params = item.partition(b";")
        media = media.strip()
        if media == b"text/html":
            html = max(html, _quality(params))
        elif media in (b"application/json", b"application/*"):
            json = max(json, _quality(params))
    return html > json


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip() == b"q":
            try:
                return min(1.0, max(0.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def _header(scope: Scope, wanted: bytes) -> bytes:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return b""


async def _see_other(send: Send, location: bytes) -> None:
    headers = [(b"location", location), (b"vary", b"accept"), (b"cache-control", b"no-store")]
    await respond_json(send, 303, {"location": location.decode()}, headers)
