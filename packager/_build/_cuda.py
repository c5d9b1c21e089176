"""The CUDA table (data/cuda.json) and the choice of a torch CUDA flavour for a GPU spec.

PyTorch's CUDA wheels bring their own CUDA runtime; the host brings only the driver. So the
flavour (cu118 ... cu130) is chosen from the torch version (which flavours it ships) and the
accelerator (its compute capability must be one the flavour's wheels are built for), and the
driver it needs is a fact of the table, shown to the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

from packager._errors import PackagerError

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_INDEX = "https://download.pytorch.org/whl/{flavour}"


@dataclass(frozen=True)
class Flavour:
    """A torch CUDA flavour, its CUDA version and the least host driver it needs."""

    name: str
    cuda: str
    driver: str
    capabilities: tuple[str, str]

    @property
    def index_url(self) -> str:
        """PyTorch's pip index for this flavour."""
        return TORCH_INDEX.format(flavour=self.name)

    def supports(self, capability: str) -> bool:
        """Whether this flavour's wheels are built for GPUs of compute capability `capability`."""
        low, high = (Version(c) for c in self.capabilities)
        return low <= Version(capability) <= high


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """data/cuda.json, as shipped in the wheel."""
    text = (files("packager._build") / "data" / "cuda.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def flavour(name: str) -> Flavour:
    """The flavour 'cuXYZ' from the table."""
    for cuda, row in table()["cuda"].items():
        if "cu" + cuda.replace(".", "") == name:
            low, high = row["capabilities"]
            return Flavour(name, cuda, row["driver"], (low, high))
    raise PackagerError(f"unknown CUDA flavour {name!r}; packager knows {', '.join(flavour_names())}")


def flavour_names() -> list[str]:
    """Every flavour of the table, oldest first."""
    return ["cu" + cuda.replace(".", "") for cuda in table()["cuda"]]


def cuda_row(version: str) -> dict[str, Any]:
    """The table's row for CUDA `version` ('12.4'); PackagerError naming the known ones otherwise."""
    rows: dict[str, dict[str, Any]] = table()["cuda"]
    if version not in rows:
        known = ", ".join(rows)
        raise PackagerError(
            f"build.cuda_version {version!r} is not in packager's CUDA table; use one of {known}"
        )
    return rows[version]


def capability(gpu_type: str) -> str:
    """The compute capability of an accelerator the spec accepts ('H100' -> '9.0')."""
    known: dict[str, str] = table()["accelerators"]
    if gpu_type not in known:
        raise PackagerError(f"accelerator {gpu_type!r} is missing from packager's CUDA table; report it")
    return known[gpu_type]


def torch_minor(requirement: Requirement) -> str:
    """The newest torch minor version of the table (e.g. '2.7') that `requirement` allows."""
    versions: dict[str, Any] = table()["torch"]
    for minor in sorted(versions, key=Version, reverse=True):
        if any(requirement.specifier.contains(f"{minor}.{patch}") for patch in range(10)):
            return minor
    oldest, newest = min(versions, key=Version), max(versions, key=Version)
    raise PackagerError(
        f"requirement {str(requirement)!r} allows no torch version packager knows ({oldest} to {newest}); "
        f"pin torch within that range, or set build.base_image and install torch yourself"
    )


def choose_flavour(minor: str, gpu_capability: str, *, prefer: str | None = None) -> Flavour:
    """The flavour torch `minor` is installed with on a GPU of `gpu_capability`.

    `prefer` (a flavour matching the system CUDA) wins when torch ships it and it fits; then
    the flavour PyPI's own wheel uses; then the oldest shipped flavour that fits (the one
    asking least of the host driver).
    """
    row = table()["torch"][minor]
    shipped = [flavour(name) for name in row["flavours"]]
    for wanted in (prefer, row["default"]):
        match = next((f for f in shipped if f.name == wanted and f.supports(gpu_capability)), None)
        if match is not None:
            return match
    fitting = [f for f in shipped if f.supports(gpu_capability)]
    if not fitting:
        names = ", ".join(f.name for f in shipped)
        raise PackagerError(
            f"torch {minor} ships CUDA flavours {names}, none built for compute capability "
            f"{gpu_capability}; require a newer torch (see docs/building.md for the table)"
        )
    return fitting[0]
