"""The optional API key: with ``runtime.api_key_secret`` set, requests must carry the key.

The key is the value of the named secret (``PACKAGER_SECRET_<NAME>`` or the
secrets directory), resolved once when the app is built. Every route except
liveness, readiness and ``/metrics`` (what probes and scrapers call) then
needs ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in
constant time. A refusal is a JSON 401 with ``WWW-Authenticate: Bearer``;
neither the key nor what a client sent is ever logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Optional

from packager._errors import PackagerError
from packager._pipeline import Pipeline
from packager._secrets import resolve_secrets
from packager._server._http import HTTPError

_HOW = "send the key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
CHALLENGE = [(b"www-authenticate", b"Bearer")]


class ApiKey:
    """The key, and the paths that need none (`public`)."""

    __slots__ = ("_key", "public")

    def __init__(self, key: str, public: Iterable[str]) -> None:
        if not key.isascii() or not key.isprintable() or key.strip() != key:
            raise PackagerError(
                "the API key must be printable ASCII without surrounding spaces (it travels in an HTTP header)"
            )
        self._key = key.encode("ascii")
        self.public = frozenset(public)

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline) -> Optional[ApiKey]:
        """The key named by the spec's `runtime.api_key_secret`, or None when it names none."""
        secret = pipeline.spec.runtime.api_key_secret
        if secret is None:
            return None
        overrides = getattr(pipeline, "_secret_overrides", None)  # secrets given to load()/Pipeline
        value = resolve_secrets([secret], overrides)[secret]
        name = pipeline.spec.name
        public = ("/", "/v2/health/live", "/v2/health/ready", f"/v1/models/{name}",
                  f"/v2/models/{name}/ready", "/metrics")  # fmt: skip
        return cls(value, public)

    def refusal(self, headers: Iterable[tuple[bytes, bytes]]) -> Optional[HTTPError]:
        """None when the request carries the key, else the 401 to answer."""
        given = False
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.strip().partition(b" ")
                candidate = token.strip() if scheme.lower() == b"bearer" else b""
            elif name == b"x-api-key":
                candidate = value.strip()
            else:
                continue
            if hmac.compare_digest(candidate, self._key):
                return None
            given = True
        if given:
            return HTTPError(401, f"the API key is wrong; {_HOW}", list(CHALLENGE))
        return HTTPError(401, f"this server needs an API key; {_HOW}", list(CHALLENGE))
