"""Truss's own rules on config.yaml values, phrased as packager issues (what to write instead).

Each check returns a message, or None when the value is one Truss accepts.
"""

from __future__ import annotations

import re
from typing import Any, Optional

TRUSS_PYTHONS = ("py39", "py310", "py311", "py312", "py313", "py314")
TRUSS_ACCELERATORS = (
    "T4", "L4", "A10G", "V100", "A100", "A100_40GB", "H100", "H100_40GB", "H200", "B200", "B300",
    "GB300", "L40S", "RTX_PRO_6000",
)  # fmt: skip
# Truss's accelerator names packager's spec knows, and what it calls them.
ACCELERATOR_MAP = {"T4": "T4", "L4": "L4", "A10G": "A10G", "A100": "A100-80GB", "A100_40GB": "A100"}
ACCELERATOR_MAP.update({"H100": "H100", "H100_40GB": "H100", "H200": "H200"})
_CPU = re.compile(r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$")
_MEMORY = re.compile(r"^([0-9]+(\.[0-9]+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_WEIGHT_SCHEMES = ("hf", "s3", "gs", "https")


def python_version(value: Any) -> tuple[Optional[str], Optional[str]]:
    """('3.11', None) for 'py311', or (None, message)."""
    if value not in TRUSS_PYTHONS:
        return None, "expected one of " + ", ".join(TRUSS_PYTHONS) + " (Truss's spelling)"
    version = f"3.{str(value)[3:]}"
    if version == "3.14":
        return None, "packager images run Python 3.9 to 3.13; use py313"
    return version, None


def cpu(value: Any) -> Optional[str]:
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _CPU.match(text):
        return "expected a CPU count such as '1', '0.5' or '500m'"
    return None


def memory(value: Any) -> Optional[str]:
    match = _MEMORY.match(str(value)) if isinstance(value, (str, int)) else None
    if match is None:
        return "expected a size with a unit such as '512Mi' or '2Gi' (k M G T Ki Mi Gi Ti)"
    return None


def memory_text(value: Any) -> str:
    """Truss's memory spelled as packager's spec wants it ('2G' stays, '1k' becomes '1K')."""
    text = str(value)
    return text[:-1] + "K" if text.endswith("k") else text


def accelerator(value: Any) -> tuple[Optional[str], Optional[str]]:
    """('A100:2', None) for Truss's 'A100:2', or (None, message)."""
    kind, _, count = str(value).partition(":")
    if kind not in TRUSS_ACCELERATORS:
        return None, "unknown accelerator; Truss knows " + ", ".join(TRUSS_ACCELERATORS)
    if count and (not count.isdigit() or int(count) < 1):
        return None, "invalid count; write TYPE:N with N at least 1, e.g. 'A100:2'"
    ours = ACCELERATOR_MAP.get(kind)
    if ours is None:
        known = ", ".join(sorted(ACCELERATOR_MAP))
        return None, f"packager has no base image for {kind} yet; use one of {known}"
    return (f"{ours}:{count}" if count else ours), None


def weight_source(uri: Any) -> Optional[str]:
    scheme = str(uri).partition("://")[0] if "://" in str(uri) else ""
    if scheme not in _WEIGHT_SCHEMES:
        return "packager fetches hf://, s3://, gs:// and https:// sources; mirror the files to one of those"
    return None


def hf_source(repo: str, revision: Optional[str]) -> str:
    return f"hf://{repo}@{revision}" if revision else f"hf://{repo}"


def folder_name(text: str) -> str:
    """A weights dir name made from a Truss path or repo ('models/small.pt' -> 'models_small.pt')."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text.strip("/")).lstrip("._")
    return safe or "weights"
