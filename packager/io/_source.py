"""Bytes from what a request carries: base64, a data URI, an http(s) URL, raw bytes or a Path.

The limits come from the environment, read on each call (docs/io.md):
``PACKAGER_IO_MAX_BYTES`` (default 64 MiB), ``PACKAGER_IO_URL_TIMEOUT_S`` (default 15) and
``PACKAGER_IO_URLS=0`` (refuse URLs, e.g. on a server that must not reach the network).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

from packager._errors import InputError

MAX_BYTES = 64 * 1024 * 1024
_TIMEOUT_S = 15.0
_B64_JUNK = re.compile(r"\s+")


class DecodeError(ValueError):
    """A value could not be turned into bytes, an image or audio; the message says why."""


def fail(field: str, message: str) -> NoReturn:
    """Raise the InputError (HTTP 422) that names `field`."""
    raise InputError(
        f"input is invalid: {field}: {message}",
        [{"loc": field.split("."), "msg": message, "type": "value_error"}],
    ) from None


def read_bytes(value: Any, *, field: str = "input", max_bytes: int | None = None) -> bytes:
    """The bytes `value` carries (base64, data URI, http(s) URL, bytes or Path); InputError names `field`."""
    try:
        return source_bytes(value, max_bytes=max_bytes)
    except DecodeError as exc:
        fail(field, str(exc))


def source_bytes(value: Any, *, max_bytes: int | None = None) -> bytes:
    """As `read_bytes`, raising DecodeError (a ValueError, so pydantic reports the field)."""
    limit = max_bytes if max_bytes is not None else _env_int("PACKAGER_IO_MAX_BYTES", MAX_BYTES)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, Path):
        data = _read_path(value, limit)
    elif isinstance(value, str):
        data = _from_text(value.strip(), limit)
    else:
        raise DecodeError(f"expected a base64 string, a data URI or a URL, got {type(value).__name__}")
    if not data:
        raise DecodeError("is empty")
    if len(data) > limit:
        raise DecodeError(f"is {len(data)} bytes, more than the limit of {limit} (PACKAGER_IO_MAX_BYTES)")
    return data


def _from_text(text: str, limit: int) -> bytes:
    lowered = text[:8].lower()
    if lowered.startswith("data:"):
        return _from_data_uri(text)
    if lowered.startswith(("http://", "https://")):
        return _fetch(text, limit)
    if "://" in text[:16]:
        raise DecodeError(f"URL scheme {text.split('://')[0]!r} is not supported; use http(s)")
    return _from_base64(text)


def _from_base64(text: str) -> bytes:
    compact = _B64_JUNK.sub("", text)
    if not compact:
        raise DecodeError("is empty")
    compact += "=" * (-len(compact) % 4)
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    try:
        return base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("is not valid base64, a data: URI or an http(s) URL") from None


def _from_data_uri(text: str) -> bytes:
    header, comma, payload = text.partition(",")
    if not comma:
        raise DecodeError("data: URI has no ',' before its data")
    if header.lower().endswith(";base64"):
        return _from_base64(payload)
    return urllib.parse.unquote_to_bytes(payload)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise DecodeError(f"URL redirects to {newurl!r}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str, limit: int) -> bytes:
    if os.environ.get("PACKAGER_IO_URLS", "1").strip().lower() in ("0", "false", "no", "off"):
        raise DecodeError("URL inputs are turned off on this server (PACKAGER_IO_URLS=0); send base64")
    timeout = _env_float("PACKAGER_IO_URL_TIMEOUT_S", _TIMEOUT_S)
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"User-Agent": "packager-io"})  # noqa: S310 (http/https only: checked by the caller and on redirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise DecodeError(f"URL body is {length} bytes, more than the limit of {limit}")
            data: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise DecodeError(f"could not fetch {_short(url)}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if isinstance(exc, DecodeError):
            raise
        reason = getattr(exc, "reason", exc)
        raise DecodeError(f"could not fetch {_short(url)}: {reason}") from None
    return data


def _read_path(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise DecodeError(f"file {path} is {size} bytes, more than the limit of {limit}")
        return path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"cannot read {path}: {exc.strerror or exc}") from None


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default
