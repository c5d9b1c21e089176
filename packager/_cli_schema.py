"""Just enough JSON Schema reading for `pkg predict -i/-o`: refs, unions, a field's types, a child's schema.

The schemas are the ones pydantic writes for the model's input and output
annotations (`pkg schema`); an empty schema means "anything".
"""

from __future__ import annotations

from typing import Any, Optional, Union

Schema = dict[str, Any]
_MAX_REFS = 32
_BASE64_FORMATS = ("base64", "base64url")


def resolve(schema: Any, root: Schema) -> Schema:
    """`schema` with its `$ref` (into root's $defs) and one-item allOf followed."""
    for _ in range(_MAX_REFS):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        all_of = schema.get("allOf")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = target
        elif isinstance(all_of, list) and len(all_of) == 1:
            schema = all_of[0]
        else:
            return schema
    return {}


def branches(schema: Any, root: Schema) -> list[Schema]:
    """The alternatives of a union (anyOf/oneOf), each resolved; `[schema]` otherwise."""
    schema = resolve(schema, root)
    union = schema.get("anyOf") or schema.get("oneOf")
    if not isinstance(union, list):
        return [schema]
    return [branch for item in union for branch in branches(item, root)]


def types(schema: Any, root: Schema) -> set[str]:
    """The JSON types a value may have; empty when the schema does not say (anything goes)."""
    found: set[str] = set()
    for branch in branches(schema, root):
        kind = branch.get("type")
        if isinstance(kind, str):
            found.add(kind)
        elif isinstance(kind, list):
            found.update(k for k in kind if isinstance(k, str))
        elif "enum" in branch or "const" in branch:
            values = branch.get("enum", [branch.get("const")])
            found.update(_json_type(v) for v in values)
        else:
            return set()  # one branch takes anything
    return found


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", type(None): "null", list: "array"}.get(type(value), "object")


def fields(schema: Any, root: Schema) -> Optional[dict[str, Schema]]:
    """The named fields of an object schema; None when any name is allowed."""
    names: dict[str, Schema] = {}
    for branch in branches(schema, root):
        if branch.get("type") == "null":
            continue
        extra = branch.get("additionalProperties")
        if extra is True or isinstance(extra, dict) or not isinstance(branch.get("properties"), dict):
            return None
        names.update(branch["properties"])
    return names


def child(schema: Any, root: Schema, key: Union[str, int]) -> Schema:
    """The schema of `value[key]` (an object's property or an array's item); {} when unknown."""
    for branch in branches(schema, root):
        if isinstance(key, str):
            found = (branch.get("properties") or {}).get(key, branch.get("additionalProperties"))
        else:
            prefix = branch.get("prefixItems") or []
            found = prefix[key] if key < len(prefix) else branch.get("items")
        if isinstance(found, dict):
            return resolve(found, root)
    return {}


def binary_kind(schema: Any, root: Schema) -> Optional[str]:
    """'bytes' for a raw bytes field (format: binary), 'base64' for base64 text, else None."""
    for branch in branches(schema, root):
        if branch.get("type") != "string":
            continue
        if branch.get("format") == "binary":
            return "bytes"
        if branch.get("format") in _BASE64_FORMATS or branch.get("contentEncoding") == "base64":
            return "base64"
    return None


def media_type(schema: Any, root: Schema) -> Optional[str]:
    """The contentMediaType the schema declares for a string, if any."""
    return next((b["contentMediaType"] for b in branches(schema, root) if "contentMediaType" in b), None)
