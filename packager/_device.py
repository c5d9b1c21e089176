"""Which device the model runs on: checked values (cpu, cuda, cuda:N, mps), and whether it exists.

Visibility is read without importing torch: when torch is already imported,
its own answer counts; otherwise ``/dev/nvidia<N>`` device files and
``CUDA_VISIBLE_DEVICES`` do. Only when those find no GPU for an explicit
``cuda`` request is torch (if installed) asked, so that a GPU that shows no
device files (WSL, say) is still found before the request is refused.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import sys
from typing import Any, Optional

from packager._errors import PackagerError

DEVICE_CHOICES = "cpu, cuda, cuda:N (N = 0, 1, ...) or mps"
_DEVICE = re.compile(r"^(cpu|mps|cuda(:(0|[1-9][0-9]*))?)$")
DEVICE_FILES = "/dev/nvidia[0-9]*"  # a module attribute so that tests can point it elsewhere


def check_device(value: str, source: str = "device") -> str:
    """`value` when it names a device (cpu, cuda, cuda:N, mps), else PackagerError naming `source`."""
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise PackagerError(f"{source}: {value!r} is not a device; use {DEVICE_CHOICES}")
    return value


def resolve_device(device: Optional[str] = None) -> str:
    """The device to use: `device`, else `$PACKAGER_DEVICE`, else cuda when a GPU is visible, else cpu.

    An explicit cuda/cuda:N/mps must exist here: asking for one that does
    not is a PackagerError, never a silent run on the CPU.
    """
    if device is not None:
        return require_present(check_device(device, "device"), "device")
    forced = os.environ.get("PACKAGER_DEVICE", "").strip()
    if forced:
        return require_present(check_device(forced, "$PACKAGER_DEVICE"), "$PACKAGER_DEVICE")
    return "cuda" if visible_gpus() > 0 else "cpu"


def require_present(device: str, source: str) -> str:
    """`device` when this machine has it, else PackagerError saying what was found instead."""
    if device == "mps":
        if not mps_available():
            raise PackagerError(f"{source}: 'mps' needs a Mac with Apple silicon; use cpu here")
        return device
    if not device.startswith("cuda"):
        return device
    count = visible_gpus(ask_torch=True)
    index = int(device.partition(":")[2] or 0)
    if count == 0:
        raise PackagerError(
            f"{source}: {device!r} asked for, but no GPU is visible to this process "
            f"({_why_none()}); use cpu, or run where a GPU is visible"
        )
    if index >= count:
        raise PackagerError(
            f"{source}: {device!r} asked for, but only {count} GPU{'s' if count != 1 else ''} "
            f"{'are' if count != 1 else 'is'} visible (cuda:0 to cuda:{count - 1})"
        )
    return device


def visible_gpus(ask_torch: bool = False) -> int:
    """How many CUDA GPUs this process can use (torch's count when torch is already imported)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return _torch_count(torch)
    count = _env_count(len(glob.glob(DEVICE_FILES)))
    if count == 0 and ask_torch and _env_allows() and importlib.util.find_spec("torch") is not None:
        import torch as imported

        return _torch_count(imported)
    return count


def mps_available() -> bool:
    """Whether Apple's Metal device is usable (torch's answer when torch is already imported)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            return bool(torch.backends.mps.is_available())
        except AttributeError:
            return False
    return sys.platform == "darwin"


def _torch_count(torch: Any) -> int:
    try:
        return int(torch.cuda.device_count())
    except Exception:  # a torch built without CUDA, or a broken driver: no GPU for us
        return 0


def _env_allows() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible is None or _env_count(1 << 16) > 0


def _env_count(devices: int) -> int:
    """GPUs left visible by CUDA_VISIBLE_DEVICES, out of `devices` present (CUDA's own rules)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return devices
    if devices == 0:
        return 0
    count = 0
    for entry in (part.strip() for part in visible.split(",")):
        # CUDA stops at the first invalid entry; UUIDs (GPU-..., MIG-...) are taken as valid
        if not entry or entry.startswith("-") or (entry.isdigit() and int(entry) >= devices):
            break
        count += 1
    return count


def _why_none() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and _env_count(1 << 16) == 0:
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if "torch" in sys.modules:
        return "torch.cuda.device_count() is 0"
    return "no /dev/nvidia* device files"
