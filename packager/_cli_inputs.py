"""`pkg predict -i name=value`: input fields from the shell, coerced by the model's input schema (as in Cog).

Rules (docs/cli.md, "Inputs from the shell"):

- a field the schema types as a string (or enum of strings) keeps the value as
  typed; integer, number, boolean, array, object and null fields get the value
  parsed as JSON; an untyped field gets JSON when the value parses, else text.
  A value that does not parse stays text, and the model's validation says why.
- ``name=@FILE`` reads FILE (``@-``: stdin). A bytes field (``format: binary``)
  gets the bytes; a base64 field (``format: base64`` or ``contentEncoding:
  base64``) gets them base64-encoded; a string or untyped field gets the text
  when FILE is UTF-8 text, else (a known binary type, or not UTF-8) base64;
  any other field gets FILE's text coerced like a typed value.
  ``name=@@x`` is the text ``@x``.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import click
import orjson

from packager import _cli_schema as js
from packager._errors import InputError
from packager._filetypes import is_binary

_HINT = "'-i' / '--input'"


@dataclass(frozen=True)
class FileValue:
    """The contents of ``@FILE``, read before the model loads (a missing file fails fast)."""

    path: str
    data: bytes


RawValue = Union[str, FileValue]


def parse_fields(items: tuple[str, ...]) -> list[tuple[str, RawValue]]:
    """Each ``name=value`` of the -i options, with ``@FILE`` read."""
    return [_parse(item) for item in items]


def _parse(item: str) -> tuple[str, RawValue]:
    name, eq, value = item.partition("=")
    if not eq or not name:
        raise click.BadParameter(f"{item!r} is not name=value (e.g. -i text=hello)", param_hint=_HINT)
    if value.startswith("@@"):
        return name, value[1:]
    if not value.startswith("@"):
        return name, value
    path = value[1:]
    if path == "-":
        return name, FileValue("<stdin>", sys.stdin.buffer.read())
    try:
        return name, FileValue(path, Path(path).read_bytes())
    except OSError as exc:
        raise click.BadParameter(f"{name}: cannot read {path}: {exc.strerror}", param_hint=_HINT) from None


def merge(base: Any, given: list[tuple[str, RawValue]], schema: js.Schema) -> Any:
    """`base` (the -d/-f/--example input, or None) with the -i fields coerced and set on top."""
    if not given:
        return base
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise click.BadParameter(
            f"-i sets fields of an object, but the -d/-f/--example input is a {type(base).__name__}",
            param_hint=_HINT,
        )
    kinds = js.types(schema, schema)
    if kinds and "object" not in kinds:
        raise InputError(
            f"the model's input is {' or '.join(sorted(kinds))}, not an object with fields; give it with -d"
        )
    known = js.fields(schema, schema)
    unknown = [name for name, _ in given if known is not None and name not in known]
    if unknown and known is not None:  # pydantic would drop them silently
        raise InputError(
            f"unknown input field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the model takes: {', '.join(known) or 'no fields'}"
        )
    merged = dict(base)
    for name, raw in given:
        field = known[name] if known is not None else _extra(schema)
        merged[name] = coerce(raw, field, schema)
    return merged


def _extra(schema: js.Schema) -> js.Schema:
    extra = js.resolve(schema, schema).get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def coerce(raw: RawValue, field: Any, root: js.Schema) -> Any:
    """One -i value as the field's schema wants it (see the module docstring)."""
    kinds = js.types(field, root)
    if isinstance(raw, FileValue):
        binary = js.binary_kind(field, root)
        if binary == "bytes":
            return raw.data
        if binary == "base64" or ((not kinds or "string" in kinds) and is_binary(raw.data)):
            return base64.b64encode(raw.data).decode("ascii")
        try:
            text = raw.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"{raw.path} is not text, and this field takes {'/'.join(sorted(kinds))}"
            ) from None
        if not kinds or "string" in kinds:
            return text
        raw = text
    if "string" in kinds:
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw  # the model's validation names the field and the type it wants
