"""What a build tells the user besides progress, and the labels it learns from the model itself.

`driver_note` is the host driver a GPU image needs; `schema_labels` imports the model on this
machine (as `pkg validate` does, no weights are loaded) to put its predict schema into labels.
Where the model's imports are missing here, the labels are left out with a one-line note:
that never fails a build.
"""

from __future__ import annotations

import json
from typing import Any

from packager._build._context import BuildContext
from packager._contract import inspect_model
from packager._imports import import_model
from packager._spec_load import Package

SCHEMA_LABELS = ("dev.packager.schema.input", "dev.packager.schema.output")


def driver_note(context: BuildContext) -> str | None:
    """The host driver line of a GPU image, or None."""
    if context.cuda_flavour:
        return (
            f"torch {context.cuda_flavour} for compute capability {context.compute_capability}: "
            f"needs an NVIDIA host driver >= {context.cuda_driver}"
        )
    if context.cuda_driver:
        return f"CUDA base image: needs an NVIDIA host driver >= {context.cuda_driver}"
    return None


def schema_labels(package: Package) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """(the schema labels, None), or ((), a note saying why they are left out)."""
    model = package.spec.model
    where = f"{model.file}:{model.class_name}"
    try:
        cls, namespace = import_model(package.root, model.file, model.class_name)
    except Exception as exc:  # a missing import, or any error of the model's import-time code
        return (), f"predict schema left out of the labels: {_first_line(exc)}"
    try:
        contract = inspect_model(cls, where)
        schemas: tuple[Any, Any] = (contract.input_schema(), contract.output_schema())
    except Exception as exc:  # a contract problem, or a type pydantic cannot express
        return (), f"predict schema left out of the labels: {_first_line(exc)}"
    finally:
        namespace.forget()
    texts = (json.dumps(s, separators=(",", ":"), sort_keys=True, ensure_ascii=False) for s in schemas)
    return tuple(zip(SCHEMA_LABELS, texts)), None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
