"""KServe V2 / Open Inference Protocol bodies for ``POST /v2/models/{name}/infer``.

A request's ``inputs`` (each ``{name, shape, datatype, data}``) reach the
model as one dict keyed by tensor name: numpy arrays for an untyped model,
nested lists for a typed one (so its annotation validates them). A dict
output becomes one output tensor per key; anything else is ``output0``.
JSON only (no binary tensor extension); streaming models answer with the
chunks joined.
"""

from __future__ import annotations

import math
from typing import Any

from packager._pipeline import Pipeline
from packager._server._codec import JSON, decode_json, encode_json
from packager._server._http import HTTPError, RequestHeaders

DTYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}  # fmt: skip
_NAMES = {numpy_name: v2 for v2, numpy_name in DTYPES.items()}


class V2:
    """Decodes infer requests into the model's input and encodes its output as tensors."""

    streams = False

    def __init__(self, model: str, typed: bool = False) -> None:
        self.model = model
        self.typed = typed

    def metadata(self, pipeline: Pipeline) -> dict[str, Any]:
        return {"name": self.model, "versions": [], "platform": "packager", "inputs": [], "outputs": []}

    def decode(self, body: bytes, headers: RequestHeaders) -> Any:
        try:
            request = decode_json(body)
        except ValueError as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None
        inputs = request.get("inputs") if isinstance(request, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise HTTPError(400, "a V2 infer request needs a non-empty 'inputs' list of tensors")
        return {_name(t, i): self._tensor(t, i) for i, t in enumerate(inputs)}

    def encode(self, output: Any, headers: RequestHeaders) -> tuple[bytes, bytes]:
        items = output.items() if isinstance(output, dict) else [("output0", output)]
        tensors = [_to_tensor(str(name), value) for name, value in items]
        return encode_json({"model_name": self.model, "outputs": tensors}), JSON

    def _tensor(self, tensor: dict[str, Any], index: int) -> Any:
        shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
        where = f"inputs[{index}]"
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise HTTPError(400, f"{where}.shape must be a list of non-negative integers")
        if datatype not in DTYPES:
            raise HTTPError(400, f"{where}.datatype must be one of {', '.join(DTYPES)}")
        flat = _flatten(data)
        if len(flat) != math.prod(shape):
            raise HTTPError(400, f"{where}: shape {shape} needs {math.prod(shape)} values, got {len(flat)}")
        if self.typed:
            return _reshape(flat, shape)
        try:
            import numpy as np

            return np.asarray(flat, dtype=DTYPES[datatype]).reshape(shape)
        except ImportError:
            return _reshape(flat, shape)
        except (TypeError, ValueError, OverflowError) as exc:
            raise HTTPError(400, f"{where}: data does not fit {datatype}: {exc}") from None


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
        return {"name": name, "shape": _shape(value), "datatype": _python_type(flat), "data": flat}
    array = np.asarray(value)
    datatype = _NAMES.get(array.dtype.name, "BYTES")
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
