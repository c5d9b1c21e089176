"""Body encodings: JSON for everything JSON can hold, msgpack keeping bytes and arrays."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
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


# -- numbers JSON cannot carry as they are, and keys it cannot write ---------------------------


class Scores(BaseModel):
    values: list[float]


@dataclasses.dataclass
class Pair:
    left: float
    right: float


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (float("nan"), "output is NaN"),
        ({"scores": [0.5, float("inf")]}, "output['scores'][1] is Infinity"),
        ([{"a": -math.inf}], "output[0]['a'] is -Infinity"),
        (
            {"x": np.array([[1.0, 2.0], [3.0, np.nan]])},
            "output['x'] is a numpy array holding NaN at index [1, 1]",
        ),
        ({"f": np.float32("nan")}, "output['f'] is NaN"),
        ({"model": Scores(values=[1.0, float("nan")])}, "output['model']['values'][1] is NaN"),
        (Pair(1.0, math.inf), "output.right is Infinity"),
    ],
)
def test_nan_and_infinity_are_refused_naming_where_they_are(value: object, where: str) -> None:
    with pytest.raises(EncodeError, match="which JSON cannot carry") as refused:
        encode_json(value)
    assert str(refused.value).startswith(where + ",")


def test_none_and_finite_floats_still_encode_and_msgpack_carries_nan() -> None:
    assert encode_json({"a": None, "b": [1.5, None], "c": "null"}) == b'{"a":null,"b":[1.5,null],"c":"null"}'
    assert math.isnan(decode_msgpack(encode_msgpack({"x": float("nan")}))["x"])


def test_integers_over_64_bits_are_json_numbers() -> None:
    value = {
        "big": 2**70,
        "neg": [-(2**65), 1],
        "edge": [2**64 - 1, -(2**63)],
        "model": Point(x=3**50, when=datetime.date(2024, 1, 2)),
    }
    encoded = encode_json(value)
    assert json.loads(encoded) == {
        "big": 2**70,
        "neg": [-(2**65), 1],
        "edge": [2**64 - 1, -(2**63)],
        "model": {"x": 3**50, "when": "2024-01-02"},
    }
    assert encode_json(np.array([2**80, "a"], dtype=object)) == b'[1208925819614629174706176,"a"]'


def test_msgpack_refuses_integers_over_64_bits_naming_where() -> None:
    with pytest.raises(EncodeError, match=r"output\['a'\]\[1\] holds an integer over 64 bits"):
        encode_msgpack({"a": [1, 2**64]})


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({(1, 2): "x"}, "output has a key of type tuple ((1, 2))"),
        ({"inner": {np.int64(3): 1}}, "output['inner'] has a key of type int64"),
        ({"a": [{frozenset(): 1}]}, "output['a'][0] has a key of type frozenset"),
    ],
)
def test_keys_json_cannot_write_get_a_message_naming_them(value: object, where: str) -> None:
    with pytest.raises(EncodeError, match="JSON object keys are text") as refused:
        encode_json(value)
    assert str(refused.value).startswith(where)


def test_keys_json_can_write_are_written_as_text() -> None:
    assert (
        encode_json({1: "a", None: "b", 2.5: "c", False: "d"})
        == b'{"1":"a","null":"b","2.5":"c","false":"d"}'
    )
