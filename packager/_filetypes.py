"""Which bytes are files: magic-byte sniffing, data URIs and base64 text, from the table in _filetypes.json.

`pkg predict -o DIR` uses it to find the images, audio and other files in an
output; `-i name=@FILE` to tell a text file from a binary one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote_to_bytes

_TABLE = Path(__file__).with_name("_filetypes.json")
_DATA_URI = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,"
)
_B64_HEAD = re.compile(r"[A-Za-z0-9+/]{16,}")
_SNIFF_CHARS = 64  # base64 characters decoded to look for magic bytes (48 bytes)


@dataclass(frozen=True)
class FileType:
    """One row of the table: what the magic bytes say."""

    ext: str
    mime: str
    magic: tuple[tuple[int, bytes], ...]

    def matches(self, data: bytes) -> bool:
        return all(data[at : at + len(magic)] == magic for at, magic in self.magic)


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[FileType, ...], dict[str, str]]:
    raw: dict[str, Any] = json.loads(_TABLE.read_text(encoding="utf-8"))
    types = tuple(
        FileType(row["ext"], row["mime"], tuple((at, bytes.fromhex(magic)) for at, magic in row["magic"]))
        for row in raw["types"]
    )
    mimes = {t.mime: t.ext for t in reversed(types)} | dict(raw["extra_mime"])
    return types, mimes


def sniff(data: bytes) -> Optional[FileType]:
    """The file type `data` starts like, or None."""
    return next((t for t in _table()[0] if t.matches(data)), None)


def ext_for_mime(mime: str) -> Optional[str]:
    """The file extension for a media type (``image/png`` → ``png``), or None when unknown."""
    return _table()[1].get(mime.lower())


def is_binary(data: bytes) -> bool:
    """True for a known binary type, or bytes that are not UTF-8 text."""
    if sniff(data) is not None:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def file_in_text(
    text: str, base64_declared: bool = False, mime: Optional[str] = None
) -> Optional[tuple[bytes, str]]:
    """The file a string carries, with its extension, or None when it is just text.

    A string is a file when it is a data URI, when the schema declares it
    base64 (`base64_declared`; `mime` from contentMediaType), or when it is
    base64 whose decoded bytes start with known magic bytes.
    """
    found = _DATA_URI.match(text)
    if found is not None:
        return _from_data_uri(text, found)
    if base64_declared:
        data = _b64(text)
        if data is None:
            return None
        kind = sniff(data)
        return data, kind.ext if kind else ext_for_mime(mime or "") or "bin"
    head = _B64_HEAD.match(text, 0, _SNIFF_CHARS)
    if head is None:
        return None
    prefix = text[: len(head.group()) // 4 * 4]
    kind = sniff(base64.b64decode(prefix))
    if kind is None:
        return None
    data = _b64(text)
    return (data, kind.ext) if data is not None else None


def _from_data_uri(text: str, found: re.Match[str]) -> Optional[tuple[bytes, str]]:
    payload = text[found.end() :]
    data = _b64(payload) if found["b64"] else unquote_to_bytes(payload)
    if data is None:
        return None
    kind = sniff(data)
    ext = ext_for_mime(found["mime"] or "") or (kind.ext if kind else None) or "bin"
    return data, ext


def _b64(text: str) -> Optional[bytes]:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
