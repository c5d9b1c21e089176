"""Whether and how a container gets GPUs: pure decisions over what the engine and host report.

`pkg run` asks for GPUs when the image's spec has an accelerator or `--gpus` is given, and only
when the engine can hand them out (the NVIDIA runtime, or CDI); `--gpus 0` runs on the CPU.
The host driver must be at least the one the image's CUDA needs (label dev.packager.cuda.driver).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager._errors import PackagerError

TOOLKIT = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"
PROC_VERSION = Path("/proc/driver/nvidia/version")
_DRIVER = re.compile(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class GpuRequest:
    """GPUs to request: `count` (-1: all) through `driver` ("nvidia", or "cdi" with `device_ids`)."""

    driver: str
    count: int
    device_ids: tuple[str, ...] = ()


def parse_gpus(value: str | None) -> int | None:
    """`--gpus`: None (not given), -1 for "all", else a count >= 0 (0: run on the CPU)."""
    if value is None:
        return None
    if value.strip().lower() == "all":
        return -1
    if not value.strip().isdigit():
        raise PackagerError(f"--gpus {value!r}: give 'all', a number of GPUs, or 0 to run on the CPU")
    return int(value)


def engine_gpu_driver(info: Mapping[str, Any]) -> str | None:
    """How this engine hands out NVIDIA GPUs (`docker info`): "nvidia", "cdi" or None (it cannot)."""
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes or info.get("DefaultRuntime") == "nvidia":
        return "nvidia"
    if info.get("CDISpecDirs"):
        return "cdi"
    return None


def plan_gpus(
    gpus: int | None, accelerator: str | None, wanted: int, engine: str | None
) -> GpuRequest | None:
    """The GPU request for a container, or None for none.

    `gpus` is `--gpus` (parse_gpus), `accelerator` and `wanted` the image spec's accelerator and
    GPU count, `engine` what engine_gpu_driver found. No GPU asked for: None. GPUs asked for on an
    engine that cannot give them: PackagerError saying what to install, or how to run on the CPU.
    """
    count = wanted if gpus is None else gpus
    if count == 0 or (gpus is None and accelerator is None):
        return None
    if engine is None:
        why = f"the image asks for a GPU ({accelerator})" if gpus is None else f"--gpus {_shown(count)}"
        raise PackagerError(
            f"{why} but the Docker engine has no NVIDIA runtime; install nvidia-container-toolkit "
            f"({TOOLKIT}) and restart dockerd, or pass --gpus 0 to run on the CPU"
        )
    if engine == "cdi":
        ids = ("nvidia.com/gpu=all",) if count < 0 else tuple(f"nvidia.com/gpu={i}" for i in range(count))
        return GpuRequest("cdi", 0, ids)
    return GpuRequest("nvidia", count)


def _shown(count: int) -> str:
    return "all" if count < 0 else str(count)


def version_tuple(version: str) -> tuple[int, ...]:
    """'535.104.05' -> (535, 104, 5); PackagerError for anything else."""
    if not re.fullmatch(r"\d+(\.\d+)*", version.strip()):
        raise PackagerError(f"{version!r} is not a driver version such as 535.104.05")
    return tuple(int(part) for part in version.strip().split("."))


def check_driver(host: str | None, needed: str | None) -> None:
    """PackagerError when the host's NVIDIA driver is older than the image needs.

    Nothing to compare (a CPU image, or a host whose driver cannot be read, such as a remote
    engine) is no error: the container then says what is wrong when it starts.
    """
    if host is None or needed is None:
        return
    if version_tuple(host) < version_tuple(needed):
        raise PackagerError(
            f"the image needs an NVIDIA driver >= {needed} but this host has {host}; "
            "upgrade the driver, or pass --gpus 0 to run on the CPU"
        )


def parse_proc_version(text: str) -> str | None:
    """The driver version in /proc/driver/nvidia/version, or None."""
    match = _DRIVER.search(text)
    return match.group(1) if match else None


def host_driver() -> str | None:
    """This host's NVIDIA driver: nvidia-smi's answer, else /proc/driver/nvidia/version, else None."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        first = done.stdout.strip().splitlines()[:1]
        if done.returncode == 0 and first:
            return first[0].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        return parse_proc_version(PROC_VERSION.read_text(encoding="utf-8"))
    except OSError:
        return None
