"""Downloading one https:// file: streamed, hashed while it streams, resumed, renamed when verified.

The bytes go to ``<name>.part`` in the destination folder. When a ``.part``
is already there (an earlier start was interrupted) the download asks for the
rest with a Range request; a server that answers 200 instead sends the whole
file again. Only a complete download whose sha256 matches (when the spec
gives one) is renamed to ``<name>``; a mismatch removes the partial file.
Only the standard library is used (the serving image carries no HTTP client).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from packager._errors import ModelLoadError

CHUNK = 1 << 20
ATTEMPTS = 3
TIMEOUT_S = 60.0
_log = logging.getLogger("packager.weights")


def shown(url: str) -> str:
    """`url` fit for logs and errors: no user:password and no query (presigned tokens live there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def file_name(url: str) -> str:
    """The file a URL downloads to: the last part of its path."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return name.lstrip(".") or "download"


def ssl_context() -> ssl.SSLContext:
    """Verifying TLS context; `$PACKAGER_CA_BUNDLE` adds a CA bundle (a TLS-intercepting proxy's)."""
    return ssl.create_default_context(cafile=os.environ.get("PACKAGER_CA_BUNDLE") or None)


def download(url: str, dest: Path, expected: Mapping[str, str], token: str | None = None) -> dict[str, str]:
    """Download `url` into folder `dest`; returns {file name: sha256}. Retries resume the partial.
    A `token` goes as ``Authorization: Bearer``, to this host only (never along a redirect)."""
    name = file_name(url)
    part = dest / (name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            digest = _fetch_part(url, part, token)
            break
        except (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as exc:
            got = part.stat().st_size if part.exists() else 0
            if attempt == ATTEMPTS:
                raise ModelLoadError(
                    f"downloading {shown(url)} was interrupted after {got} bytes ({type(exc).__name__}); "
                    "start again to resume it"
                ) from None
            _log.warning("weights %s: interrupted after %d bytes; resuming", name, got)
    want = expected.get(name)
    if want is not None and digest != want:
        part.unlink()
        raise ModelLoadError(
            f"sha256 mismatch for {name} from {shown(url)}: expected {want}, got {digest}; "
            "the file was removed; fix sha256 in package.yaml or the source"
        )
    os.replace(part, dest / name)
    return {name: digest}


def _fetch_part(url: str, part: Path, token: str | None) -> str:
    """Bring `part` to the whole file (resuming when the server allows); returns its sha256."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (the spec allows https:// only)
        if token:
            request.add_unredirected_header("Authorization", f"Bearer {token}")
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S, context=ssl_context())  # noqa: S310
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # the partial is no prefix of the file any more: start over
            part.unlink()
            return _fetch_part(url, part, token)
        raise ModelLoadError(
            f"downloading {shown(url)} failed: HTTP {exc.code} {exc.reason}; check the URL and its access"
        ) from None
    except urllib.error.URLError as exc:
        raise ModelLoadError(
            f"cannot download {shown(url)}: {exc.reason}; check the URL and the network"
        ) from None
    with response:
        resumed = offset > 0 and response.status == 206
        digest = hash_file(part) if resumed else hashlib.sha256()
        if offset and not resumed:
            _log.info("weights %s: the server cannot resume; downloading it again", part.name[:-5])
        with open(part, "ab" if resumed else "wb") as out:
            _stream(response, out, digest, offset if resumed else 0, part.name[:-5])
    return digest.hexdigest()


def _stream(
    response: http.client.HTTPResponse, out: BinaryIO, digest: hashlib._Hash, done: int, name: str
) -> None:
    length = response.headers.get("Content-Length")
    total = done + int(length) if length and length.isdigit() else None
    _log.info("weights %s: downloading%s", name, f" {total} bytes" if total else "")
    last = time.monotonic()
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            break
        out.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        if time.monotonic() - last > 5:
            last = time.monotonic()
            _log.info("weights %s: %d of %s bytes", name, done, total or "?")
    out.flush()
    if total is not None and done < total:
        raise http.client.IncompleteRead(b"", total - done)
    _log.info("weights %s: %d bytes downloaded", name, done)


def hash_file(path: Path) -> hashlib._Hash:
    """sha256 of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest
