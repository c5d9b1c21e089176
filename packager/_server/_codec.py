"""Body encodings shared by the server and `packager.connect()`: JSON, msgpack, SSE.

JSON is orjson; numpy arrays and scalars become lists and numbers, pydantic
models their JSON form, bytes base64 text. msgpack keeps bytes as bytes and
numpy arrays as arrays (extension type 1: dtype, shape, raw data), so both
survive a round trip. This module imports nothing heavier than orjson and
msgpack; numpy is imported only when an array is met.
"""

from __future__ import annotations

import base64
import datetime
import enum
import uuid
from collections.abc import Iterable
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import msgpack
import orjson

from packager._server import _values

JSON = b"application/json"
MSGPACK = b"application/msgpack"
SSE = b"text/event-stream"
NDARRAY_EXT = 1
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class EncodeError(TypeError):
    """A value has no JSON/msgpack form; `type_name` names its type when one value is to blame."""

    def __init__(self, message: str, type_name: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name


def is_msgpack(content_type: bytes) -> bool:
    """Whether a Content-Type or Accept value names msgpack (application/msgpack, x-msgpack...)."""
    return b"msgpack" in content_type


def decode_json(body: bytes | str) -> Any:
    """Parse JSON; raises orjson.JSONDecodeError (a ValueError)."""
    return orjson.loads(body)


def encode_json(value: Any) -> bytes:
    """Serialise to JSON bytes; EncodeError when something has no JSON form.

    NaN and ±Infinity are refused (orjson would write them as null, and JSON
    has no such numbers); integers over 64 bits are written as JSON numbers.
    """
    try:
        data = orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS)
    except TypeError as exc:
        data = _encode_json_hard(value, exc)
    if data.find(b"null") != -1:  # rare enough to look closer: was a NaN or an infinity written as null?
        found = _values.find(value, _values.non_finite, None, _json_default)
        if found is not None:
            path, problem = found
            raise EncodeError(
                f"{_values.where(path)} {problem}, which JSON cannot carry: return None or a finite "
                "number there (msgpack answers, Accept: application/msgpack, carry NaN and Infinity)"
            )
    return data


def _encode_json_hard(value: Any, exc: TypeError) -> bytes:
    """After orjson refused `value`: widen integers over 64 bits, or say which part is to blame."""
    if isinstance(exc.__cause__, EncodeError):  # orjson keeps the error our default() raised
        raise exc.__cause__ from None
    bad_key = _values.find(value, _values.no_problem, _values.json_key, _json_default)
    if bad_key is not None:
        raise EncodeError(f"{_values.where(bad_key[0])} {bad_key[1]}") from None
    fragment = getattr(orjson, "Fragment", None)
    if fragment is None or _values.find(value, _values.big_int, None, _json_default) is None:
        raise EncodeError(str(exc)) from None
    widened = _values.widen_ints(value, lambda n: fragment(str(n).encode()), _json_default)
    try:
        return orjson.dumps(widened, default=_json_default, option=_JSON_OPTIONS)
    except TypeError as again:
        if isinstance(again.__cause__, EncodeError):
            raise again.__cause__ from None
        raise EncodeError(str(again)) from None


def decode_msgpack(body: bytes) -> Any:
    """Parse msgpack, rebuilding numpy arrays; raises ValueError on malformed data."""
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except (ValueError, TypeError, ImportError) as exc:  # ExtraData, FormatError, StackError are ValueErrors
        raise ValueError(f"not valid msgpack: {exc}") from None


def encode_msgpack(value: Any) -> bytes:
    """Serialise to msgpack bytes; EncodeError when something has no msgpack form."""
    try:
        return msgpack.packb(value, default=_msgpack_default, use_bin_type=True, datetime=False)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        found = _values.find(value, _values.big_int, _values.big_int, _msgpack_expand)
        if found is not None:
            raise EncodeError(
                f"{_values.where(found[0])} holds an integer over 64 bits, which msgpack cannot carry: "
                "return it as text, or ask for JSON (Accept: application/json), which carries it"
            ) from None
        raise EncodeError(str(exc)) from None


def sse_event(data: bytes, event: bytes | None = None) -> bytes:
    """One Server-Sent Event whose data is a (single-line) JSON document."""
    return (b"event: " + event + b"\ndata: " if event else b"data: ") + data + b"\n\n"


def join_chunks(chunks: list[Any]) -> Any:
    """A finished stream as one value: text concatenated, bytes concatenated, else the list."""
    if chunks and all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if chunks and all(isinstance(c, (bytes, bytearray)) for c in chunks):
        return b"".join(chunks)
    return chunks


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return _common(value)


def _msgpack_expand(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="python")
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _msgpack_default(value: Any) -> Any:
    if type(value).__module__ == "numpy":
        return _numpy(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="python")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, enum.Enum)):
        return str(value) if isinstance(value, uuid.UUID) else value.value
    return _common(value)


def _common(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (PurePath, Decimal)):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays orjson cannot take, torch tensors
    if callable(tolist):
        return tolist()
    name = type(value).__name__
    if isinstance(value, Iterable) and not isinstance(value, (str, dict)):
        raise EncodeError(f"{name} is not JSON serializable; return a list instead", name)
    raise EncodeError(f"{name} is not serializable; return JSON types, numpy arrays or bytes", name)


def _numpy(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return value.tolist()
        data = value if value.flags.c_contiguous else np.ascontiguousarray(value)
        header = msgpack.packb([value.dtype.str, list(value.shape)], use_bin_type=True)
        return msgpack.ExtType(NDARRAY_EXT, header + data.tobytes())
    if isinstance(value, np.generic):
        return value.item()
    return _common(value)


def _ext_hook(code: int, data: bytes) -> Any:
    if code != NDARRAY_EXT:
        return msgpack.ExtType(code, data)
    import numpy as np

    try:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        dtype, shape = unpacker.unpack()
        offset = unpacker.tell()
        return np.frombuffer(data, dtype=np.dtype(dtype), offset=offset).reshape(tuple(shape)).copy()
    except Exception as exc:  # any malformed header or buffer is the sender's mistake
        raise ValueError(f"bad numpy array in msgpack: {exc}") from None
