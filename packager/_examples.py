"""A package's examples checked against its model's own types (what `pkg validate` adds to the spec checks).

An example's input must be an input the model accepts, and its expected
output (when given) an output the model's return annotation allows: a
stream's expected output is its list of chunks, or, for text, the joined
text, as `pkg test` compares it. Only annotated types are checked, so this
needs the model class imported, but not built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from packager._contract import Contract
from packager._errors import _MISSING, SpecIssue
from packager._outputs import type_name
from packager._spec import Example


def example_issues(contract: Contract, examples: Sequence[Example], shown: str) -> list[SpecIssue]:
    """Every field of every example that does not match the model's input or output type."""
    issues: list[SpecIssue] = []
    for i, example in enumerate(examples):
        at = f"examples[{i}]"
        if contract.input_adapter is not None:
            what = f"example {example.name!r} does not match the model's input type {type_name(contract.input_type)}"
            issues += _mismatches(contract.input_adapter, example.input, f"{at}.input", what, shown)
        if contract.output_adapter is None or "output" not in example.model_fields_set:
            continue
        kind = "chunk type" if contract.output_chunks else "output type"
        what = f"example {example.name!r}: the output does not match the model's {kind} {type_name(contract.output_type)}"
        if contract.output_chunks and isinstance(example.output, list):
            for j, chunk in enumerate(example.output):
                issues += _mismatches(contract.output_adapter, chunk, f"{at}.output[{j}]", what, shown)
        else:
            issues += _mismatches(contract.output_adapter, example.output, f"{at}.output", what, shown)
    return issues


def _mismatches(adapter: TypeAdapter[Any], value: Any, at: str, what: str, shown: str) -> list[SpecIssue]:
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        return [
            SpecIssue(
                shown,
                at + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]),
                _MISSING if error["type"] == "missing" else error.get("input", _MISSING),
                f"{what}: {error['msg']}; fix the example or the model's annotation",
            )
            for error in exc.errors(include_url=False, include_context=False)
        ]
    return []
