"""Body encodings: JSON for everything JSON can hold, msgpack keeping bytes and arrays."""

from __future__ import annotations

import datetime
import enum
import uuid
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from packager._server._codec import (
    EncodeError,
    decode_msgpack,
    encode_json,
    encode_msgpack,
    is_msgpack,
    join_chunks,
    sse_event,
)


class Point(BaseModel):
    x: int
    when: datetime.date


class Colour(enum.Enum):
    RED = "red"


def test_json_handles_numpy_pydantic_bytes_and_sets() -> None:
    value = {
        "array": np.arange(3),
        "f32": np.float32(0.5),
        "strided": np.arange(6)[::2],
        "complex": np.array([1 + 2j]).real,
        "model": Point(x=1, when=datetime.date(2024, 1, 2)),
        "blob": b"\x00\x01",
        "set": {3},
        "path": Path("/tmp/x"),
        1: "non-string key",
    }
    assert encode_json(value) == (
        b'{"array":[0,1,2],"f32":0.5,"strided":[0,2,4],"complex":[1.0],'
        b'"model":{"x":1,"when":"2024-01-02"},"blob":"AAE=","set":[3],"path":"/tmp/x","1":"non-string key"}'
    )


def test_unencodable_values_raise_encode_error() -> None:
    with pytest.raises(EncodeError, match="object is not serializable"):
        encode_json({"x": object()})
    with pytest.raises(EncodeError, match="generator is not JSON serializable"):
        encode_json(i for i in range(3))
    with pytest.raises(EncodeError):
        encode_msgpack({"x": object()})


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int64).reshape(3, 4),
        np.arange(12, dtype=np.float16).reshape(4, 3).T,
        np.array([], dtype=np.float32),
        np.array(3.5),
        np.array([True, False]),
        np.zeros((2, 0, 3), dtype=np.uint8),
    ],
)
def test_msgpack_round_trips_numpy_arrays(array: np.ndarray) -> None:
    out = decode_msgpack(encode_msgpack({"a": array, "b": b"raw", "c": [1, "x", None]}))
    assert out["a"].dtype == array.dtype
    assert out["a"].shape == array.shape
    np.testing.assert_array_equal(out["a"], array)
    assert out["a"].flags.writeable
    assert (out["b"], out["c"]) == (b"raw", [1, "x", None])


def test_msgpack_converts_other_types_to_plain_values() -> None:
    value = {
        "model": Point(x=1, when=datetime.date(2024, 1, 2)),
        "id": uuid.UUID(int=1),
        "colour": Colour.RED,
        "scalar": np.int16(7),
        "objects": np.array(["a", None], dtype=object),
        "set": frozenset([1]),
    }
    assert decode_msgpack(encode_msgpack(value)) == {
        "model": {"x": 1, "when": "2024-01-02"},
        "id": "00000000-0000-0000-0000-000000000001",
        "colour": "red",
        "scalar": 7,
        "objects": ["a", None],
        "set": [1],
    }


def test_malformed_msgpack_raises_value_error() -> None:
    for body in (b"\xc1", b"\x92\x01", b"\x01\x02", b"\xc7\x02\x01\x91\x01"):
        with pytest.raises(ValueError, match=r"msgpack|numpy"):
            decode_msgpack(body)


def test_helpers() -> None:
    assert is_msgpack(b"application/x-msgpack")
    assert not is_msgpack(b"application/json")
    assert sse_event(b'"x"') == b'data: "x"\n\n'
    assert sse_event(b"{}", b"done") == b"event: done\ndata: {}\n\n"
    assert join_chunks(["a", "b"]) == "ab"
    assert join_chunks([b"a", b"b"]) == b"ab"
    assert join_chunks([1, "a"]) == [1, "a"]
    assert join_chunks([]) == []
