"""KServe V2 metadata: tensors described from the model's input and output JSON Schemas.

A typed model whose input is an object gets one input tensor per field: a
string field is a ``BYTES`` tensor of shape ``[1]``, a list of numbers an
``FP64`` tensor of shape ``[-1]`` (``-1``: any length), and so on. The same
mapping tells the decoder which fields are scalars, so that a ``[1]``-shaped
tensor can fill one.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from packager._version import __version__

_PRIMITIVES = {"string": "BYTES", "integer": "INT64", "number": "FP64", "boolean": "BOOL"}


class Tensor(NamedTuple):
    """One tensor's metadata; `scalar`: the field takes one value (a [1]-shaped tensor fills it)."""

    name: str
    datatype: str
    shape: list[int]
    scalar: bool

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


def server_metadata() -> dict[str, Any]:
    """The body of ``GET /v2``."""
    return {"name": "packager", "version": __version__, "extensions": []}


def tensors(schema: dict[str, Any], single: str) -> list[Tensor]:
    """One tensor per property of an object schema; else one tensor named `single`; [] when untyped."""
    if not schema:
        return []
    defs = schema.get("$defs", {})
    root = _resolve(schema, defs)
    properties = root.get("properties")
    if root.get("type") == "object" and isinstance(properties, dict):
        return [Tensor(name, *_field(_resolve(p, defs), defs)) for name, p in properties.items()]
    return [Tensor(single, *_field(root, defs))]


def _resolve(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    for _ in range(32):  # a $ref chain, never a cycle in practice
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            break
        schema = defs.get(ref[len("#/$defs/") :], {})
    return schema if isinstance(schema, dict) else {}


def _field(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[str, list[int], bool]:
    """(datatype, shape, scalar) for one field's schema."""
    options = _non_null(schema)
    if options is not None:
        return _field(_resolve(options, defs), defs)
    kind = schema.get("type")
    if kind in _PRIMITIVES:
        return _PRIMITIVES[str(kind)], [1], True
    if kind == "array":
        datatype, inner, _ = _field(_resolve(schema.get("items", {}), defs), defs)
        return datatype, [-1, *inner] if inner[0] == -1 else [-1], False
    return "BYTES", [1], False  # an object, or anything: one JSON value


def _non_null(schema: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The one non-null option of an anyOf/oneOf ({} when several); None when there is no choice."""
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            kept = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return kept[0] if len(kept) == 1 and isinstance(kept[0], dict) else {}
    return None


# -- OpenAPI ---------------------------------------------------------------------------------

TENSOR_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8",
                                                 "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
        "data": {"type": "array", "description": "The values, flat or nested, in row-major order."},
    },
    "required": ["name", "shape", "datatype", "data"],
}  # fmt: skip
INFER_REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "Echoed in the response."},
        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}, "minItems": 1},
    },
    "required": ["inputs"],
}
INFER_RESPONSE = {
    "type": "object",
    "properties": {
        "model_name": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}},
    },
    "required": ["model_name", "outputs"],
}
