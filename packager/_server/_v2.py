"""KServe V2 / Open Inference Protocol bodies for ``POST /v2/models/{name}/infer``.

A request's ``inputs`` (each ``{name, shape, datatype, data}``) reach the
model as one dict keyed by tensor name: numpy arrays for an untyped model,
nested lists for a typed one (so its annotation validates them; a field
that takes one value also accepts a ``[1]``-shaped tensor). A dict output
becomes one output tensor per key; anything else is ``output0``. The
request ``id`` is echoed. Malformed requests get 400; a tensor without
``data``, two tensors with one name, or values out of their datatype's range
(FP16 overflow) get 422. JSON only (no binary tensor extension); streaming
models answer with the chunks joined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from packager._errors import InputError
from packager._pipeline import Pipeline
from packager._server._codec import JSON, EncodeError, decode_json, encode_json
from packager._server._http import HTTPError, RequestHeaders
from packager._server._v2_meta import Tensor, tensors

DTYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}  # fmt: skip
_NAMES = {numpy_name: v2 for v2, numpy_name in DTYPES.items()}


class V2:
    """Decodes infer requests into the model's input and encodes its output as tensors.

    `inputs` and `outputs` describe the typed model's tensors (from its
    annotations); a typed input field that takes one value accepts a tensor
    of shape [1] (or []) holding it.
    """

    streams = False

    def framing(self, headers: RequestHeaders) -> None:
        """V2 has no streaming: a stream's chunks are joined into one answer."""
        return None

    def __init__(
        self, model: str, typed: bool = False, inputs: Sequence[Tensor] = (), outputs: Sequence[Tensor] = ()
    ) -> None:
        self.model = model
        self.typed = typed
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._scalars = frozenset(t.name for t in inputs if t.scalar)

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline) -> V2:
        contract = pipeline.contract
        return cls(
            pipeline.spec.name,
            typed=contract.input_adapter is not None,
            inputs=tensors(contract.input_schema(), "input0"),
            outputs=tensors(contract.output_schema(), "output0"),
        )

    def metadata(self) -> dict[str, Any]:
        """The body of ``GET /v2/models/NAME``."""
        return {
            "name": self.model,
            "versions": [],
            "platform": "packager",
            "inputs": [t.metadata() for t in self.inputs],
            "outputs": [t.metadata() for t in self.outputs],
        }

    def decode(self, body: bytes, headers: RequestHeaders) -> Any:
        headers.check_encoding()
        try:
            request = decode_json(body)
        except ValueError as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None
        inputs = request.get("inputs") if isinstance(request, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise HTTPError(400, "a V2 infer request needs a non-empty 'inputs' list of tensors")
        request_id = request.get("id")
        if request_id is not None:
            if not isinstance(request_id, str):
                raise HTTPError(400, "the V2 request 'id' must be a string")
            headers.v2_id = request_id
        decoded: dict[str, Any] = {}
        for i, tensor in enumerate(inputs):
            name = _name(tensor, i)
            if name in decoded:
                raise _invalid(["inputs", i, "name"], f"two input tensors are named {name!r}", "duplicate")
            decoded[name] = self._tensor(tensor, i, name)
        return decoded

    def encode(self, output: Any, headers: RequestHeaders) -> tuple[bytes, bytes]:
        dump = getattr(output, "model_dump", None)
        if callable(dump):  # a pydantic output: one tensor per field, as the metadata lists them
            output = dump(mode="python")
        items = output.items() if isinstance(output, dict) else [("output0", output)]
        body: dict[str, Any] = {"model_name": self.model}
        request_id = getattr(headers, "v2_id", None)
        if request_id is not None:
            body["id"] = request_id
        body["outputs"] = [_to_tensor(str(name), value) for name, value in items]
        return encode_json(body), JSON

    def _tensor(self, tensor: dict[str, Any], index: int, name: str) -> Any:
        shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
        where = f"inputs[{index}]"
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise HTTPError(400, f"{where}.shape must be a list of non-negative integers")
        if datatype not in DTYPES:
            raise HTTPError(400, f"{where}.datatype must be one of {', '.join(DTYPES)}")
        if data is None:
            raise _invalid(["inputs", index, "data"], f"tensor {name!r} has no 'data'", "missing")
        flat = _flatten(data)
        if len(flat) != math.prod(shape):
            raise HTTPError(400, f"{where}: shape {shape} needs {math.prod(shape)} values, got {len(flat)}")
        array = _as_array(flat, shape, datatype, index, name)
        if not self.typed:
            return _reshape(flat, shape) if array is None else array
        if name in self._scalars and len(shape) <= 1 and len(flat) == 1:
            return flat[0]
        return _reshape(flat, shape)


def _as_array(flat: list[Any], shape: list[int], datatype: str, index: int, name: str) -> Any:
    """The data as a numpy array of `datatype` (None without numpy); 422 for values out of its range."""
    try:
        import numpy as np
    except ImportError:
        return None
    try:
        with np.errstate(over="ignore"):
            array = np.asarray(flat, dtype=DTYPES[datatype]).reshape(shape)
    except OverflowError as exc:
        raise _invalid(["inputs", index, "data"], f"tensor {name!r}: {exc}", "out_of_range") from None
    except (TypeError, ValueError) as exc:
        raise HTTPError(400, f"inputs[{index}]: data does not fit {datatype}: {exc}") from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():  # JSON numbers are finite: it overflowed
        largest = float(np.finfo(array.dtype).max)
        message = f"tensor {name!r} holds a value beyond {datatype}'s range (largest: {largest:g})"
        raise _invalid(["inputs", index, "data"], message, "out_of_range")
    return array


def _invalid(loc: list[Any], message: str, kind: str) -> InputError:
    return InputError(f"input is invalid: {message}", [{"loc": loc, "msg": message, "type": kind}])


def _name(tensor: Any, index: int) -> str:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise HTTPError(400, f"inputs[{index}] must be an object with a 'name'")
    return str(tensor["name"])


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            out.append(item)
    return out


def _reshape(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0] if flat else None
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _to_tensor(name: str, value: Any) -> dict[str, Any]:
    try:
        import numpy as np
    except ImportError:
        flat = _flatten(value.tolist() if hasattr(value, "tolist") else value)
        return {"name": name, "shape": _shape(value) or [1], "datatype": _python_type(flat), "data": flat}
    array = np.asarray(value)
    if array.ndim == 0:  # one value: a [1]-shaped tensor, as the metadata lists scalars
        array = array.reshape(1)
    datatype = _NAMES.get(array.dtype.name, "BYTES")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = [int(i) for i in np.argwhere(~np.isfinite(array))[0]]
        raise EncodeError(
            f"output tensor {name!r} holds {array[tuple(index)]} at index {index}, which JSON cannot "
            "carry: return finite numbers"
        )
    data = array.reshape(-1).tolist()
    if datatype == "BYTES":
        data = [d.decode("utf-8", "replace") if isinstance(d, bytes) else d for d in data]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def _shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _python_type(flat: list[Any]) -> str:
    if all(isinstance(v, bool) for v in flat):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        return "FP64"
    return "BYTES"


_END = object()
